"""The edge cases of issue 14's "Done when", for the functions the other time-travel tests cover
less: changes(), blame(), revert_context() and backfill() on composite keys, partitioned tables,
deleted and re-inserted rows, primary-key changes, truncate, fields/exclude-tracked tables and
rows older than tracking. (as_of() has them in test_time_travel.py and test_time_travel_composite.py.)"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
import pytest

from sqlhelpers import rows, value


def moment(conn: psycopg.Connection) -> datetime:
    return value(conn, "SELECT clock_timestamp()")


def error(conn: psycopg.Connection, query: str, *params: Any) -> tuple[str, str]:
    with pytest.raises(psycopg.Error) as info:
        conn.execute(query, params or None)
    return info.value.sqlstate or "", info.value.diag.message_primary or ""


def blame(conn: psycopg.Connection, table: str, obj_id: Any) -> list[tuple[Any, ...]]:
    return rows(conn, f"SELECT \"column\", value, pgh_label FROM pghistory.blame('{table}', %s)", obj_id)


@pytest.fixture(params=["plain", "partitioned"])
def lines(request: pytest.FixtureRequest, conn: psycopg.Connection) -> str:
    """lines keyed by (order_id, line), plain or partitioned by order_id, tracked, empty."""
    partition = " PARTITION BY LIST (order_id)" if request.param == "partitioned" else ""
    conn.execute(f"CREATE TABLE lines (order_id int, line text, qty int, PRIMARY KEY (order_id, line)){partition}")
    if partition:
        conn.execute("CREATE TABLE lines_1 PARTITION OF lines FOR VALUES IN (1)")
        conn.execute("CREATE TABLE lines_2 PARTITION OF lines FOR VALUES IN (2)")
    return request.param


def test_changes_and_blame_across_a_truncate(conn, lines):
    conn.execute("SELECT pghistory.track('lines')")
    conn.execute("INSERT INTO lines VALUES (1, 'a', 5), (2, 'b', 6)")
    t1 = moment(conn)
    conn.execute("TRUNCATE lines")
    assert rows(conn, "SELECT obj_id, change FROM pghistory.changes('lines', %s)", t1) == [
        ('[1, "a"]', "deleted"), ('[2, "b"]', "deleted")]
    # a row gone: its last recorded state, and the events that made it
    assert blame(conn, "lines", '[1, "a"]') == [("order_id", 1, "insert"), ("line", "a", "insert"), ("qty", 5, "insert")]
    conn.execute("INSERT INTO lines VALUES (1, 'a', 9)")
    assert rows(conn, "SELECT obj_id, change, diff FROM pghistory.changes('lines', %s)", t1) == [
        ('[1, "a"]', "updated", {"qty": [5, 9]}), ('[2, "b"]', "deleted", {
            "order_id": [2, None], "line": ["b", None], "qty": [6, None]})]


def test_changes_blame_and_revert_of_a_deleted_and_reinserted_row(conn, lines):
    conn.execute("SELECT pghistory.track('lines')")
    conn.execute("INSERT INTO lines VALUES (1, 'a', 5)")
    t1 = moment(conn)
    with conn.transaction():
        ctx = value(conn, "SELECT pghistory.set_context('{}')")
        conn.execute("DELETE FROM lines")
        conn.execute("INSERT INTO lines VALUES (1, 'a', 7)")
    assert rows(conn, "SELECT obj_id, change, diff FROM pghistory.changes('lines', %s)", t1) == [
        ('[1, "a"]', "updated", {"qty": [5, 7]})]
    assert blame(conn, "lines", '[1, "a"]') == [("order_id", 1, "insert"), ("line", "a", "insert"), ("qty", 7, "insert")]
    assert rows(conn, "SELECT obj_id, action FROM pghistory.revert_context(%s)", ctx) == [('[1, "a"]', "update")]
    assert rows(conn, "SELECT * FROM lines") == [(1, "a", 5)]


def test_a_primary_key_change_in_changes_blame_revert_and_backfill(conn):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders')")
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    t1 = moment(conn)
    with conn.transaction():
        ctx = value(conn, "SELECT pghistory.set_context('{}')")
        conn.execute("UPDATE orders SET id = 5")
    # the new key starts an object whose first event is an update: absent before it (see as_of)
    assert rows(conn, "SELECT obj_id, change FROM pghistory.changes('orders', %s)", t1) == [("5", "created")]
    assert blame(conn, "orders", 5) == [("id", 5, "update"), ("status", "new", "update")]
    assert blame(conn, "orders", 1) == [("id", 1, "insert"), ("status", "new", "insert")]
    assert value(conn, "SELECT pghistory.backfill('orders')") == 0  # 5 has an event already
    # its state before the context was never recorded under its key
    assert error(conn, "SELECT * FROM pghistory.revert_context(%s)", ctx) == (
        "55000", f"pghistory: cannot revert context {ctx}: the state before it of public.orders 5 is not recorded")
    assert rows(conn, "SELECT * FROM orders") == [(5, "new")]


def test_rows_older_than_tracking_in_changes_blame_revert_and_backfill(conn, lines):
    conn.execute("INSERT INTO lines VALUES (1, 'a', 5), (2, 'b', 6)")
    conn.execute("SELECT pghistory.track('lines')")
    t1 = moment(conn)
    with conn.transaction():
        ctx = value(conn, "SELECT pghistory.set_context('{}')")
        conn.execute("UPDATE lines SET qty = 0 WHERE line = 'b'")
    # untouched since tracking: not a change; its first update: created (nothing known before)
    assert rows(conn, "SELECT obj_id, change FROM pghistory.changes('lines', %s)", t1) == [('[2, "b"]', "created")]
    assert blame(conn, "lines", '[1, "a"]') == [("order_id", 1, None), ("line", "a", None), ("qty", 5, None)]
    assert blame(conn, "lines", '[2, "b"]') == [("order_id", 2, "update"), ("line", "b", "update"), ("qty", 0, "update")]
    assert error(conn, "SELECT * FROM pghistory.revert_context(%s)", ctx) == (
        "55000", f'pghistory: cannot revert context {ctx}: the state before it of public.lines [2, "b"] is not recorded')
    assert value(conn, "SELECT pghistory.backfill('lines')") == 1  # only the row without events
    assert blame(conn, "lines", '[1, "a"]') == [
        ("order_id", 1, "backfill"), ("line", "a", "backfill"), ("qty", 5, "backfill")]


def test_tables_tracked_with_fields_or_exclude(conn):
    conn.execute("CREATE TABLE docs (id int PRIMARY KEY, title text, secret text)")
    conn.execute("INSERT INTO docs VALUES (1, 'a', 's')")
    conn.execute("SELECT pghistory.track('docs', fields => '{id,title}')")
    assert value(conn, "SELECT pghistory.backfill('docs')") == 1
    with conn.transaction():
        ctx = value(conn, "SELECT pghistory.set_context('{}')")
        conn.execute("UPDATE docs SET title = 'b', secret = 't'")
    assert rows(conn, "SELECT title FROM docs_event ORDER BY pgh_id") == [("a",), ("b",)]
    assert blame(conn, "docs", 1) == [("id", 1, "backfill"), ("title", "b", "update")]
    # changes() and revert_context() rebuild rows, which needs every column
    assert error(conn, "SELECT * FROM pghistory.changes('docs')")[0] == "0A000"
    assert error(conn, "SELECT * FROM pghistory.revert_context(%s)", ctx)[0] == "0A000"
