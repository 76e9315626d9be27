"""Installing where no extension files can be copied in (managed PostgreSQL): pg_tle and the
plain script, played by a managed service's admin role (LOGIN CREATEDB CREATEROLE, owner of the
database, member of pgtle_admin, not superuser) and an application role.

Each way in: install, track, write with context, read history, pg_dump/pg_restore, uninstall.
The servers are copies of the builds without pghistory's files (harness.bare_build), one with
pg_tle 1.5.2 (shared_preload_libraries), and, on 14-17, one with pg_tle 1.4.0 (Supabase's: no
`schema` argument)."""

from __future__ import annotations

import subprocess
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

import harness
import pghistory as pgh
from sqlhelpers import rows, value

VERSION = pgh.__version__


def _server(major: int, pg_tle: str | None) -> Iterator[harness.Server]:
    try:
        build = harness.bare_build(major, pg_tle=pg_tle)
    except harness.Unavailable as exc:
        pytest.skip(str(exc))
    with harness.Server(build, settings=harness.PG_TLE_SETTINGS if pg_tle else None) as server:
        yield server


@pytest.fixture(scope="module")
def tle(pg: harness.Server) -> Iterator[harness.Server]:
    """A server of pg's major with pg_tle 1.5.2 and no pghistory files."""
    yield from _server(pg.major, "1.5.2")


@pytest.fixture(scope="module")
def tle14(pg: harness.Server) -> Iterator[harness.Server]:
    """The same with pg_tle 1.4.0."""
    yield from _server(pg.major, "1.4.0")


@dataclass
class Managed:
    """A database on a managed service: its admin and an application role."""

    server: harness.Server
    db: str
    admin: str
    app: str

    def connect(self, user: str | None = None, db: str | None = None, **kw: Any) -> psycopg.Connection[Any]:
        return self.server.connect(db or self.db, user=user or self.admin, **kw)


def make_managed(server: harness.Server, with_pg_tle: bool) -> Iterator[Managed]:
    tag = uuid.uuid4().hex[:8]
    m = Managed(server, f"managed_{tag}", f"admin_{tag}", f"app_{tag}")
    with server.connect() as su:
        su.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEDB CREATEROLE").format(sql.Identifier(m.admin)))
        su.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(m.app)))
        su.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(m.db), sql.Identifier(m.admin)))
    if with_pg_tle:
        with server.connect(m.db) as su:  # what the service does for its admin
            su.execute("CREATE EXTENSION pg_tle")
            su.execute(sql.SQL("GRANT pgtle_admin TO {}").format(sql.Identifier(m.admin)))
    try:
        yield m
    finally:
        with server.connect() as su:
            for db in rows(su, "SELECT datname FROM pg_database WHERE datname LIKE %s", f"%{tag}%"):
                su.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(db[0])))
            su.execute(sql.SQL("DROP ROLE {}, {}").format(sql.Identifier(m.app), sql.Identifier(m.admin)))


@pytest.fixture
def managed(tle: harness.Server) -> Iterator[Managed]:
    yield from make_managed(tle, with_pg_tle=True)


def install_quietly(conn: psycopg.Connection[Any], method: str) -> str:
    with pytest.warns(pgh.NoEventTriggersWarning, match=r"^pghistory is installed without the event triggers"):
        return pgh.install(conn, method=method)  # type: ignore[arg-type]


def status(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return rows(conn, "SELECT object, aspect, ok, detail, action FROM pghistory.status()")


NO_EVENT_TRIGGERS = (
    "pghistory", "event triggers", False,
    "missing (pghistory_before_ddl, pghistory_after_ddl, pghistory_on_drop): ALTER TABLE of a tracked "
    "table is not followed; refresh() brings it in step",
    "SELECT pghistory.install_event_triggers(); -- as a superuser or the service's admin role",
)


def track_write_read(m: Managed) -> None:
    """The admin tracks a table the application writes with context; the application reads it."""
    with m.connect() as admin:
        admin.execute("CREATE SCHEMA app")
        admin.execute("CREATE TABLE app.orders (id int PRIMARY KEY, status text)")
        assert pgh.track(admin, "app.orders") == "app.orders_event"
        admin.execute(sql.SQL("GRANT USAGE ON SCHEMA app TO {0}; GRANT SELECT, INSERT, UPDATE ON app.orders, "
                              "app.orders_event TO {0}").format(sql.Identifier(m.app)))
    with m.connect(m.app) as app:
        with pgh.context(app, user="alice"):
            app.execute("INSERT INTO app.orders VALUES (1, 'new')")
            app.execute("UPDATE app.orders SET status = 'paid' WHERE id = 1")
        assert [(e.pgh_label, e.pgh_diff) for e in pgh.events(app, "app.orders")] == [
            ("insert", None), ("update", {"status": ["new", "paid"]})]
    with m.connect() as admin:  # the context table is the installer's to read
        assert [(e.pgh_label, e.pgh_context) for e in pgh.events(admin, "app.orders")] == [
            ("insert", {"user": "alice"}), ("update", {"user": "alice"})]


def dump_restore(m: Managed, *, pre: str = "", skip: tuple[str, ...] = ()) -> str:
    """pg_dump the database as its admin, pg_restore it as the admin into a new database it owns
    (after `pre`, run there by the superuser, leaving out the entries of the dump's list that
    contain a `skip` string)."""
    target = m.db + "_restored"
    dump = subprocess.run([str(m.server.bin("pg_dump")), "-Fc", "-d", m.server.dsn(m.db, user=m.admin)],
                          capture_output=True, check=True).stdout
    with m.server.connect() as su:
        su.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(target), sql.Identifier(m.admin)))
    if pre:
        with m.server.connect(target) as su:
            su.execute(pre)
    listing = subprocess.run([str(m.server.bin("pg_restore")), "-l"], input=dump, capture_output=True, check=True)
    kept = [line for line in listing.stdout.decode().splitlines() if not any(s in line for s in skip)]
    list_file = Path(tempfile.mkdtemp()) / "restore.list"
    list_file.write_text("\n".join(kept) + "\n")
    restore = subprocess.run([str(m.server.bin("pg_restore")), "--exit-on-error", "-L", str(list_file), "-d",
                              m.server.dsn(target, user=m.admin)], input=dump, capture_output=True)
    assert restore.returncode == 0, restore.stderr.decode()
    return target


def assert_history_survives(m: Managed, db: str) -> None:
    with m.connect(m.app, db) as app, pgh.context(app, user="bob"):
        app.execute("UPDATE app.orders SET status = 'shipped' WHERE id = 1")
    with m.connect(db=db) as admin:
        assert [(e.pgh_label, e.pgh_context) for e in pgh.events(admin, "app.orders")] == [
            ("insert", {"user": "alice"}), ("update", {"user": "alice"}), ("update", {"user": "bob"})]


# -- pg_tle --------------------------------------------------------------------------------------


def test_pg_tle_install_track_dump_restore_uninstall(managed: Managed):
    m = managed
    with m.connect() as admin:
        assert install_quietly(admin, "pg_tle") == VERSION
        assert rows(admin, "SELECT extversion, extnamespace::regnamespace::text FROM pg_extension "
                           "WHERE extname = 'pghistory'") == [(VERSION, "pghistory")]
        assert rows(admin, "SELECT name, default_version, schema FROM pgtle.available_extensions() "
                           "WHERE name = 'pghistory'") == [("pghistory", VERSION, "pghistory")]
        assert status(admin)[:2] == [("pghistory", "version", True, f"{VERSION} (pg_tle)", None), NO_EVENT_TRIGGERS]
        assert install_quietly(admin, "auto") == VERSION  # idempotent
    track_write_read(m)
    # the dump carries the registration (pghistory's scripts as functions in schema pgtle): the
    # admin restores it into a database where the service made pg_tle, leaving out pg_tle itself
    restored = dump_restore(m, pre=f"CREATE EXTENSION pg_tle; GRANT pgtle_admin TO {m.admin}",
                            skip=(" SCHEMA - pgtle ", " EXTENSION - pg_tle", " EXTENSION pg_tle", " pgtle feature_info "))
    assert_history_survives(m, restored)
    with m.connect(db=restored) as admin:
        assert value(admin, "SELECT extversion FROM pg_extension WHERE extname = 'pghistory'") == VERSION
    with m.connect() as admin:
        admin.execute("DROP EXTENSION pghistory CASCADE")
        assert value(admin, "SELECT pgtle.uninstall_extension('pghistory')") is True
        admin.execute("DROP SCHEMA pghistory CASCADE")  # the trigger functions, which belong to the tables
        assert value(admin, "SELECT count(*) FROM pgtle.available_extensions() WHERE name = 'pghistory'") == 0
        assert rows(admin, "SELECT id, status FROM app.orders") == [(1, "paid")]
        admin.execute("UPDATE app.orders SET status = 'x'")  # no trigger left behind


def test_auto_picks_pg_tle_where_the_role_may_use_it(managed: Managed):
    with managed.connect() as admin:
        assert install_quietly(admin, "auto") == VERSION
        assert status(admin)[0] == ("pghistory", "version", True, f"{VERSION} (pg_tle)", None)


def test_pg_tle_without_membership_says_what_to_do(tle: harness.Server):
    for m in make_managed(tle, with_pg_tle=True):
        with tle.connect(m.db) as su:
            su.execute(sql.SQL("REVOKE pgtle_admin FROM {}").format(sql.Identifier(m.admin)))
        with m.connect() as admin, pytest.raises(
            pgh.ExtensionNotAvailable,
            match=r"^pg_tle is not usable here: this role is not a member of pgtle_admin \(GRANT pgtle_admin TO <role>\)$",
        ):
            pgh.install(admin, method="pg_tle")


def test_pg_tle_before_1_5_installs_without_the_schema_argument(tle14: harness.Server):
    for m in make_managed(tle14, with_pg_tle=True):
        with m.connect() as admin:
            assert install_quietly(admin, "pg_tle") == VERSION
            assert rows(admin, "SELECT extversion, extnamespace::regnamespace::text FROM pg_extension "
                               "WHERE extname = 'pghistory'") == [(VERSION, "pghistory")]
        track_write_read(m)


def test_the_registration_script_is_one_statement_for_a_web_console(managed: Managed):
    text = (harness.ROOT / "python" / "pghistory" / "sql" / "pghistory-pg_tle.sql").read_text()
    with managed.connect() as admin:
        cur = admin.execute(text)  # one statement, by the simple protocol, as a console sends it
        assert cur.statusmessage == "DO"
        admin.execute(text)  # and again: nothing left to register
        admin.execute("CREATE EXTENSION pghistory")
        assert rows(admin, "SELECT version FROM pgtle.available_extension_versions() WHERE name = 'pghistory'") == [
            (VERSION,)]
        assert rows(admin, "SELECT source, target FROM pgtle.extension_update_paths('pghistory') "
                           "WHERE path IS NOT NULL ORDER BY 1") == [("0.1.0", VERSION)]


# -- the plain script ----------------------------------------------------------------------------


@pytest.fixture
def plain(tle: harness.Server) -> Iterator[Managed]:
    """A managed database without pg_tle (Cloud SQL, Azure, Neon)."""
    yield from make_managed(tle, with_pg_tle=False)


def test_plain_script_install_track_dump_restore_uninstall(plain: Managed):
    m = plain
    with m.connect() as admin:
        assert install_quietly(admin, "auto") == VERSION  # no files, no pg_tle: the plain script
        assert value(admin, "SELECT count(*) FROM pg_extension WHERE extname = 'pghistory'") == 0
        assert value(admin, "SELECT obj_description('pghistory'::regnamespace, 'pg_namespace')") == (
            f"pghistory {VERSION} (plain script)")
        assert value(admin, "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'pghistory'") == m.admin
        assert status(admin)[:2] == [("pghistory", "version", True, f"{VERSION} (script)", None), NO_EVENT_TRIGGERS]
        functions = value(admin, "SELECT count(*) FROM pg_proc WHERE pronamespace = 'pghistory'::regnamespace")
        assert install_quietly(admin, "script") == VERSION  # idempotent
        assert value(admin, "SELECT count(*) FROM pg_proc WHERE pronamespace = 'pghistory'::regnamespace") == functions
        with pytest.raises(pgh.ExtensionNotAvailable, match=r"^pghistory 0\.2\.0 is installed by plain script: "
                                                            r"method 'pg_tle' does not apply"):
            pgh.install(admin, method="pg_tle")
    track_write_read(m)
    restored = dump_restore(m)
    assert_history_survives(m, restored)
    with m.connect(db=restored) as admin:
        assert status(admin)[0] == ("pghistory", "version", True, f"{VERSION} (script)", None)
    with m.connect() as admin:  # uninstall: the schema goes, and with it the triggers
        admin.execute("DROP SCHEMA pghistory CASCADE")
        assert value(admin, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'app.orders'::regclass") == 0
        admin.execute("UPDATE app.orders SET status = 'x'")
        assert rows(admin, "SELECT count(*) FROM app.orders_event") == [(2,)]  # the history stays


def test_plain_script_runs_with_psql(plain: Managed):
    path = harness.ROOT / "python" / "pghistory" / "sql" / f"pghistory--{VERSION}.plain.sql"
    done = plain.server.psql("-q", "-f", str(path), dbname=plain.db, user=plain.admin, capture=True)
    assert "installed without the event triggers that follow ALTER TABLE" in done.stderr
    with plain.connect() as admin:
        assert status(admin)[0] == ("pghistory", "version", True, f"{VERSION} (script)", None)


def test_plain_script_by_a_superuser_has_the_event_triggers(plain: Managed):
    with plain.server.connect(plain.db) as su:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert pgh.install(su, method="script") == VERSION
        assert rows(su, "SELECT evtname FROM pg_event_trigger ORDER BY 1") == [
            ("pghistory_after_ddl",), ("pghistory_before_ddl",), ("pghistory_on_drop",)]
        su.execute("CREATE TABLE t (id int PRIMARY KEY)")
        su.execute("SELECT pghistory.track('t')")
        su.execute("ALTER TABLE t ADD COLUMN note text")  # followed
        su.execute("INSERT INTO t VALUES (1, 'x')")
        assert rows(su, "SELECT id, note FROM t_event") == [(1, "x")]
        assert [r for r in status(su) if not r[2]] == []
        su.execute("DROP SCHEMA pghistory CASCADE")
        assert value(su, "SELECT count(*) FROM pg_event_trigger") == 0


def test_plain_script_without_create_on_the_database_says_what_to_do(plain: Managed):
    with plain.connect(plain.app) as app, pytest.raises(
        pgh.ExtensionNotAvailable,
        match=r"^pghistory could not be installed by auto: permission denied for database managed_\w+ \(the "
              r"installing role needs CREATE on the database; for pg_tle, membership in pgtle_admin\)$",
    ):
        pgh.install(app)
