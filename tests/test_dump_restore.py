"""pg_dump and restore: history, contexts and the registry come back exactly, and tracking goes on.

A database with a mix of tracked tables (both levels, every context mode, fields, conditions,
partitions, quoted names, renamed and dropped columns, a dropped table's history) is dumped
with the server's own pg_dump, in custom format (restored with pg_restore, serially and in
parallel) and as plain SQL (restored with psql), into a database without the extension.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from sqlhelpers import rows, value

WORKLOAD = """
CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, amount numeric);
SELECT pghistory.track('orders');
CREATE SCHEMA "Sales Dept";
CREATE TABLE "Sales Dept"."Line Items" (id uuid PRIMARY KEY, "Order" int, qty int, note text);
SELECT pghistory.track('"Sales Dept"."Line Items"', level => 'row', context => 'json',
                       fields => '{id,Order,qty}',
                       trackers => ARRAY[pghistory.insert_event(),
                                         pghistory.update_event('qty_changed', changed => '{qty}',
                                                                condition => 'NEW.qty > 0'),
                                         pghistory.delete_event(), pghistory.manual_event('audit')]);
CREATE TABLE readings (id int, at int, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE readings_1 PARTITION OF readings FOR VALUES FROM (0) TO (100);
SELECT pghistory.track('readings', context => 'none', append_only => false);
CREATE TABLE gone (id int PRIMARY KEY, v text);
SELECT pghistory.track('gone');
CREATE TABLE untracked (id int PRIMARY KEY, v text);
SELECT pghistory.track('untracked');

BEGIN;
SELECT pghistory.set_context('{"user": "alice", "url": "/checkout"}');
INSERT INTO orders SELECT g, 'new', g * 10 FROM generate_series(1, 20) AS g;
INSERT INTO "Sales Dept"."Line Items"
    SELECT ('00000000-0000-0000-0000-' || lpad(g::text, 12, '0'))::uuid, g, 1, 'n' FROM generate_series(1, 5) AS g;
COMMIT;
BEGIN;
SELECT pghistory.set_context('{"user": "bob", "reason": "refund \\"quoted\\" é"}');
UPDATE orders SET status = 'paid' WHERE id % 3 = 0;
UPDATE "Sales Dept"."Line Items" SET qty = qty + 1 WHERE "Order" <= 3;
SELECT pghistory.create_event('"Sales Dept"."Line Items"', '00000000-0000-0000-0000-000000000001'::uuid, 'audit');
COMMIT;
INSERT INTO readings SELECT g, g, 'r' || g FROM generate_series(1, 10) AS g;
DELETE FROM orders WHERE id = 20;
ALTER TABLE orders ADD COLUMN note text;
UPDATE orders SET note = 'gift' WHERE id = 1;
ALTER TABLE orders RENAME COLUMN status TO state;
ALTER TABLE orders DROP COLUMN amount;
UPDATE orders SET state = 'shipped' WHERE id = 3;
TRUNCATE readings_1;
INSERT INTO gone VALUES (1, 'x');
DROP TABLE gone;
INSERT INTO untracked VALUES (1, 'x');
SELECT pghistory.untrack('untracked');
"""

EVENT_TABLES = ['public.orders_event', '"Sales Dept"."Line Items_event"', "public.readings_event",
                "public.gone_event", "public.untracked_event"]


def snapshot(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Everything a restore must reproduce, as plain values."""
    state: dict[str, Any] = {
        "tracked": rows(conn, """
            SELECT tracked_table::text, event_table::text, trackers::text, fields, exclude, context, level,
                   append_only, tracked_at FROM pghistory.tracked ORDER BY 1"""),
        "context": rows(conn, "SELECT id, created_at, updated_at, metadata FROM pghistory.context ORDER BY id"),
        "functions": rows(conn, """
            SELECT p.proname::text, pg_get_functiondef(p.oid), pg_get_userbyid(p.proowner)::text, p.proacl::text
              FROM pg_proc AS p
             WHERE p.pronamespace = 'pghistory'::regnamespace
               AND NOT EXISTS (SELECT FROM pg_depend AS d WHERE d.classid = 'pg_proc'::regclass
                                  AND d.objid = p.oid AND d.deptype = 'e')
             ORDER BY 1"""),
        "triggers": rows(conn, """
            SELECT tgrelid::regclass::text, tgname::text, pg_get_triggerdef(oid), tgenabled::text
              FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2"""),
        "event_triggers": rows(conn, """
            SELECT e.evtname::text, e.evtevent::text, e.evtenabled::text, e.evttags, d.deptype::text
              FROM pg_event_trigger AS e
              LEFT JOIN pg_depend AS d ON d.classid = 'pg_event_trigger'::regclass AND d.objid = e.oid
                                      AND d.refclassid = 'pg_extension'::regclass
             ORDER BY 1"""),
        "aggregate_events": rows(conn, """
            SELECT to_jsonb(a)::text FROM pghistory.aggregate_events AS a ORDER BY pgh_model, pgh_id"""),
        "tracking": rows(conn, "SELECT to_jsonb(t)::text FROM pghistory.tracking AS t ORDER BY 1"),
    }
    for table in EVENT_TABLES:
        state[table] = rows(conn, f"SELECT to_jsonb(e)::text FROM {table} AS e ORDER BY pgh_id")
        state[table + " columns"] = rows(conn, """
            SELECT attname::text, format_type(atttypid, atttypmod), attidentity::text FROM pg_attribute
             WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum""", table)
    state["pgh_id sequence"] = value(conn, "SELECT last_value FROM pghistory.event_id_seq")
    return state


@pytest.fixture
def source(conn: psycopg.Connection[Any], pg, db: str) -> dict[str, Any]:
    """The test database with the workload run in it; returns its snapshot."""
    pg.psql("-q", dbname=db, input=WORKLOAD, capture=True)
    state = snapshot(conn)
    # the workload did what it says, so the comparison below compares something
    assert len(state["public.orders_event"]) == 29
    assert len(state["context"]) == 2
    assert [r[0] for r in state["tracked"]] == ['"Sales Dept"."Line Items"', "orders", "readings"]
    assert len(state["event_triggers"]) == 3
    return state


@pytest.fixture
def target(pg) -> Iterator[str]:
    """An empty database (no extension) to restore into."""
    name = f"restore_{uuid.uuid4().hex[:12]}"
    with pg.connect() as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield name
    with pg.connect() as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def run(pg, *argv: str | Path) -> str:
    result = subprocess.run([str(a) for a in argv], env=pg.env(), capture_output=True, text=True)
    assert result.returncode == 0, f"{argv[0]} failed:\n{result.stderr}"
    return result.stdout


def dump_and_restore(pg, db: str, target: str, how: str, tmp_path: Path) -> str:
    """Dumps db and restores it into target; returns the dump's table of contents / text."""
    if how == "plain":
        path = tmp_path / "dump.sql"
        run(pg, pg.bin("pg_dump"), "--no-password", "-f", path, "-d", db)
        restored = pg.psql("-q", "-f", str(path), dbname=target, capture=True, check=False)
        assert restored.returncode == 0, restored.stderr
        assert "ERROR" not in restored.stderr, restored.stderr
        return path.read_text()
    path = tmp_path / "dump.custom"
    run(pg, pg.bin("pg_dump"), "--no-password", "-Fc", "-f", path, "-d", db)
    jobs = ["-j", "2"] if how == "custom-parallel" else []
    run(pg, pg.bin("pg_restore"), "--no-password", "--exit-on-error", *jobs, "-d", target, path)
    return run(pg, pg.bin("pg_restore"), "-l", path)


@pytest.mark.parametrize("how", ["custom", "custom-parallel", "plain"])
def test_restore_reproduces_history_contexts_and_registry(pg, db, source, target, how, tmp_path):
    contents = dump_and_restore(pg, db, target, how, tmp_path)
    # the extension's own event triggers come from CREATE EXTENSION, not from the dump
    assert "EVENT TRIGGER" not in contents
    with pg.connect(target) as restored:
        assert snapshot(restored) == source


@pytest.mark.parametrize("how", ["custom", "plain"])
def test_tracking_goes_on_after_restore(pg, db, source, target, how, tmp_path):
    dump_and_restore(pg, db, target, how, tmp_path)
    with pg.connect(target) as c:
        # one sequence numbers every event table: the restored one goes on past all of their events,
        # and the events of one transaction are numbered in the order they were written
        last = value(c, "SELECT last_value FROM pghistory.event_id_seq")
        assert last == max(value(c, f"SELECT max(pgh_id) FROM {t}") for t in EVENT_TABLES)
        with c.transaction():
            context_id = value(c, """SELECT pghistory.set_context('{"user": "carol"}')""")
            c.execute("UPDATE orders SET state = 'restored' WHERE id = 1")
            c.execute("""UPDATE "Sales Dept"."Line Items" SET qty = 9 WHERE "Order" = 1""")
            c.execute("INSERT INTO readings VALUES (50, 50, 'new')")
        assert rows(c, "SELECT pgh_id, pgh_label, id, state, note, pgh_context_id FROM orders_event "
                       "WHERE pgh_id > %s ORDER BY pgh_id", last) == [
            (last + 1, "update", 1, "restored", "gift", context_id)]
        assert rows(c, """SELECT pgh_id, pgh_label, qty, pgh_context FROM "Sales Dept"."Line Items_event"
                           WHERE pgh_id > %s ORDER BY pgh_id""", last) == [
            (last + 2, "qty_changed", 9, {"user": "carol"})]
        assert rows(c, "SELECT pgh_id, pgh_label, id, v FROM readings_event WHERE pgh_id > %s", last) == [
            (last + 3, "insert", 50, "new")]
        assert rows(c, "SELECT pgh_model, pgh_label FROM pghistory.aggregate_events WHERE pgh_id > %s", last) == [
            ("public.orders_event", "update"), ('"Sales Dept"."Line Items_event"', "qty_changed"),
            ("public.readings_event", "insert")]
        assert rows(c, "SELECT metadata FROM pghistory.context WHERE id = %s", context_id) == [({"user": "carol"},)]
        # schema changes are followed in the restored database too
        c.execute("ALTER TABLE orders ADD COLUMN extra int")
        c.execute("UPDATE orders SET extra = 1 WHERE id = 2")
        assert rows(c, "SELECT pgh_label, id, extra FROM orders_event ORDER BY pgh_id DESC LIMIT 1") == [
            ("update", 2, 1)]
        # history stays append-only where it was
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            c.execute("DELETE FROM orders_event")


def test_extension_tables_and_sequences_holding_data_are_dumped(conn):
    """Every table and sequence of the extension is marked for pg_dump (pg_extension_config_dump)."""
    members = rows(conn, """
        SELECT c.oid::regclass::text, c.relkind::text FROM pg_depend AS d
          JOIN pg_class AS c ON c.oid = d.objid
         WHERE d.classid = 'pg_class'::regclass AND d.deptype = 'e' AND c.relkind IN ('r', 'p', 'S')
           AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pghistory')
         ORDER BY 1""")
    configured = rows(conn, """
        SELECT c::regclass::text, 'r' FROM pg_extension AS e, unnest(e.extconfig) AS c
         WHERE e.extname = 'pghistory' ORDER BY 1""")
    assert members == [("pghistory.context", "r"), ("pghistory.event_id_seq", "S"), ("pghistory.history_policy", "r"),
                       ("pghistory.node_event_id_seq", "S"), ("pghistory.redaction", "r"), ("pghistory.tracked", "r")]
    assert [m[0] for m in members] == [c[0] for c in configured]
