"""Retention (issue 15): prune() and set_retention() + maintain() remove old history, each object
keeping its latest event; partitioned tables lose whole partitions; only the event table's
owner may; writers go on meanwhile. And reset_identities(), the fix after a failover."""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
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


@contextlib.contextmanager
def timed_writer(connect: Callable[..., psycopg.Connection[Any]]) -> Iterator[list[float]]:
    """A writer inserting into orders throughout the block; yields how long each insert took."""
    took: list[float] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def write() -> None:
        w = connect()
        try:
            i = 20000
            while not stop.is_set():
                i += 1
                start = time.monotonic()
                w.execute("INSERT INTO orders VALUES (%s, 'new')", (i,))
                took.append(time.monotonic() - start)
        except BaseException as exc:  # reported below
            failures.append(exc)

    thread = threading.Thread(target=write)
    thread.start()
    while not took and not failures:
        time.sleep(0.01)
    try:
        yield took
    finally:
        stop.set()
        thread.join()
    assert failures == []


@pytest.fixture
def old_partition(conn: psycopg.Connection[Any]) -> tuple[psycopg.Connection[Any], str]:
    """orders, its event table partitioned by month, with three events 100 days old in a
    partition of their own; returns that partition."""
    c = conn
    c.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    c.execute("SELECT pghistory.track('orders')")
    c.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'new')")
    c.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
    backdate(c, 100, "true")
    c.execute("SELECT pghistory.track('orders', partition_by => interval '1 month')")
    return c, value(c, "SELECT DISTINCT tableoid::regclass::text FROM orders_event")


def reading(connect: Callable[..., psycopg.Connection[Any]]) -> psycopg.Connection[Any]:
    """A transaction that read the whole event table and goes on (a long report, say): it holds
    ACCESS SHARE on the event table and on every partition until it ends."""
    reader = connect(autocommit=False)
    reader.execute("SELECT count(*) FROM orders_event").fetchone()
    return reader


def test_prune_waits_for_a_long_reader_at_most_lock_timeout(old_partition, connect):
    c, old = old_partition
    reader = reading(connect)
    # (statement_timeout: without a bound on its locks, prune() would wait for the reader for ever)
    p = connect(options="-c statement_timeout=20s")
    warnings: list[str] = []
    p.add_notice_handler(lambda d: warnings.append(f"{d.severity}: {d.message_primary}"))
    with timed_writer(connect) as took:
        start = time.monotonic()
        removed = value(p, "SELECT pghistory.prune('orders', interval '30 days', keep_latest => false, "
                           "lock_timeout => interval '200 milliseconds')")
        elapsed = time.monotonic() - start
        time.sleep(0.3)  # the writer goes on while the reader still reads
        during = len(took)
    assert removed == 0 and elapsed < 5
    # (the partitions before the cutoff: the old events' one and the empty ones after it)
    assert len(warnings) == 1 and re.fullmatch(
        r"WARNING: pghistory: prune\(\) left the partitions (public\.orders_event_p\d{8}, )*"
        rf"public\.{old}(, public\.orders_event_p\d{{8}})* for the next run: in use by another session for "
        r"longer than 00:00:00\.2", warnings[0]), warnings
    # writers waited for the DROP's lock request at most lock_timeout, not for the reader
    assert during > 3 and max(took) < 3, took
    assert value(c, "SELECT count(*) FROM orders_event WHERE id < 3") == 3
    reader.rollback()
    # the next run finishes the job
    assert value(p, "SELECT pghistory.prune('orders', interval '30 days', keep_latest => false)") == 3
    assert value(c, "SELECT to_regclass(%s)", old) is None
    assert value(c, "SELECT count(*) FROM orders_event WHERE id < 3") == 0


def test_maintain_waits_for_a_long_reader_at_most_lock_timeout(old_partition, connect):
    c, old = old_partition
    c.execute("SELECT pghistory.set_retention('orders', interval '30 days', keep_latest => false)")
    # an event far ahead lands in the default partition: maintain() must make its partition
    c.execute("INSERT INTO orders_event (pgh_created_at, pgh_label, pgh_obj_id) "
              "VALUES (now() + interval '1 year', 'manual', -1)")
    reader = reading(connect)
    m = connect(options="-c statement_timeout=20s")
    with timed_writer(connect) as took:
        start = time.monotonic()
        ran = rows(m, "SELECT event_table::text, partitions_made, events_pruned, busy::text[] "
                      "FROM pghistory.maintain(lock_timeout => interval '200 milliseconds')")
        elapsed = time.monotonic() - start
        time.sleep(0.3)
        during = len(took)
    # the partition could not be attached (the reader holds the default partition), so nothing
    # of the table's partitions was touched: all of it is left for the next run, and said so
    assert ran == [("orders_event", 0, 0, ["orders_event"])] and elapsed < 5
    assert during > 3 and max(took) < 3, took
    assert value(c, "SELECT count(*) FROM orders_event WHERE id < 3") == 3
    reader.rollback()
    assert rows(m, "SELECT event_table::text, partitions_made, events_pruned, busy::text[] "
                   "FROM pghistory.maintain()") == [("orders_event", 1, 3, [])]
    assert value(c, "SELECT to_regclass(%s)", old) is None
    assert value(c, "SELECT count(*) FROM ONLY orders_event_default") == 0
    with pytest.raises(psycopg.errors.InvalidParameterValue,
                       match=r"^pghistory: lock_timeout 00:00:00 is not a lock timeout\n"):
        m.execute("SELECT * FROM pghistory.maintain(lock_timeout => interval '0')")


def test_reset_identities_after_a_failover(orders):
    c = orders
    # what a logical-replication subscriber holds after failover: rows, but the sequence where it was
    with c.transaction():
        c.execute("INSERT INTO orders_event (pgh_id, pgh_label, pgh_obj_id, id, status) "
                  "VALUES (6, 'insert', 7, 7, 'new'), (7, 'insert', 8, 8, 'new')")
        c.execute("SELECT setval('pghistory.event_id_seq', 5)")
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
            c.execute("SELECT setval('pghistory.event_id_seq', 5)")
    assert rows(c, "SELECT event_table::text, next_pgh_id FROM pghistory.reset_identities()") == [("orders_event", 8)]
    c.execute("INSERT INTO orders VALUES (9, 'new')")
    assert value(c, "SELECT pgh_id FROM orders_event WHERE id = 9") == 8
    assert rows(c, "SELECT * FROM pghistory.reset_identities()") == []
