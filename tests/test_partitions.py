"""Partitioned event tables (issue 15): track(partition_by) makes or converts the event table,
everything reads and follows it as before, maintain() makes partitions ahead and empties the
default partition, concurrently with writers and with itself, and pg_dump brings it all back."""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from sqlhelpers import rows, value


def months_from_now(n: int) -> str:
    """The partition suffix of the month n months from the current one (UTC)."""
    today = dt.datetime.now(dt.timezone.utc)
    index = today.year * 12 + today.month - 1 + n
    return f"{index // 12:04d}{index % 12 + 1:02d}01"


def partitions(conn: psycopg.Connection[Any], table: str = "orders_event") -> list[str]:
    return [r[0] for r in rows(conn, """
        SELECT c.relname::text FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
         WHERE i.inhparent = %s::regclass ORDER BY 1""", table)]


def backdate(conn: psycopg.Connection[Any], days: int, where: str = "true") -> None:
    """Moves events into the past (a maintenance transaction, as the README says)."""
    with conn.transaction():
        conn.execute("SET LOCAL pghistory.allow_history_changes = on")
        conn.execute(f"UPDATE orders_event SET pgh_created_at = pgh_created_at - interval '{days} days' "
                     f"WHERE {where}")


@pytest.fixture
def orders(conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text, email text)")
    return conn


def test_track_with_partition_by_makes_a_partitioned_event_table(orders):
    c = orders
    assert value(c, "SELECT pghistory.track('orders', partition_by => interval '1 month')::text") == "orders_event"
    assert value(c, "SELECT relkind::text FROM pg_class WHERE oid = 'orders_event'::regclass") == "p"
    assert partitions(c) == ["orders_event_default"] + [f"orders_event_p{months_from_now(i)}" for i in range(4)]
    assert rows(c, """SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'orders_event'::regclass
                      ORDER BY 1""") == [
        ("CREATE INDEX orders_event_pgh_context_id_idx ON ONLY public.orders_event USING btree (pgh_context_id)",),
        ("CREATE INDEX orders_event_pgh_obj_id_pgh_id_idx ON ONLY public.orders_event USING btree (pgh_obj_id, pgh_id)",),
        ("CREATE UNIQUE INDEX orders_event_pkey ON ONLY public.orders_event USING btree (pgh_id, pgh_created_at)",)]
    assert rows(c, "SELECT event_table::text, partition_by::text, keep FROM pghistory.history_policy") == [
        ("orders_event", "1 mon", None)]
    c.execute("INSERT INTO orders VALUES (1, 'new', 'a@x')")
    c.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
    assert rows(c, "SELECT tableoid::regclass::text, pgh_label FROM orders_event ORDER BY pgh_id") == [
        (f"orders_event_p{months_from_now(0)}", "insert"), (f"orders_event_p{months_from_now(0)}", "update")]
    assert rows(c, "SELECT pgh_label, pgh_diff FROM pghistory.events('orders', 1)") == [
        ("insert", None), ("update", {"status": ["new", "paid"]})]
    assert rows(c, "SELECT pgh_model, pgh_label FROM pghistory.aggregate_events ORDER BY pgh_id") == [
        ("public.orders_event", "insert"), ("public.orders_event", "update")]
    # append-only, on the table and on each partition
    for table in ["orders_event", f"orders_event_p{months_from_now(0)}", "orders_event_default"]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match=rf"^pghistory: public\.{table} is append-only history; DELETE is refused\n"):
            c.execute(f"DELETE FROM {table}")
    # revert and time travel read it as before
    pgh_id = value(c, "SELECT pgh_id FROM orders_event WHERE pgh_label = 'insert'")
    c.execute("SELECT pghistory.revert('orders_event', %s)", (pgh_id,))
    assert rows(c, "SELECT id, status FROM orders") == [(1, "new")]
    assert rows(c, "SELECT id, status FROM pghistory.as_of(NULL::orders, now())") == [(1, "new")]
    # the same call again changes nothing
    oid = value(c, "SELECT 'orders_event'::regclass::oid")
    c.execute("SELECT pghistory.track('orders', partition_by => interval '1 month')")
    assert value(c, "SELECT 'orders_event'::regclass::oid") == oid


def test_tracking_a_tracked_table_again_with_partition_by_moves_its_history(orders, make_role, connect):
    c = orders
    reader = make_role("pgh_reader")
    c.execute("SELECT pghistory.track('orders')")
    c.execute(sql.SQL("GRANT SELECT ON orders_event TO {}").format(sql.Identifier(reader)))
    c.execute("INSERT INTO orders SELECT g, 'new', g || '@x' FROM generate_series(1, 3) AS g")
    c.execute("UPDATE orders SET status = 'paid' WHERE id = 2")
    backdate(c, 70, "pgh_label = 'insert'")
    before = rows(c, "SELECT to_jsonb(e) FROM orders_event AS e ORDER BY pgh_id")
    c.execute("SELECT pghistory.track('orders', partition_by => interval '1 month')")
    assert rows(c, "SELECT to_jsonb(e) FROM orders_event AS e ORDER BY pgh_id") == before
    assert value(c, "SELECT count(DISTINCT tableoid) FROM orders_event") == 2
    assert value(c, "SELECT event_table::text FROM pghistory.tracked") == "orders_event"
    assert value(c, "SELECT to_regclass('orders_event_unpartitioned')") is None
    # grants, owner and identity carried over
    assert rows(connect(reader), "SELECT count(*) FROM orders_event") == [(4,)]
    c.execute("INSERT INTO orders VALUES (4, 'new', 'd@x')")
    assert value(c, "SELECT pgh_id FROM orders_event WHERE id = 4") == 5
    assert value(c, "SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef AS d JOIN pg_attribute AS a"
                    " ON a.attrelid = d.adrelid AND a.attnum = d.adnum"
                    " WHERE d.adrelid = 'orders_event'::regclass AND a.attname = 'pgh_id'") == (
        "nextval('pghistory.event_id_seq'::regclass)")


def test_a_schema_change_reaches_the_partitioned_event_table(orders):
    c = orders
    c.execute("SELECT pghistory.track('orders', partition_by => interval '7 days')")
    c.execute("INSERT INTO orders VALUES (1, 'new', 'a@x')")
    c.execute("ALTER TABLE orders ADD COLUMN note text")
    c.execute("UPDATE orders SET note = 'gift' WHERE id = 1")
    c.execute("ALTER TABLE orders RENAME COLUMN status TO state")
    c.execute("UPDATE orders SET state = 'paid' WHERE id = 1")
    assert rows(c, "SELECT pgh_label, state, note FROM orders_event ORDER BY pgh_id") == [
        ("insert", "new", None), ("update", "new", "gift"), ("update", "paid", "gift")]
    assert rows(c, "SELECT pgh_diff FROM pghistory.events('orders', 1) ORDER BY pgh_id") == [
        (None,), ({"note": [None, "gift"]},), ({"state": ["new", "paid"]},)]
    # every partition has the column
    assert value(c, """SELECT count(*) FROM pg_inherits AS i JOIN pg_attribute AS a ON a.attrelid = i.inhrelid
                        WHERE i.inhparent = 'orders_event'::regclass AND a.attname = 'note'""") == 5


def test_bad_partition_sizes_and_dependents_are_refused(orders):
    c = orders
    with pytest.raises(psycopg.errors.InvalidParameterValue,
                       match=r"^pghistory: partition_by 1 mon 2 days is not a partition size\n"):
        c.execute("SELECT pghistory.track('orders', partition_by => interval '1 month 2 days')")
    assert value(c, "SELECT count(*) FROM pghistory.tracked") == 0
    c.execute("SELECT pghistory.track('orders')")
    c.execute("CREATE VIEW recent AS SELECT * FROM orders_event")
    with pytest.raises(psycopg.errors.ObjectInUse,
                       match=r"^pghistory: public\.orders_event cannot be partitioned as it is: views"):
        c.execute("SELECT pghistory.track('orders', partition_by => interval '1 month')")
    assert value(c, "SELECT relkind::text FROM pg_class WHERE oid = 'orders_event'::regclass") == "r"


def test_maintain_moves_rows_out_of_the_default_partition_and_is_idempotent(orders):
    c = orders
    c.execute("SELECT pghistory.track('orders', partition_by => interval '1 month')")
    # a row beyond the partitions made ahead lands in the default partition
    c.execute("INSERT INTO orders_event (pgh_created_at, pgh_label, pgh_obj_id, id) "
              "VALUES (now() + interval '1 year', 'manual', 1, 1)")
    assert value(c, "SELECT tableoid::regclass::text FROM orders_event") == "orders_event_default"
    assert rows(c, "SELECT event_table::text, partitions_made, events_pruned FROM pghistory.maintain()") == [
        ("orders_event", 1, 0)]
    assert value(c, "SELECT tableoid::regclass::text FROM orders_event") == f"orders_event_p{months_from_now(12)}"
    assert rows(c, "SELECT event_table::text, partitions_made, events_pruned FROM pghistory.maintain()") == [
        ("orders_event", 0, 0)]
    assert len(partitions(c)) == 6


def test_partitions_keep_the_event_tables_column_compression(orders):
    """A column's compression set on the event table holds in the partitioned table a conversion
    makes and in the partitions maintain() makes later (they are made with LIKE, then attached)."""
    c = orders
    c.execute("SELECT pghistory.track('orders')")
    c.execute("ALTER TABLE orders_event ALTER COLUMN email SET COMPRESSION pglz")
    c.execute("SELECT pghistory.track('orders', partition_by => interval '1 month')")
    c.execute("INSERT INTO orders_event (pgh_created_at, pgh_label, pgh_obj_id, id) "
              "VALUES (now() + interval '1 year', 'manual', 1, 1)")
    c.execute("SELECT pghistory.maintain()")
    assert f"orders_event_p{months_from_now(12)}" in partitions(c)
    assert rows(c, """SELECT DISTINCT a.attcompression::text FROM pg_partition_tree('orders_event') AS p
                       JOIN pg_attribute AS a ON a.attrelid = p.relid WHERE a.attname = 'email'""") == [("p",)]


def test_maintain_runs_one_at_a_time(orders, connect):
    c = orders
    c.execute("SELECT pghistory.track('orders', partition_by => interval '1 month')")
    first = connect(autocommit=False)
    assert len(first.execute("SELECT * FROM pghistory.maintain()").fetchall()) == 1
    # while the first holds its lock, another returns at once, doing nothing
    assert rows(connect(), "SELECT * FROM pghistory.maintain()") == []
    first.commit()
    assert len(rows(connect(), "SELECT * FROM pghistory.maintain()")) == 1


def test_making_a_partition_waits_for_no_writer(orders, connect):
    c = orders
    c.execute("SELECT pghistory.track('orders', partition_by => interval '1 month')")
    furthest = f"orders_event_p{months_from_now(3)}"
    c.execute(f"DROP TABLE {furthest}")
    # a writer's open transaction holds ROW EXCLUSIVE on the event table and its current partition
    writer = connect(autocommit=False)
    writer.execute("INSERT INTO orders VALUES (1, 'new', 'x')")
    m = connect(options="-c statement_timeout=20s")
    # the partition is made apart and attached (SHARE UPDATE EXCLUSIVE), not made with
    # CREATE TABLE ... PARTITION OF, whose ACCESS EXCLUSIVE lock would wait for the writer
    assert rows(m, "SELECT partitions_made, busy::text[] "
                   "FROM pghistory.maintain(lock_timeout => interval '200 milliseconds')") == [(1, [])]
    assert furthest in partitions(c)
    start, end = (months_from_now(n) for n in (3, 4))
    assert value(c, "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = %s", furthest) == (
        f"FOR VALUES FROM ('{start[:4]}-{start[4:6]}-01 00:00:00+00') TO ('{end[:4]}-{end[4:6]}-01 00:00:00+00')")
    writer.commit()
    assert rows(c, "SELECT tableoid::regclass::text, id FROM orders_event") == [
        (f"orders_event_p{months_from_now(0)}", 1)]
    # the attached partition is dressed as the others: owner, grants, append-only guard
    assert rows(c, "SELECT relowner::regrole::text, relacl::text FROM pg_class WHERE relname IN (%s, %s) "
                   "GROUP BY 1, 2", furthest, f"orders_event_p{months_from_now(2)}") == [
        (value(c, "SELECT relowner::regrole::text FROM pg_class WHERE relname = 'orders_event'"),
         value(c, "SELECT relacl::text FROM pg_class WHERE relname = %s", f"orders_event_p{months_from_now(2)}"))]
    assert value(c, "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = 'pgh_append_only'",
                 furthest) == 1


def test_writers_go_on_during_maintain(orders, connect):
    c = orders
    c.execute("SELECT pghistory.track('orders', partition_by => interval '1 day')")
    written: list[int] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def write() -> None:
        w = connect()
        try:
            i = 0
            while not stop.is_set() or i < 50:
                i += 1
                w.execute("INSERT INTO orders VALUES (%s, 'new', 'x')", (i,))
                written.append(i)
        except BaseException as exc:  # reported below
            failures.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    m = connect()
    for n in range(20):
        # history that lands in the default partition, for maintain() to move
        m.execute("INSERT INTO orders_event (pgh_created_at, pgh_label, pgh_obj_id) "
                  "VALUES (now() + make_interval(days => 10 + %s), 'manual', -1)", (n,))
        m.execute("SELECT * FROM pghistory.maintain()")
    stop.set()
    thread.join()
    assert failures == []
    assert rows(c, "SELECT id FROM orders_event WHERE pgh_label = 'insert' ORDER BY pgh_id") == [
        (i,) for i in written]
    assert value(c, "SELECT count(*) FROM orders_event_default") == 0
    assert value(c, "SELECT count(*) FROM orders_event WHERE pgh_label = 'manual'") == 20


def run(pg: Any, *argv: str | Path) -> str:
    result = subprocess.run([str(a) for a in argv], env=pg.env(), capture_output=True, text=True)
    assert result.returncode == 0, f"{argv[0]} failed:\n{result.stderr}"
    return result.stdout


@pytest.fixture
def target(pg: Any) -> Iterator[str]:
    name = f"restore_{uuid.uuid4().hex[:12]}"
    with pg.connect() as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield name
    with pg.connect() as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.mark.parametrize("how", ["custom", "plain"])
def test_dump_and_restore_of_a_partitioned_event_table(pg, db, orders, target, how, tmp_path):
    c = orders
    c.execute("SELECT pghistory.track('orders')")
    c.execute("INSERT INTO orders SELECT g, 'new', 'x' FROM generate_series(1, 5) AS g")
    backdate(c, 40, "id <= 2")
    c.execute("SELECT pghistory.track('orders', partition_by => interval '1 month')")
    c.execute("SELECT pghistory.set_retention('orders', interval '2 years')")
    c.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
    history = rows(c, "SELECT to_jsonb(e), tableoid::regclass::text FROM orders_event AS e ORDER BY pgh_id")
    if how == "plain":
        path = tmp_path / "dump.sql"
        run(pg, pg.bin("pg_dump"), "--no-password", "-f", path, "-d", db)
        restored = pg.psql("-q", "-f", str(path), dbname=target, capture=True, check=False)
        assert restored.returncode == 0 and "ERROR" not in restored.stderr, restored.stderr
    else:
        path = tmp_path / "dump.custom"
        run(pg, pg.bin("pg_dump"), "--no-password", "-Fc", "-f", path, "-d", db)
        run(pg, pg.bin("pg_restore"), "--no-password", "--exit-on-error", "-d", target, path)
    with pg.connect(target) as r:
        r.autocommit = True
        assert rows(r, "SELECT to_jsonb(e), tableoid::regclass::text FROM orders_event AS e ORDER BY pgh_id") == history
        assert partitions(r) == partitions(c)
        assert rows(r, "SELECT event_table::text, keep FROM pghistory.history_policy") == [
            ("orders_event", dt.timedelta(days=730))]
        r.execute("UPDATE orders SET status = 'shipped' WHERE id = 1")
        assert rows(r, "SELECT pgh_id, pgh_label, status FROM orders_event ORDER BY pgh_id DESC LIMIT 1") == [
            (7, "update", "shipped")]
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            r.execute(f"DELETE FROM orders_event_p{months_from_now(0)}")
        assert len(rows(r, "SELECT * FROM pghistory.maintain()")) == 1
