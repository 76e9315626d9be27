"""The bench's targets: one database each, all holding the same table ``item``.

Every target gets the same five-column table, loaded with the same rows, and
is sent the same statements, including the one that starts a context
(``set_config`` of ``pghistory.context_id`` and ``pghistory.context_metadata``,
the names both pghistory and django-pghistory read).  They differ only in
what records the history:

    plain              nothing (the write alone)
    dual               the floor: the write done by hand; one statement that
                       does the write, INSERTs the snapshot into an event table
                       identical to pghistory's (made with LIKE ... INCLUDING ALL
                       from one pghistory made) and INSERTs the context row
    pghistory          pghistory.track('item'): statement level, fk context
    pghistory_row      level => 'row'
    pghistory_json     context => 'json'
    django_row         django-pghistory 3.9, its default row-level triggers
    django_statement   django-pghistory 3.9, level=pghistory.Statement

A variant (``--variant NAME=FILE.sql``) is a pghistory target whose database
runs FILE.sql after CREATE EXTENSION: a way to measure a proposed change to
the generated triggers or the context upsert side by side with the rest.
A FILE.sql whose first line is ``-- bench: after track()`` runs after
track() instead, to replace a generated trigger function by hand
(bench/variants/floor.sql takes pghistory's update trigger apart).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
COLUMNS = "id, name, status, amount, updated_at"
AFTER_TRACK = "-- bench: after track()"  # first line of a variant run after track()

TABLE_DDL = """
CREATE TABLE item (
    id         integer       PRIMARY KEY,
    name       text          NOT NULL,
    status     text          NOT NULL,
    amount     numeric(12,2) NOT NULL,
    updated_at timestamptz   NOT NULL
)"""

# The statement every target runs first in a transaction with a context:
# a new context id, and metadata, as an application sets them.
SET_CONTEXT = (
    "SELECT set_config('pghistory.context_id', gen_random_uuid()::text, true),"
    " set_config('pghistory.context_metadata', '{\"user\": \"bench\", \"url\": \"/bench\"}', true)"
)


def rows_select(first: int, last: int) -> str:
    """SELECT of the rows ``first..last`` of ``item`` (the same for every target)."""
    return (
        f"SELECT g, 'item ' || g, CASE WHEN g % 2 = 0 THEN 'new' ELSE 'paid' END, (g % 1000) / 10.0, now()"
        f" FROM generate_series({first}, {last}) AS g"
    )


def write_statements(n: int) -> dict[str, str]:
    """The bulk writes and the single-row write, as an application sends them."""
    return {
        "update": "UPDATE item SET amount = amount + 1, updated_at = now()",
        "insert": f"INSERT INTO item ({COLUMNS}) {rows_select(n + 1, 2 * n)}",
        "delete": f"DELETE FROM item WHERE id > {n}",
        "update_one": "UPDATE item SET amount = amount + 1, updated_at = now() WHERE id = :id",
    }


def dual_statement(write: str, label: str, with_context: bool) -> str:
    """The floor: ``write`` (with RETURNING), the snapshot INSERT and the context row in one statement."""
    ctx_cte = (
        "ctx AS (INSERT INTO context (id, metadata) VALUES (current_setting('pghistory.context_id')::uuid,"
        " current_setting('pghistory.context_metadata')::jsonb) RETURNING id), "
        if with_context
        else ""
    )
    return (
        f"WITH {ctx_cte}w AS ({write} RETURNING item.*) "
        f"INSERT INTO item_event (pgh_label, pgh_obj_id, pgh_context_id, {COLUMNS}) "
        f"SELECT '{label}', w.id, {'ctx.id' if with_context else 'NULL::uuid'}, w.id, w.name, w.status, w.amount,"
        f" w.updated_at FROM w{' CROSS JOIN ctx' if with_context else ''}"
    )


@dataclasses.dataclass
class Target:
    name: str
    kind: str  # plain | dual | pghistory | django
    options: str = ""  # pghistory.track() arguments after the table
    level: str = ""  # django: row | statement
    variant_sql: Path | None = None
    description: str = ""

    @property
    def dbname(self) -> str:
        return f"bench_{self.name}"

    @property
    def event_table(self) -> str | None:
        return None if self.kind == "plain" else "item_event"

    @property
    def context_table(self) -> str | None:
        return {"dual": "context", "pghistory": "pghistory.context", "django": "pghistory_context"}.get(self.kind)

    @property
    def tracked(self) -> bool:
        return self.kind != "plain"

    def statement(self, n: int, workload: str, with_context: bool = True) -> str:
        """The SQL this target runs for a workload (``update``, ``insert``, ``delete``, ``update_one``)."""
        write = write_statements(n)[workload]
        if self.kind != "dual":
            return write
        label = {"update_one": "update"}.get(workload, workload)
        return dual_statement(write, label, with_context)


def default_targets(django: bool) -> list[Target]:
    targets = [
        Target("plain", "plain", description="untracked"),
        Target("dual", "dual", description="by hand: write + snapshot INSERT + context row, one statement"),
        Target("pghistory", "pghistory", "", description="pghistory.track('item'): statement level, fk context"),
        Target("pghistory_row", "pghistory", ", level => 'row'", description="pghistory, level => 'row'"),
        Target("pghistory_json", "pghistory", ", context => 'json'", description="pghistory, context => 'json'"),
        # the 1-row bar's yardstick: pghistory's update trigger with only the necessary work left
        variant_target(f"floor_pairing={HERE / 'variants' / 'floor.sql'}"),
    ]
    if django:
        targets += [
            Target("django_row", "django", level="row", description="django-pghistory 3.9, row level (its default)"),
            Target("django_statement", "django", level="statement",
                   description="django-pghistory 3.9, level=pghistory.Statement"),
        ]
    return targets


def variant_target(spec: str) -> Target:
    """``NAME=FILE.sql`` -> a pghistory target that runs FILE.sql after CREATE EXTENSION."""
    name, sep, path = spec.partition("=")
    if not sep or not name.isidentifier() or not Path(path).is_file():
        raise SystemExit(f"bench: --variant wants NAME=FILE.sql with an existing file, not {spec!r}")
    return Target(f"pghistory_{name}", "pghistory", "", variant_sql=Path(path).resolve(),
                  description=f"pghistory defaults + {Path(path).name}")


# -- setting a target up ---------------------------------------------------------

def bench_python() -> Path:
    """The bench's own virtualenv (django-pghistory and Django; never the test suite's)."""
    import harness

    venv = Path(os.environ.get("PGH_BENCH_VENV") or harness.cache_dir() / "bench-venv")
    python = venv / "bin" / "python"
    requirements = HERE / "requirements-django.txt"
    stamp = venv / ".bench-deps"
    want = requirements.read_text()
    if python.exists() and stamp.exists() and stamp.read_text() == want:
        return python
    print(f"bench: installing {requirements.name} into {venv}", file=sys.stderr, flush=True)
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--quiet", "--disable-pip-version-check",
                    "-r", str(requirements)], check=True)
    stamp.write_text(want)
    return python


def create(pg, target: Target, n: int) -> str:
    """Create the target's database, its table with ``n`` rows, and what tracks it; returns a note."""
    with pg.connect() as c:
        c.execute(f'DROP DATABASE IF EXISTS "{target.dbname}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{target.dbname}"')
    note = ""
    if target.kind == "django":
        result = subprocess.run(
            [str(bench_python()), str(HERE / "django_target" / "setup_db.py"), "--host", pg.host,
             "--port", str(pg.port), "--user", pg.user, "--dbname", target.dbname, "--level", target.level],
            capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"django-pghistory setup of {target.dbname} failed:\n{result.stdout}{result.stderr}")
        note = result.stdout.strip()
    with pg.connect(target.dbname) as c:
        if target.kind != "django":
            c.execute(TABLE_DDL)
        # the rows are loaded with triggers off: no target starts with history
        with c.transaction():
            c.execute("SET LOCAL session_replication_role = replica")
            c.execute(f"INSERT INTO item ({COLUMNS}) {rows_select(1, n)}")
        if target.kind == "dual":
            _create_dual(c)
        elif target.kind == "pghistory":
            c.execute("CREATE EXTENSION pghistory")
            variant = target.variant_sql.read_text() if target.variant_sql is not None else ""
            after_track = variant.startswith(AFTER_TRACK)
            if variant and not after_track:
                c.execute(variant)
            c.execute(f"SELECT pghistory.track('item'{target.options})")
            if after_track:
                c.execute(variant)
        c.execute("VACUUM ANALYZE")
    return note


def _create_dual(c: psycopg.Connection) -> None:
    """The floor's event table and context table: copies of the ones pghistory makes."""
    c.execute("CREATE EXTENSION pghistory")
    c.execute("CREATE TABLE item_shape (LIKE item INCLUDING ALL)")
    c.execute("SELECT pghistory.track('item_shape')")
    c.execute("CREATE TABLE item_event (LIKE item_shape_event INCLUDING ALL)")
    c.execute("CREATE TABLE context (LIKE pghistory.context INCLUDING ALL)")
    c.execute("DROP EXTENSION pghistory CASCADE")  # takes pgh_id's default, the shared sequence, along
    c.execute("DROP TABLE item_shape, item_shape_event")
    # pgh_id numbered as pghistory numbers it: from a sequence of its own, one value at a time
    c.execute("CREATE SEQUENCE event_id_seq AS bigint CACHE 1")
    c.execute("ALTER TABLE item_event ALTER COLUMN pgh_id SET DEFAULT nextval('event_id_seq')")


def describe_event_table(c: psycopg.Connection) -> str:
    """``columns; indexes`` of item_event, for the results."""
    cols = c.execute(
        "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)"
        " FROM pg_attribute WHERE attrelid = 'item_event'::regclass AND attnum > 0 AND NOT attisdropped"
    ).fetchone()[0]
    idx = c.execute(
        "SELECT string_agg(regexp_replace(pg_get_indexdef(indexrelid), '^.* USING ', ''), ', ' ORDER BY 1)"
        " FROM pg_index WHERE indrelid = 'item_event'::regclass"
    ).fetchone()[0]
    return f"{cols}; indexes {idx}"
