"""plpgsql_check over every PL/pgSQL function of the extension and the trigger functions it generates.

plpgsql_check (https://github.com/okbob/plpgsql_check) compiles each function
and checks every statement against the catalog: unknown columns and
functions, type mismatches, unused or never-read variables, dead code.  It is
packaged for the machine's PostgreSQL only (Debian's
postgresql-15-plpgsql-check, built for /usr/lib/postgresql/15), so this test
runs on that build alone, whatever $PGH_MAJORS says, and skips, saying why,
where the build or the package is missing (the package is installed as root,
as CI runs; see harness.debian_packages).

The system build is not installed into: pghistory's install would land in a
server other checkouts share.  The test runs a private overlay of it instead
(its programs copied, its libraries linked, its share directory mirrored with
links), which PostgreSQL's relocatable paths make a build of its own, and
`make install`s this checkout there.

Errors fail the test.  Warnings fail it too, unless listed in ACCEPTED with
the reason they stay.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

import harness

MAJOR = 15
SYSTEM_HOME = Path(f"/usr/lib/postgresql/{MAJOR}")
SYSTEM_SHARE = Path(f"/usr/share/postgresql/{MAJOR}")
PACKAGE = f"postgresql-{MAJOR}-plpgsql-check"

# Whatever the function: RETURN QUERY EXECUTE sets a function's OUT
# variables, and plpgsql_check cannot see into dynamic SQL.
DYNAMIC_OUT = ("OUT variable ", " is maybe unmodified", "cannot to determine result of dynamic SQL")

# (function, message) -> why the warning stays.  Extension functions are named
# as regprocedure prints them; generated ones as "<tracked table of TABLES
# below>:<trigger>", e.g. "orders:pgh_update".  These are in files the
# author of this test does not own; left to their owners, each fixable as
# said.
ACCEPTED: dict[tuple[str, str], str] = {
    ("pghistory._context_metadata()", "target type is different type than source type"):
        "extension/context.sql: RETURN of a text expression from a jsonb function (an explicit cast would do)",
    ("pghistory.blame(regclass,anycompatible)", 'name of parameter "column" is reserved keyword'):
        "extension/blame.sql: blame() returns a column named column (part of its documented result)",
    ("pghistory.revert_context(uuid,boolean,boolean)", "target type is different type than source type"):
        "extension/revert_context.sql: untyped '{}' initial values of a jsonb and text[] variables",
}


def _overlay(home: Path) -> harness.Build:
    """A private copy of the system build under `home`: bin copied, lib linked, share mirrored."""
    relative_bin = SYSTEM_HOME.relative_to("/usr") / "bin"          # lib/postgresql/15/bin
    relative_share = SYSTEM_SHARE.relative_to("/usr")                # share/postgresql/15
    bindir = home / relative_bin
    shutil.copytree(SYSTEM_HOME / "bin", bindir, symlinks=True)
    (bindir.parent / "lib").symlink_to(SYSTEM_HOME / "lib")
    share = home / relative_share
    share.mkdir(parents=True)
    for entry in SYSTEM_SHARE.iterdir():
        if entry.name != "extension":
            (share / entry.name).symlink_to(entry)
    (share / "extension").mkdir()
    for entry in (SYSTEM_SHARE / "extension").iterdir():
        if not entry.name.startswith("pghistory"):
            (share / "extension" / entry.name).symlink_to(entry)
    for path in [home, *home.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)  # the server may run as another OS user (see harness.servers)
    build = harness.Build.from_pg_config(bindir / "pg_config", source=f"overlay of {SYSTEM_HOME}")
    assert build.sharedir == share, f"the overlay's pg_config does not relocate: {build.sharedir}"
    return build


@pytest.fixture(scope="module")
def checker() -> Iterator[psycopg.Connection]:
    """A database of a private PostgreSQL 15 with pghistory and plpgsql_check installed."""
    if not (SYSTEM_HOME / "bin" / "pg_config").is_file() or not SYSTEM_SHARE.is_dir():
        pytest.skip(f"plpgsql_check is packaged for the machine's PostgreSQL {MAJOR}, "
                    f"and there is none at {SYSTEM_HOME}")
    reason = harness.debian_packages(PACKAGE)
    if reason:
        pytest.skip(reason)
    home = harness.cache_dir() / f"overlay-pg{MAJOR}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    try:
        build = _overlay(home)
        harness.install_extension(build)
        with harness.Server(build) as pg, pg.connect() as conn:
            conn.execute("CREATE EXTENSION pghistory")
            conn.execute("CREATE EXTENSION plpgsql_check")
            yield conn
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _report(conn: psycopg.Connection, function: str, relid: str | None = None,
            oldtable: str | None = None, newtable: str | None = None) -> list[tuple[str, str, str]]:
    """plpgsql_check's findings for one function: (level, message, where) each.
    The trigger relation and its transition tables are given for trigger functions."""
    rows = conn.execute(
        """SELECT level, message,
                  concat_ws(' ', 'line ' || lineno, statement, nullif(detail, ''), nullif(hint, ''))
             FROM plpgsql_check_function_tb(%s::regprocedure, coalesce(%s::regclass, 0),
                                            oldtable => %s, newtable => %s,
                                            fatal_errors => false, extra_warnings => true,
                                            other_warnings => true, performance_warnings => false,
                                            -- it flags every EXECUTE of a text variable, also
                                            -- those built by format() with %%I and %%L
                                            security_warnings => false)""",
        (function, relid, oldtable, newtable),
    ).fetchall()
    return [(str(level), str(message), str(where)) for level, message, where in rows]


def test_extension_functions_pass_plpgsql_check(checker):
    """Every PL/pgSQL function of the extension but its trigger functions (checked below)."""
    functions = [str(f) for (f,) in checker.execute("""
        SELECT p.oid::regprocedure::text
          FROM pg_depend AS d
          JOIN pg_proc AS p ON p.oid = d.objid AND d.classid = 'pg_proc'::regclass
         WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
           AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pghistory')
           AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')
           AND p.prorettype <> 'trigger'::regtype
         ORDER BY 1""")]
    assert len(functions) > 30
    _assert_clean({f: _report(checker, f) for f in functions}, lambda name: not name.count(":"))


def _accepted(name: str, message: str, where: str) -> bool:
    start, end, detail = DYNAMIC_OUT
    dynamic_out = message.startswith(start) and message.endswith(end) and detail in where
    return dynamic_out or (name, message) in ACCEPTED


def _assert_clean(findings: dict[str, list[tuple[str, str, str]]], mine: Callable[[str], bool]) -> None:
    """No error and no warning but the accepted ones; and every accepted one still occurs."""
    unexpected = [f"{name}: {level}: {message} ({where})"
                  for name, found in findings.items() for level, message, where in found
                  if level == "error" or not _accepted(name, message, where)]
    seen = {(name, message) for name, found in findings.items() for _level, message, _where in found}
    stale = [f"{name}: {message}" for name, message in ACCEPTED
             if mine(name) and (name, message) not in seen]
    assert not unexpected, "plpgsql_check reports:\n" + "\n".join(unexpected)
    assert not stale, "ACCEPTED lists warnings plpgsql_check no longer reports (remove them):\n" + "\n".join(stale)


TABLES = {
    # statement level, context 'fk', the default trackers (a superuser's: the context row inline)
    "orders": ("CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, amount numeric)",
               "SELECT pghistory.track('orders')"),
    # row level, context 'json', conditions, snapshot 'old', a manual tracker
    "accounts": ("CREATE TABLE accounts (id bigint PRIMARY KEY, owner text, balance int, note text)",
                 """SELECT pghistory.track('accounts',
                        trackers => ARRAY[pghistory.insert_event(),
                                          pghistory.update_event('balance_changed', changed => '{balance}',
                                                                 snapshot => 'old'),
                                          pghistory.update_event('overdrawn',
                                                                 condition => 'NEW.balance < 0 AND OLD.balance >= 0'),
                                          pghistory.delete_event(), pghistory.truncate_event(),
                                          pghistory.manual_event('audited')],
                        exclude => '{note}', context => 'json', level => 'row')"""),
    # a composite key, statement level, conditions, owned by a plain role (through _attach_context())
    "lines": ("""CREATE TABLE lines (order_id int, line int, qty int NOT NULL, price numeric,
                                     PRIMARY KEY (order_id, line))""",
              """SELECT pghistory.track('lines',
                     trackers => ARRAY[pghistory.insert_event(condition => 'NEW.qty > 0'),
                                       pghistory.update_event('qty_changed', changed => '{qty}'),
                                       pghistory.delete_event()])"""),
    # no context, row level, no primary key
    "notes": ("CREATE TABLE notes (body text, tags jsonb)",
              "SELECT pghistory.track('notes', context => 'none', level => 'row')"),
    # a partitioned table, statement level, context 'json'
    "events": ("""CREATE TABLE events (id int, at date, what text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
                  CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')""",
               "SELECT pghistory.track('events', context => 'json')"),
}


def test_generated_trigger_functions_pass_plpgsql_check(checker):
    """The trigger functions track() writes for representative tables, each checked against the
    table it fires on and its transition tables; and the extension's own append-only guard."""
    checker.execute("CREATE ROLE pgh_static_owner")
    checker.execute("GRANT CREATE ON SCHEMA public, pghistory TO pgh_static_owner")
    for name, (create, track) in TABLES.items():
        if name == "lines":
            checker.execute("SET ROLE pgh_static_owner")
        checker.execute(create)
        checker.execute(track)
        checker.execute("RESET ROLE")
    triggers = checker.execute("""
        SELECT DISTINCT t.tgrelid::regclass::text, t.tgname, t.tgfoid::regprocedure::text,
               t.tgoldtable, t.tgnewtable
          FROM pg_trigger AS t JOIN pg_proc AS p ON p.oid = t.tgfoid
         WHERE NOT t.tgisinternal AND p.pronamespace = 'pghistory'::regnamespace
         ORDER BY 1, 2""").fetchall()
    assert len(triggers) > 15
    assert {table for table, *_ in triggers} == {*TABLES, "events_2026", *(f"{t}_event" for t in TABLES)}
    _assert_clean({f"{table}:{trigger}": _report(checker, function, table, old, new)
                   for table, trigger, function, old, new in triggers}, lambda name: ":" in name)
