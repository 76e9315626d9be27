"""Time travel: pghistory.as_of() (a table, one object), changes() and blame(), and what they refuse."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
import pytest

from sqlhelpers import rows, value


@pytest.fixture(params=["statement", "row"])
def level(request: pytest.FixtureRequest) -> str:
    """Every behaviour here holds at both trigger levels."""
    return str(request.param)


def moment(conn: psycopg.Connection) -> datetime:
    """A moment between the transactions before and after it (pgh_created_at is a transaction's start)."""
    return value(conn, "SELECT clock_timestamp()")


def error(conn: psycopg.Connection, query: str, *params: Any) -> tuple[str, str, str | None]:
    """The SQLSTATE, primary message and hint of the error a query raises."""
    with pytest.raises(psycopg.Error) as info:
        conn.execute(query, params or None)
    return info.value.sqlstate or "", info.value.diag.message_primary or "", info.value.diag.message_hint


def as_of(conn: psycopg.Connection, at: datetime, table: str = "orders") -> list[tuple[Any, ...]]:
    return rows(conn, f"SELECT * FROM pghistory.as_of(NULL::{table}, %s) ORDER BY 1", at)


@pytest.fixture
def orders(conn: psycopg.Connection, level: str) -> dict[str, datetime]:
    """orders with a history: t0 empty, t1 two rows, t2 one updated, t3 one deleted, t4 one re-inserted."""
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, amount numeric)")
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    t = {"t0": moment(conn)}
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10), (2, 'new', 20)")
    t["t1"] = moment(conn)
    conn.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
    t["t2"] = moment(conn)
    conn.execute("DELETE FROM orders WHERE id = 2")
    t["t3"] = moment(conn)
    conn.execute("INSERT INTO orders VALUES (2, 'again', 21)")
    t["t4"] = moment(conn)
    return t


def test_as_of_returns_the_table_as_it_was_at_each_moment(conn, orders):
    assert as_of(conn, orders["t0"]) == []
    assert as_of(conn, orders["t1"]) == [(1, "new", 10), (2, "new", 20)]
    assert as_of(conn, orders["t2"]) == [(1, "paid", 10), (2, "new", 20)]
    assert as_of(conn, orders["t3"]) == [(1, "paid", 10)]
    assert as_of(conn, orders["t4"]) == [(1, "paid", 10), (2, "again", 21)]


def test_as_of_rows_are_typed_and_join_with_other_pasts(conn, orders):
    conn.execute("CREATE TABLE customers (id int PRIMARY KEY, name text)")
    conn.execute("SELECT pghistory.track('customers')")
    conn.execute("INSERT INTO customers VALUES (1, 'ann')")
    t5 = moment(conn)
    conn.execute("UPDATE customers SET name = 'anne'")
    assert conn.execute("""
        SELECT o.id, o.status, c.name, pg_typeof(o)::text
          FROM pghistory.as_of(NULL::orders, %(t)s) AS o
          JOIN pghistory.as_of(NULL::customers, %(t)s) AS c ON c.id = o.id""", {"t": t5}).fetchall() == [
        (1, "paid", "ann", "orders")]


def test_as_of_one_object_takes_its_key_in_any_type(conn, orders):
    assert rows(conn, "SELECT * FROM pghistory.as_of(NULL::orders, %s, 2)", orders["t1"]) == [(2, "new", 20)]
    assert rows(conn, "SELECT * FROM pghistory.as_of(NULL::orders, %s, '2')", orders["t3"]) == []
    assert rows(conn, "SELECT * FROM pghistory.as_of(NULL::orders, %s, 2::bigint)", orders["t4"]) == [(2, "again", 21)]
    assert rows(conn, "SELECT * FROM pghistory.as_of(NULL::orders, now(), 1)") == [(1, "paid", 10)]
    assert error(conn, "SELECT * FROM pghistory.as_of(NULL::orders, now(), 'x')")[:2] == (
        "22023", "pghistory: obj_id 'x' is not a valid key of public.orders (integer)")


def test_as_of_counts_a_transaction_at_its_start(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, amount numeric)")
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    with conn.transaction():
        start = value(conn, "SELECT now()")
        conn.execute("INSERT INTO orders VALUES (1, 'new', 1)")
        conn.execute("UPDATE orders SET status = 'paid'")
    assert as_of(conn, start) == []  # before the transaction's start
    assert rows(conn, "SELECT * FROM pghistory.as_of(NULL::orders, %s + interval '1 microsecond')", start) == [
        (1, "paid", 1)]  # its last write wins, even though it committed later


def test_rows_older_than_tracking_are_as_they_are_from_tracking_on(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, amount numeric)")
    conn.execute("INSERT INTO orders VALUES (1, 'old', 1), (2, 'old', 2)")
    before = moment(conn)
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    t1 = moment(conn)
    conn.execute("UPDATE orders SET status = 'seen' WHERE id = 2")
    t2 = moment(conn)
    assert as_of(conn, before) == []       # before tracking: nothing is known
    assert as_of(conn, t1) == [(1, "old", 1)]  # 2's state before its update was never recorded
    assert as_of(conn, t2) == [(1, "old", 1), (2, "seen", 2)]


def test_backfilled_rows_are_known_from_tracking_on(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, amount numeric)")
    conn.execute("INSERT INTO orders VALUES (1, 'old', 1), (2, 'old', 2)")
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    t1 = moment(conn)
    assert value(conn, "SELECT pghistory.backfill('orders')") == 2
    conn.execute("UPDATE orders SET status = 'seen' WHERE id = 2")
    assert as_of(conn, t1) == [(1, "old", 1), (2, "old", 2)]
    assert rows(conn, "SELECT pgh_label, pgh_diff FROM pghistory.events('orders', obj_id => '2')") == [
        ("backfill", None), ("update", {"status": ["old", "seen"]})]


def test_as_of_after_a_primary_key_change(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, amount numeric)")
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    conn.execute("INSERT INTO orders VALUES (1, 'new', 1)")
    t1 = moment(conn)
    conn.execute("UPDATE orders SET id = 5")
    t2 = moment(conn)
    assert as_of(conn, t2) == [(5, "new", 1)]
    # the old key left without an event of its own, and the new one's earlier state is not recorded
    # under its key: before the change, neither shows (the README says so)
    assert as_of(conn, t1) == []


def test_as_of_after_truncate(conn, orders):
    conn.execute("TRUNCATE orders")
    t5 = moment(conn)
    assert as_of(conn, t5) == []
    assert as_of(conn, orders["t4"]) == [(1, "paid", 10), (2, "again", 21)]


def test_as_of_of_a_partitioned_table(conn, level):
    conn.execute("CREATE TABLE m (id int PRIMARY KEY, v text) PARTITION BY RANGE (id)")
    conn.execute("CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (10)")
    conn.execute("CREATE TABLE m2 PARTITION OF m FOR VALUES FROM (10) TO (20)")
    conn.execute("SELECT pghistory.track('m', level => %s)", (level,))
    conn.execute("INSERT INTO m VALUES (1, 'a'), (11, 'b')")
    t1 = moment(conn)
    conn.execute("UPDATE m2 SET v = 'c'")
    conn.execute("DELETE FROM m1")
    assert as_of(conn, t1, "m") == [(1, "a"), (11, "b")]
    assert as_of(conn, moment(conn), "m") == [(11, "c")]


def test_as_of_refuses_what_it_cannot_rebuild(conn):
    conn.execute("CREATE TABLE part (id int PRIMARY KEY, a text, b text)")
    conn.execute("SELECT pghistory.track('part', exclude => '{b}')")
    assert error(conn, "SELECT * FROM pghistory.as_of(NULL::part, now())") == (
        "0A000", "pghistory: public.part_event does not record every column of public.part (not: b), "
                 "so as_of() cannot rebuild its rows", "as_of() needs the table tracked without fields or exclude.")
    conn.execute("CREATE TABLE cond (id int PRIMARY KEY, a text)")
    conn.execute("""SELECT pghistory.track('cond', trackers => ARRAY[pghistory.insert_event(),
                        pghistory.update_event(changed => '{a}'), pghistory.delete_event()])""")
    assert error(conn, "SELECT * FROM pghistory.as_of(NULL::cond, now())")[:2] == (
        "0A000", "pghistory: the trackers of public.cond do not record every change (missing: update, truncate), "
                 "so as_of() cannot rebuild its rows")
    conn.execute("CREATE TABLE untracked (id int PRIMARY KEY)")
    assert error(conn, "SELECT * FROM pghistory.as_of(NULL::untracked, now())")[:2] == (
        "42704", "pghistory: public.untracked is not tracked")
    assert error(conn, "SELECT * FROM pghistory.as_of(NULL::int, now())")[:2] == (
        "22023", "pghistory: as_of() takes a table's row type, not integer")
    conn.execute("CREATE TABLE nokey (a text)")
    conn.execute("SELECT pghistory.track('nokey')")
    assert error(conn, "SELECT * FROM pghistory.as_of(NULL::nokey, now())")[:2] == (
        "0A000", "pghistory: public.nokey has no primary key, so as_of() cannot tell its rows apart")
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    conn.execute("SELECT pghistory.track('orders')")
    assert error(conn, "SELECT * FROM pghistory.as_of(NULL::orders, NULL)")[:2] == (
        "22023", "pghistory: as_of() needs a moment, not NULL")


# -- changes() ------------------------------------------------------------------------------


def test_changes_lists_each_object_with_its_net_diff(conn, orders):
    assert rows(conn, "SELECT * FROM pghistory.changes('orders', %s, %s)", orders["t0"], orders["t4"]) == [
        ("1", "created", {"id": [None, 1], "status": [None, "paid"], "amount": [None, 10]}),
        ("2", "created", {"id": [None, 2], "status": [None, "again"], "amount": [None, 21]}),
    ]
    assert rows(conn, "SELECT * FROM pghistory.changes('orders', %s, %s)", orders["t1"], orders["t3"]) == [
        ("1", "updated", {"status": ["new", "paid"]}),
        ("2", "deleted", {"id": [2, None], "status": ["new", None], "amount": [20, None]}),
    ]
    assert rows(conn, "SELECT * FROM pghistory.changes('orders', %s)", orders["t1"]) == [
        ("1", "updated", {"status": ["new", "paid"]}),
        ("2", "updated", {"status": ["new", "again"], "amount": [20, 21]}),
    ]
    assert rows(conn, "SELECT * FROM pghistory.changes('orders', %s, %s)", orders["t4"], orders["t4"]) == []
    assert error(conn, "SELECT * FROM pghistory.changes('orders', now(), now() - interval '1 day')")[0] == "22023"


def test_changes_leaves_out_what_came_back(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, amount numeric)")
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10)")
    t1 = moment(conn)
    conn.execute("UPDATE orders SET status = 'x'")
    conn.execute("UPDATE orders SET status = 'new'")
    conn.execute("INSERT INTO orders VALUES (2, 'gone', 1)")
    conn.execute("DELETE FROM orders WHERE id = 2")
    assert rows(conn, "SELECT * FROM pghistory.changes('orders', %s)", t1) == []


# -- blame() --------------------------------------------------------------------------------


def test_blame_names_the_event_that_last_changed_each_column(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, amount numeric)")
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    with conn.transaction():
        alice = value(conn, """SELECT pghistory.set_context('{"user": "alice"}')""")
        conn.execute("INSERT INTO orders VALUES (1, 'new', 10)")
    with conn.transaction():
        bob = value(conn, """SELECT pghistory.set_context('{"user": "bob"}')""")
        conn.execute("UPDATE orders SET status = 'paid'")
    conn.execute("UPDATE orders SET amount = 11")
    assert rows(conn, "SELECT \"column\", value, pgh_id, pgh_label, pgh_context_id, pgh_context"
                      " FROM pghistory.blame('orders', 1)") == [
        ("id", 1, 1, "insert", alice, {"user": "alice"}),
        ("status", "paid", 2, "update", bob, {"user": "bob"}),
        ("amount", 11, 3, "update", None, None),
    ]
    conn.execute("DELETE FROM orders")
    conn.execute("INSERT INTO orders VALUES (1, 'back', 11)")
    assert rows(conn, "SELECT \"column\", value, pgh_id, pgh_label FROM pghistory.blame('orders', '1')") == [
        ("id", 1, 5, "insert"), ("status", "back", 5, "insert"), ("amount", 11, 5, "insert")]
    conn.execute("DELETE FROM orders")
    assert rows(conn, "SELECT \"column\", value, pgh_id, pgh_label FROM pghistory.blame('orders', 1)") == [
        ("id", 1, 5, "insert"), ("status", "back", 5, "insert"), ("amount", 11, 5, "insert")]


def test_blame_covers_the_tracked_columns_only(conn):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text, secret text)")
    conn.execute("SELECT pghistory.track('orders', exclude => '{secret}')")
    conn.execute("INSERT INTO orders VALUES (1, 'new', 's')")
    conn.execute("UPDATE orders SET status = 'paid', secret = 't'")
    assert rows(conn, "SELECT \"column\", value, pgh_id FROM pghistory.blame('orders', 1)") == [
        ("id", 1, 1), ("status", "paid", 2)]
    assert rows(conn, "SELECT \"column\", value, pgh_id FROM pghistory.blame('orders', 9)") == [
        ("id", None, None), ("status", None, None)]


# -- who may call what ----------------------------------------------------------------------


def test_time_travel_reads_with_the_callers_rights(conn, connect, make_role, orders):
    role = make_role()
    reader = connect(user=role)
    for query in ("SELECT * FROM pghistory.as_of(NULL::orders, now())",
                  "SELECT * FROM pghistory.changes('orders')", "SELECT * FROM pghistory.blame('orders', 1)"):
        sqlstate, message, _ = error(reader, query)
        assert (sqlstate, message) == ("42501", "pghistory: permission denied for the history in public.orders_event")
    conn.execute(f"GRANT SELECT ON orders_event TO {role}")
    assert error(reader, "SELECT * FROM pghistory.as_of(NULL::orders, now())")[:2] == (
        "42501", "permission denied for table orders")
    conn.execute(f"GRANT SELECT ON orders TO {role}")
    assert as_of(reader, orders["t2"]) == [(1, "paid", 10), (2, "new", 20)]
    assert [r[0] for r in rows(reader, "SELECT * FROM pghistory.changes('orders')")] == ["1", "2"]
    assert rows(reader, "SELECT \"column\", value FROM pghistory.blame('orders', 1)") == [
        ("id", 1), ("status", "paid"), ("amount", 10)]
    # reading gives no right to write: revert_context() writes as its caller
    with reader.transaction():
        ctx = value(conn, "SELECT pghistory.set_context('{}', false)")
        conn.execute("UPDATE orders SET amount = 99 WHERE id = 1")
        conn.execute("SELECT pghistory.clear_context()")
    assert error(reader, "SELECT * FROM pghistory.revert_context(%s)", ctx)[:2] == (
        "42501", "permission denied for table orders")
    assert rows(reader, "SELECT obj_id, action FROM pghistory.revert_context(%s, dry_run => true)", ctx) == [
        ("1", "update")]
    assert error(reader, "SELECT pghistory.backfill('orders')")[:2] == (
        "42501", "pghistory: permission denied to backfill public.orders")


def test_events_take_the_key_in_its_own_type(conn, orders):
    expected = [(1, "insert"), (3, "update")]
    for call in ("pghistory.events('orders', obj_id => 1)", "pghistory.events('orders', 1)",
                 "pghistory.events('orders', obj_id => 1::bigint)", "pghistory.events('orders', obj_id => '1')",
                 "pghistory.events('orders', '1')", "pghistory.events('orders', 1, since => '-infinity')"):
        assert rows(conn, f"SELECT pgh_id, pgh_label FROM {call}") == expected, call
    assert len(rows(conn, "SELECT * FROM pghistory.events('orders')")) == 5
    assert len(rows(conn, "SELECT * FROM pghistory.events()")) == 5


def test_track_says_what_a_table_without_an_identity_will_lack(conn):
    notices: list[tuple[str, str | None]] = []
    conn.add_notice_handler(lambda d: notices.append((d.message_primary or "", d.message_detail)))
    conn.execute("CREATE TABLE nokey (a text)")
    conn.execute("CREATE TABLE pair (a int, b int, PRIMARY KEY (a, b))")
    conn.execute("CREATE TABLE keyed (id int PRIMARY KEY)")
    for table in ("nokey", "pair", "keyed", "nokey"):  # again: said once, when tracking starts
        conn.execute("SELECT pghistory.track(%s)", (table,))
    detail = ("Without it there are no per-object histories (events(obj_id)), no update diffs, and no "
              "create_event(), revert(), backfill(), as_of(), changes(), blame() or revert_context().")
    assert notices == [  # a composite key is an identity too: only the table without a key is told
        ("pghistory: public.nokey has no primary key, so its events will have no pgh_obj_id", detail)]


def test_events_changed_keeps_the_events_whose_diff_names_a_column(conn, orders):
    conn.execute("UPDATE orders SET amount = 11 WHERE id = 1")
    conn.execute("UPDATE orders SET amount = 22, status = 'paid' WHERE id = 2")
    assert rows(conn, "SELECT pgh_obj_id, pgh_diff FROM pghistory.events('orders', changed => '{status}')") == [
        ("1", {"status": ["new", "paid"]}), ("2", {"status": ["again", "paid"], "amount": [21, 22]})]
    assert rows(conn, "SELECT pgh_obj_id FROM pghistory.events('orders', changed => '{status,amount}')") == [
        ("1",), ("1",), ("2",)]
    assert rows(conn, "SELECT pgh_obj_id FROM pghistory.events(changed => '{amount}')") == [("1",), ("2",)]
    assert rows(conn, "SELECT pgh_obj_id FROM pghistory.events('orders', 2, changed => '{amount}')") == [("2",)]
    assert rows(conn, "SELECT * FROM pghistory.events('orders', changed => '{nosuch}')") == []


# -- how as_of() finds the past: both ways it picks the objects to rebuild, and stragglers -----


@pytest.fixture(params=["every row", "the rows changed since"])
def rebuilt(request: pytest.FixtureRequest) -> str:
    """as_of() rebuilds every row from its events when at least as many events came since the
    moment as the table has rows (by the planner's count: none before ANALYZE), else only the
    rows those events touched; given objects narrow the search when they are a tenth of the
    rows or fewer. Both ways must give the same past."""
    return str(request.param)


def settle(conn: psycopg.Connection, rebuilt: str, table: str = "orders") -> None:
    if rebuilt == "the rows changed since":
        conn.execute(f"ANALYZE {table}")


def test_as_of_rebuilds_the_same_past_either_way(conn, level, rebuilt):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, amount numeric)")
    conn.execute("INSERT INTO orders SELECT g, 'idle', g FROM generate_series(100, 139) AS g")  # older than tracking
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    idle = [(g, "idle", g) for g in range(100, 140)]
    t = {"t0": moment(conn)}
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10), (2, 'new', 20), (3, 'new', 30)")
    t["t1"] = moment(conn)
    conn.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
    conn.execute("DELETE FROM orders WHERE id = 2")
    t["t2"] = moment(conn)
    conn.execute("INSERT INTO orders VALUES (2, 'again', 21)")
    conn.execute("UPDATE orders SET id = 4 WHERE id = 3")
    t["t3"] = moment(conn)
    settle(conn, rebuilt)
    assert as_of(conn, t["t0"]) == idle
    # 3's key changed to 4 after t2: before the change the row shows under neither key
    assert as_of(conn, t["t1"]) == [(1, "new", 10), (2, "new", 20)] + idle
    assert as_of(conn, t["t2"]) == [(1, "paid", 10)] + idle
    assert as_of(conn, t["t3"]) == [(1, "paid", 10), (2, "again", 21), (4, "new", 30)] + idle
    assert rows(conn, "SELECT * FROM pghistory.as_of(NULL::orders, %s, 2)", t["t1"]) == [(2, "new", 20)]
    assert rows(conn, "SELECT * FROM pghistory.as_of(NULL::orders, %s, 2)", t["t2"]) == []
    assert rows(conn, "SELECT * FROM pghistory.as_of(NULL::orders, %s, 100)", t["t1"]) == [(100, "idle", 100)]
    assert rows(conn, "SELECT obj_id, change FROM pghistory.changes('orders', %s, %s)", t["t1"], t["t3"]) == [
        ("1", "updated"), ("2", "updated"), ("4", "created")]
    assert rows(conn, "SELECT obj_id, change FROM pghistory.changes('orders', %s, %s)", t["t0"], t["t2"]) == [
        ("1", "created")]


def test_as_of_counts_a_transaction_that_started_before_the_moment_and_wrote_after(conn, connect, rebuilt):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, amount numeric)")
    conn.execute("SELECT pghistory.track('orders')")
    conn.execute("INSERT INTO orders SELECT g, 'new', g FROM generate_series(1, 40) AS g")
    settle(conn, rebuilt)
    long = connect(autocommit=False)
    long.execute("SELECT now()")  # its transaction starts here, before the moment
    at = moment(conn)
    conn.execute("UPDATE orders SET status = 'later' WHERE id = 1")
    conn.execute("DELETE FROM orders WHERE id = 3")
    long.execute("UPDATE orders SET status = 'long' WHERE id IN (1, 2)")  # written after the 'later' one
    long.commit()
    conn.execute("UPDATE orders SET amount = 0 WHERE id = 2")
    expected = [(1, "long", 1), (2, "long", 2)] + [(g, "new", g) for g in range(3, 41)]
    assert as_of(conn, at) == expected  # the state at `at`: every change of the transactions begun before it
    assert rows(conn, "SELECT * FROM pghistory.as_of(NULL::orders, %s, 1)", at) == [(1, "long", 1)]
    assert rows(conn, "SELECT * FROM pghistory.as_of(NULL::orders, %s, 3)", at) == [(3, "new", 3)]
    assert as_of(conn, moment(conn))[:2] == [(1, "long", 1), (2, "long", 0)]  # the long one wrote 1 last
    assert rows(conn, "SELECT obj_id, diff FROM pghistory.changes('orders', %s)", at) == [
        ("2", {"amount": [2, 0]}),
        ("3", {"id": [3, None], "status": ["new", None], "amount": [3, None]})]


def test_events_changed_is_the_diff_filter_on_every_path(conn):
    """changed is tested on the columns before any diff is built: it keeps exactly the events
    whose pgh_diff names a column, with 'old' snapshots, json (no equality) and since too."""
    conn.execute("CREATE TABLE docs (id int PRIMARY KEY, title text, body json)")
    conn.execute("""SELECT pghistory.track('docs', trackers => ARRAY[pghistory.insert_event(),
                        pghistory.update_event(), pghistory.update_event('before', snapshot => 'old'),
                        pghistory.delete_event()])""")
    start = moment(conn)
    conn.execute("""INSERT INTO docs VALUES (1, 'a', '{"x": 1}'), (2, 'b', '{"x": 2}')""")
    conn.execute("""UPDATE docs SET body = '{"x": 3}' WHERE id = 1""")
    conn.execute("UPDATE docs SET title = 'c'")
    conn.execute("DELETE FROM docs WHERE id = 2")
    conn.execute("""INSERT INTO docs VALUES (2, 'd', '{"x": 2}')""")
    every = rows(conn, "SELECT pgh_id, pgh_diff FROM pghistory.events('docs')")
    for changed in (["title"], ["body"], ["title", "body"], ["id"], ["nosuch"]):
        expected = [i for i, diff in every if diff and set(diff) & set(changed)]
        for extra in ("", ", since => %s"):
            query = f"SELECT pgh_id FROM pghistory.events('docs', changed => %s{extra})"
            got = [r[0] for r in rows(conn, query, changed, *([start] if extra else []))]
            assert got == expected, (changed, extra)
    assert [r[0] for r in rows(conn, "SELECT pgh_id FROM pghistory.events('docs', 1, changed => '{body}')")] == [
        i for i, diff in every if diff and "body" in diff and i in
        [r[0] for r in rows(conn, "SELECT pgh_id FROM pghistory.events('docs', 1)")]]
    assert any(diff and "body" in diff for _, diff in every) and any(diff and "title" in diff for _, diff in every)
