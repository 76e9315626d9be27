"""Retention (issue 15): prune() and set_retention() + maintain() remove old history, each object
keeping its latest event; partitioned tables lose whole partitions; only the event table's
owner may; writers go on meanwhile. And reset_identities(), the fix after a failover."""

from __future__ import annotations

import threading
from typing import Any

import psycopg
import pytest
from psycopg import sql

from sqlhelpers import rows, value


def backdate(conn: psycopg.Connection[Any], days: int, where: str) -> None:
    with conn.transaction():
        conn.execute("SET LOCAL pghistory.allow_history_changes = on")
        conn.execute(f"UPDATE orders_event SET pgh_created_at = pgh_created_at - interval '{days} days' "
                     f"WHERE {where}")


@pytest.fixture(params=["plain", "partitioned"])
def orders(request: pytest.FixtureRequest, conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    """orders with three objects: 1 (insert, update 100 days ago; update now), 2 (insert 100 days
    ago only), 3 (insert now)."""
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders')")
    conn.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'new')")
    conn.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
    backdate(conn, 100, "true")
    conn.execute("UPDATE orders SET status = 'shipped' WHERE id = 1")
    conn.execute("INSERT INTO orders VALUES (3, 'new')")
    if request.param == "partitioned":
        conn.execute("SELECT pghistory.track('orders', partition_by => interval '1 month')")
    return conn


def test_prune_keeps_each_objects_latest_event(orders):
    c = orders
    assert value(c, "SELECT pghistory.prune('orders', now() - interval '30 days')") == 2
    assert rows(c, "SELECT pgh_id, pgh_label, id, status FROM orders_event ORDER BY pgh_id") == [
        (2, "insert", 2, "new"), (4, "update", 1, "shipped"), (5, "insert", 3, "new")]
    # what remains still reads right
    assert rows(c, "SELECT id, status FROM pghistory.as_of(NULL::orders, now()) ORDER BY id") == [
        (1, "shipped"), (2, "new"), (3, "new")]
    assert value(c, "SELECT pghistory.prune('orders', now() - interval '30 days')") == 0


def test_prune_without_keep_latest_and_by_age(orders):
    c = orders
    assert value(c, "SELECT pghistory.prune('orders', interval '30 days', keep_latest => false)") == 3
    assert rows(c, "SELECT pgh_id FROM orders_event ORDER BY pgh_id") == [(4,), (5,)]


def test_prune_drops_whole_partitions_where_every_row_may_go(conn):
    c = conn
    c.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    c.execute("SELECT pghistory.track('orders')")
    c.execute("INSERT INTO orders VALUES (1, 'new')")
    backdate(c, 200, "true")
    c.execute("UPDATE orders SET status = 'paid'")
    c.execute("SELECT pghistory.track('orders', partition_by => interval '1 month')")
    old = value(c, "SELECT tableoid::regclass::text FROM orders_event WHERE pgh_label = 'insert'")
    count = value(c, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'orders_event'::regclass")
    assert value(c, "SELECT pghistory.prune('orders', now() - interval '30 days')") == 1
    assert value(c, "SELECT to_regclass(%s)", old) is None
    # the partitions older than the cutoff went, all of them empty but one
    assert value(c, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'orders_event'::regclass") < count
    assert rows(c, "SELECT pgh_label, status FROM orders_event") == [("update", "paid")]


def test_set_retention_is_applied_by_maintain(orders):
    c = orders
    c.execute("SELECT pghistory.set_retention('orders', interval '30 days')")
    assert rows(c, "SELECT keep::text, keep_latest FROM pghistory.history_policy") == [("30 days", True)]
    assert [r[2] for r in rows(c, "SELECT * FROM pghistory.maintain()")] == [2]
    assert value(c, "SELECT count(*) FROM orders_event") == 3
    c.execute("SELECT pghistory.set_retention('orders', NULL)")
    assert [r[2] for r in rows(c, "SELECT * FROM pghistory.maintain()")] == [0]
    with pytest.raises(psycopg.errors.InvalidParameterValue,
                       match=r"^pghistory: retention keep => -1 days keep_latest => true is not a retention\n"):
        c.execute("SELECT pghistory.set_retention('orders', interval '-1 day')")


def test_only_the_event_tables_owner_prunes(orders, make_role, connect):
    c = orders
    writer = make_role("pgh_writer")
    c.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON orders, orders_event TO {}").format(
        sql.Identifier(writer)))
    w = connect(writer)
    for call in ["SELECT pghistory.prune('orders', now())", "SELECT pghistory.set_retention('orders', '1 day')"]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match=r"^pghistory: only the owner of public\.orders_event can (prune|set the retention "
                                 r"of) its history\n"):
            w.execute(call)
    assert rows(w, "SELECT * FROM pghistory.maintain()") == []
    assert value(c, "SELECT count(*) FROM orders_event") == 5
    assert value(c, "SELECT count(*) FROM pghistory.history_policy WHERE keep IS NOT NULL") == 0


def test_writers_go_on_during_prune(orders, connect):
    c = orders
    c.execute("INSERT INTO orders SELECT g, 'new' FROM generate_series(10, 3000) AS g")
    backdate(c, 100, "id >= 10")
    c.execute("UPDATE orders SET status = 'x' WHERE id >= 10")
    written: list[int] = []
    failures: list[BaseException] = []
    started = threading.Event()
    stop = threading.Event()

    def write() -> None:
        w = connect()
        try:
            i = 10000
            while not stop.is_set() or i < 10050:
                i += 1
                w.execute("INSERT INTO orders VALUES (%s, 'new')", (i,))
                written.append(i)
                started.set()
        except BaseException as exc:  # reported below
            failures.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    started.wait(10)
    pruned = value(connect(), "SELECT pghistory.prune('orders', now() - interval '30 days')")
    stop.set()
    thread.join()
    assert failures == []
    assert pruned == 2 + 2991
    assert rows(c, "SELECT id FROM orders_event WHERE id >= 10000 ORDER BY pgh_id") == [(i,) for i in written]
    assert value(c, "SELECT count(*) FROM orders_event WHERE id BETWEEN 10 AND 3000") == 2991


def test_reset_identities_after_a_failover(orders):
    c = orders
    # what a logical-replication subscriber holds after failover: rows, but the sequence where it was
    with c.transaction():
        c.execute("INSERT INTO orders_event (pgh_id, pgh_label, pgh_obj_id, id, status) "
                  "VALUES (6, 'insert', 7, 7, 'new'), (7, 'insert', 8, 8, 'new')")
        c.execute("SELECT setval(pg_get_serial_sequence('orders_event', 'pgh_id'), 5)")
    if value(c, "SELECT relkind::text FROM pg_class WHERE oid = 'orders_event'::regclass") == "r":
        with pytest.raises(psycopg.errors.UniqueViolation, match="orders_event_pkey"):
            c.execute("INSERT INTO orders VALUES (9, 'new')")
    else:  # the key includes pgh_created_at: no error, but a pgh_id twice (the README says so)
        with c.transaction():
            c.execute("INSERT INTO orders VALUES (9, 'new')")
            assert value(c, "SELECT count(*) FROM orders_event WHERE pgh_id = 6") == 2
            c.execute("DELETE FROM orders WHERE id = 9")
            c.execute("SET LOCAL pghistory.allow_history_changes = on")
            c.execute("DELETE FROM orders_event WHERE id = 9")
            c.execute("SELECT setval(pg_get_serial_sequence('orders_event', 'pgh_id'), 5)")
    assert rows(c, "SELECT event_table::text, next_pgh_id FROM pghistory.reset_identities()") == [("orders_event", 8)]
    c.execute("INSERT INTO orders VALUES (9, 'new')")
    assert value(c, "SELECT pgh_id FROM orders_event WHERE id = 9") == 8
    assert rows(c, "SELECT * FROM pghistory.reset_identities()") == []
