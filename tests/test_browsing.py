"""Browsing history: pghistory.events(), the aggregate_events view, diffs, revert(), and who may read what."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from sqlhelpers import events, rows, value

# events() and the view, without pgh_slug/pgh_model/pgh_obj_model/pgh_created_at (checked on their own)
SHORT = "pgh_id, pgh_label, pgh_obj_id, pgh_data, pgh_diff"
ALL_BUT_TIME = ("pgh_slug, pgh_model, pgh_id, pgh_label, pgh_data, pgh_diff, pgh_context_id, pgh_context,"
                " pgh_obj_model, pgh_obj_id")


@pytest.fixture(params=["statement", "row"])
def level(request: pytest.FixtureRequest) -> str:
    """Every behaviour here holds at both trigger levels."""
    return str(request.param)


@pytest.fixture
def orders(conn: psycopg.Connection, level: str) -> str:
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, amount numeric)")
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    return "orders"


def error(conn: psycopg.Connection, query: str, *params: Any) -> tuple[str, str]:
    """The SQLSTATE and primary message of the error a query raises."""
    with pytest.raises(psycopg.Error) as info:
        conn.execute(query, params or None)
    return info.value.sqlstate or "", info.value.diag.message_primary or ""


def browse(conn: psycopg.Connection, args: str = "", columns: str = SHORT, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of pghistory.events(<args>)."""
    return rows(conn, f"SELECT {columns} FROM pghistory.events({args})", *params)


# -- the view and events(): what a row holds ------------------------------------------------


def test_aggregate_events_exists_and_is_empty_when_nothing_is_tracked(conn):
    assert rows(conn, """
        SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
         WHERE attrelid = 'pghistory.aggregate_events'::regclass AND attnum > 0 ORDER BY attnum""") == [
        ("pgh_slug", "text"), ("pgh_model", "text"), ("pgh_id", "bigint"),
        ("pgh_created_at", "timestamp with time zone"), ("pgh_label", "text"), ("pgh_data", "jsonb"),
        ("pgh_diff", "jsonb"), ("pgh_context_id", "uuid"), ("pgh_context", "jsonb"),
        ("pgh_obj_model", "text"), ("pgh_obj_id", "text"), ("pgh_xact", "xid8"),
    ]
    assert rows(conn, "SELECT * FROM pghistory.aggregate_events") == []
    assert rows(conn, "SELECT * FROM pghistory.events()") == []


def test_events_hold_data_diff_and_fk_context(conn, orders):
    with conn.transaction():
        alice = value(conn, """SELECT pghistory.set_context('{"user": "alice"}')""")
        conn.execute("INSERT INTO orders VALUES (1, 'new', 10), (2, 'new', 20)")
    conn.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
    with conn.transaction():
        bob = value(conn, """SELECT pghistory.set_context('{"user": "bob"}')""")
        conn.execute("UPDATE orders SET amount = 15, status = 'shipped' WHERE id = 1")
        conn.execute("DELETE FROM orders WHERE id = 2")
    expected = [
        ("public.orders_event:1", "public.orders_event", 1, "insert", {"id": 1, "status": "new", "amount": 10},
         None, alice, {"user": "alice"}, "public.orders", "1"),
        ("public.orders_event:2", "public.orders_event", 2, "insert", {"id": 2, "status": "new", "amount": 20},
         None, alice, {"user": "alice"}, "public.orders", "2"),
        ("public.orders_event:3", "public.orders_event", 3, "update", {"id": 1, "status": "paid", "amount": 10},
         {"status": ["new", "paid"]}, None, None, "public.orders", "1"),
        ("public.orders_event:4", "public.orders_event", 4, "update", {"id": 1, "status": "shipped", "amount": 15},
         {"status": ["paid", "shipped"], "amount": [10, 15]}, bob, {"user": "bob"}, "public.orders", "1"),
        ("public.orders_event:5", "public.orders_event", 5, "delete", {"id": 2, "status": "new", "amount": 20},
         {}, bob, {"user": "bob"}, "public.orders", "2"),
    ]
    assert browse(conn, "", ALL_BUT_TIME) == expected
    assert browse(conn, "'orders'", ALL_BUT_TIME) == expected
    assert rows(conn, f"SELECT {ALL_BUT_TIME} FROM pghistory.aggregate_events") == expected
    assert rows(conn, """
        SELECT e.pgh_created_at = v.pgh_created_at FROM pghistory.events('orders') AS e
          JOIN orders_event AS v USING (pgh_id) ORDER BY pgh_id""") == [(True,)] * 5


def test_fk_context_shows_the_latest_metadata_json_context_the_metadata_of_each_event(conn, level):
    conn.execute("CREATE TABLE fk_orders (id int PRIMARY KEY, status text)")
    conn.execute("CREATE TABLE json_orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('fk_orders', level => %s)", (level,))
    conn.execute("SELECT pghistory.track('json_orders', level => %s, context => 'json')", (level,))
    with conn.transaction():
        ctx = value(conn, """SELECT pghistory.set_context('{"user": "alice"}')""")
        conn.execute("INSERT INTO fk_orders VALUES (1, 'new')")
        conn.execute("INSERT INTO json_orders VALUES (1, 'new')")
        conn.execute("""SELECT pghistory.set_context('{"reason": "refund"}')""")
        conn.execute("UPDATE fk_orders SET status = 'refunded'")
        conn.execute("UPDATE json_orders SET status = 'refunded'")
    assert browse(conn, "", "pgh_model, pgh_label, pgh_context_id, pgh_context") == [
        ("public.fk_orders_event", "insert", ctx, {"user": "alice", "reason": "refund"}),
        ("public.json_orders_event", "insert", ctx, {"user": "alice"}),
        ("public.fk_orders_event", "update", ctx, {"user": "alice", "reason": "refund"}),
        ("public.json_orders_event", "update", ctx, {"user": "alice", "reason": "refund"}),
    ]


def test_context_mode_none_has_no_context(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders', level => %s, context => 'none')", (level,))
    with conn.transaction():
        ctx = value(conn, """SELECT pghistory.set_context('{"user": "alice"}')""")
        conn.execute("INSERT INTO orders VALUES (1, 'new')")
    assert browse(conn, "'orders'", "pgh_label, pgh_context_id, pgh_context") == [("insert", None, None)]
    assert browse(conn, "context_id => %s", SHORT, ctx) == []


def test_a_table_switched_between_context_modes_keeps_each_events_context(conn):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders')")
    with conn.transaction():
        conn.execute("""SELECT pghistory.set_context('{"mode": "fk"}')""")
        conn.execute("INSERT INTO orders VALUES (1, 'new')")
    conn.execute("SELECT pghistory.track('orders', context => 'json')")
    with conn.transaction():
        conn.execute("""SELECT pghistory.set_context('{"mode": "json"}')""")
        conn.execute("UPDATE orders SET status = 'paid'")
    conn.execute("SELECT pghistory.track('orders', context => 'none')")
    conn.execute("UPDATE orders SET status = 'shipped'")
    assert browse(conn, "'orders'", "pgh_label, pgh_context") == [
        ("insert", {"mode": "fk"}), ("update", {"mode": "json"}), ("update", None)]


def test_names_are_schema_qualified_and_quoted(conn, level):
    conn.execute('CREATE SCHEMA "Sales"')
    conn.execute('CREATE TABLE "Sales"."Order Items" ("Id" text PRIMARY KEY, "select" int)')
    conn.execute("""SELECT pghistory.track('"Sales"."Order Items"', level => %s)""", (level,))
    conn.execute("""INSERT INTO "Sales"."Order Items" VALUES ('a-1', 1)""")
    conn.execute("""UPDATE "Sales"."Order Items" SET "select" = 2""")
    assert browse(conn, """'"Sales"."Order Items"', obj_id => 'a-1'""",
                  "pgh_slug, pgh_model, pgh_obj_model, pgh_obj_id, pgh_data, pgh_diff") == [
        ('"Sales"."Order Items_event":1', '"Sales"."Order Items_event"', '"Sales"."Order Items"', "a-1",
         {"Id": "a-1", "select": 1}, None),
        ('"Sales"."Order Items_event":2', '"Sales"."Order Items_event"', '"Sales"."Order Items"', "a-1",
         {"Id": "a-1", "select": 2}, {"select": [1, 2]}),
    ]


# -- what a diff means, label by label ----------------------------------------------------------


def test_diffs_of_default_trackers(conn, orders):
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10)")
    conn.execute("UPDATE orders SET status = 'paid'")
    conn.execute("UPDATE orders SET amount = 12")
    conn.execute("DELETE FROM orders")
    conn.execute("INSERT INTO orders VALUES (1, 'again', 10)")
    conn.execute("TRUNCATE orders")
    assert browse(conn, "'orders'", "pgh_label, pgh_diff") == [
        ("insert", None),                              # the row did not exist before
        ("update", {"status": ["new", "paid"]}),
        ("update", {"amount": [10, 12]}),
        ("delete", {}),                                # removing a row changes none of its values
        ("insert", None),
        ("truncate", {}),
    ]


def test_diffs_of_old_snapshots_are_the_change_the_update_made(conn, level):
    """django-pghistory #171: with row=OLD its diffs land one event late; here each update shows its own change."""
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text, amount int)")
    conn.execute("""SELECT pghistory.track('orders', level => %s, trackers => ARRAY[
        pghistory.insert_event(), pghistory.update_event(snapshot => 'old'), pghistory.delete_event()])""", (level,))
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10)")
    conn.execute("UPDATE orders SET status = 'paid'")
    assert browse(conn, "'orders'", "pgh_label, pgh_data, pgh_diff") == [
        ("insert", {"id": 1, "status": "new", "amount": 10}, None),
        # the state before the update; the state after it is recorded by the next event
        ("update", {"id": 1, "status": "new", "amount": 10}, None),
    ]
    conn.execute("UPDATE orders SET amount = 12")
    conn.execute("DELETE FROM orders")
    assert browse(conn, "'orders'", "pgh_label, pgh_data, pgh_diff") == [
        ("insert", {"id": 1, "status": "new", "amount": 10}, None),
        ("update", {"id": 1, "status": "new", "amount": 10}, {"status": ["new", "paid"]}),
        ("update", {"id": 1, "status": "paid", "amount": 10}, {"amount": [10, 12]}),
        ("delete", {"id": 1, "status": "paid", "amount": 12}, {}),
    ]


def test_an_update_recorded_old_and_new_shows_its_change_on_both(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("""SELECT pghistory.track('orders', level => %s, trackers => ARRAY[
        pghistory.insert_event(), pghistory.update_event('before_update', snapshot => 'old'),
        pghistory.update_event('update')])""", (level,))
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    conn.execute("UPDATE orders SET status = 'paid'")
    conn.execute("UPDATE orders SET status = 'shipped'")
    assert browse(conn, "'orders'", "pgh_label, pgh_data, pgh_diff") == [
        ("insert", {"id": 1, "status": "new"}, None),
        ("before_update", {"id": 1, "status": "new"}, {"status": ["new", "paid"]}),
        ("update", {"id": 1, "status": "paid"}, {"status": ["new", "paid"]}),
        ("before_update", {"id": 1, "status": "paid"}, {"status": ["paid", "shipped"]}),
        ("update", {"id": 1, "status": "shipped"}, {"status": ["paid", "shipped"]}),
    ]


def test_manual_events_diff_against_the_previous_event(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text, note text)")
    conn.execute("""SELECT pghistory.track('orders', level => %s, trackers => ARRAY[
        pghistory.insert_event(), pghistory.update_event(changed => '{status}'),
        pghistory.manual_event('audit')])""", (level,))
    conn.execute("INSERT INTO orders VALUES (1, 'new', 'a')")
    conn.execute("SELECT pghistory.create_event('orders', 1, 'audit')")
    conn.execute("UPDATE orders SET note = 'b'")               # not recorded: only status changes are
    conn.execute("SELECT pghistory.create_event('orders', 1, 'audit')")
    conn.execute("UPDATE orders SET status = 'paid'")
    assert browse(conn, "'orders'", "pgh_label, pgh_diff") == [
        ("insert", None), ("audit", {}), ("audit", {"note": ["a", "b"]}), ("update", {"status": ["new", "paid"]})]


def test_diffs_compare_values_as_the_triggers_do(conn, level):
    conn.execute("CREATE TABLE docs (id int PRIMARY KEY, body json, pos point, n numeric, tags text[])")
    conn.execute("SELECT pghistory.track('docs', level => %s)", (level,))
    conn.execute("""INSERT INTO docs VALUES (1, '{"a": 1}', '(1,2)', 10, '{x}')""")
    conn.execute("""UPDATE docs SET body = '{"a": 2}', n = 10.0""")  # 10.0 = 10: not a change
    conn.execute("UPDATE docs SET pos = '(3,4)', tags = '{x,y}'")
    assert browse(conn, "'docs'", "pgh_diff") == [
        (None,),
        ({"body": [{"a": 1}, {"a": 2}]},),
        ({"pos": ["(1,2)", "(3,4)"], "tags": [["x"], ["x", "y"]]},),
    ]


def test_a_key_change_starts_a_new_object(conn, orders):
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10)")
    conn.execute("UPDATE orders SET id = 2")
    conn.execute("UPDATE orders SET status = 'paid'")
    assert browse(conn, "'orders'", "pgh_label, pgh_obj_id, pgh_diff") == [
        ("insert", "1", None), ("update", "2", None), ("update", "2", {"status": ["new", "paid"]})]


def test_rows_without_a_primary_key_have_no_diffs(conn, level):
    conn.execute("CREATE TABLE log (line text, n int)")
    conn.execute("SELECT pghistory.track('log', level => %s)", (level,))
    conn.execute("INSERT INTO log VALUES ('a', 1), ('b', 2)")
    conn.execute("UPDATE log SET n = n + 1")
    conn.execute("DELETE FROM log WHERE line = 'a'")
    assert sorted(browse(conn, "'log'", "pgh_label, pgh_obj_id, pgh_data, pgh_diff"), key=str) == sorted([
        ("insert", None, {"line": "a", "n": 1}, None), ("insert", None, {"line": "b", "n": 2}, None),
        ("update", None, {"line": "a", "n": 2}, None), ("update", None, {"line": "b", "n": 3}, None),
        ("delete", None, {"line": "a", "n": 2}, {}),
    ], key=str)


def test_columns_added_and_dropped_are_diffed_as_recorded(conn, orders):
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10)")
    conn.execute("ALTER TABLE orders ADD COLUMN note text")
    conn.execute("UPDATE orders SET note = 'gift'")
    assert browse(conn, "'orders'", "pgh_data, pgh_diff")[-1] == (
        {"id": 1, "status": "new", "amount": 10, "note": "gift"}, {"note": [None, "gift"]})


def test_wide_tables_and_odd_labels(conn, level):
    columns = ", ".join(f"c{i} int" for i in range(1, 61))  # more than jsonb_build_object takes at once
    conn.execute(f"CREATE TABLE wide (id int PRIMARY KEY, {columns})")
    conn.execute("""SELECT pghistory.track('wide', level => %s, trackers => ARRAY[pghistory.insert_event(),
        pghistory.update_event($$it's 100%%$$), pghistory.manual_event('audit "x"')])""", (level,))
    conn.execute("INSERT INTO wide (id, c1, c55) VALUES (1, 1, 55)")
    conn.execute("UPDATE wide SET c55 = 56, c60 = 60")
    conn.execute("""SELECT pghistory.create_event('wide', 1, 'audit "x"')""")
    got = browse(conn, "'wide', '1'", "pgh_label, pgh_data, pgh_diff")
    assert [(label, len(data), data["c55"], diff) for label, data, diff in got] == [
        ("insert", 61, 55, None), ("it's 100%", 61, 56, {"c55": [55, 56], "c60": [None, 60]}), ('audit "x"', 61, 56, {})]
    assert value(conn, "SELECT pghistory.revert('wide_event', 1)") == 4
    assert rows(conn, "SELECT c1, c55, c60 FROM wide") == [(1, 55, None)]


def test_revert_a_table_of_only_its_key(conn, level):
    conn.execute("CREATE TABLE tags (name text PRIMARY KEY)")
    conn.execute("SELECT pghistory.track('tags', level => %s)", (level,))
    conn.execute("INSERT INTO tags VALUES ('a')")
    assert value(conn, "SELECT pghistory.revert('tags_event', 1)") is None
    conn.execute("DELETE FROM tags")
    assert value(conn, "SELECT pghistory.revert('tags_event', 2)") == 3
    assert browse(conn, "'tags', 'a'", "pgh_label, pgh_diff") == [("insert", None), ("delete", {}), ("insert", None)]


# -- filters --------------------------------------------------------------------------------------


@pytest.fixture
def history(conn: psycopg.Connection, orders: str) -> dict[str, Any]:
    """Two tables, three transactions: events 1-3 of orders and 4 of items in the first, ..."""
    conn.execute("CREATE TABLE items (sku text PRIMARY KEY, qty int)")
    conn.execute("SELECT pghistory.track('items')")
    with conn.transaction():
        first = value(conn, """SELECT pghistory.set_context('{"step": 1}')""")
        conn.execute("INSERT INTO orders VALUES (1, 'new', 10), (2, 'new', 20)")
        conn.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
        conn.execute("INSERT INTO items VALUES ('x', 1)")
    with conn.transaction():
        second = value(conn, """SELECT pghistory.set_context('{"step": 2}')""")
        conn.execute("UPDATE orders SET amount = 11 WHERE id = 1")
        conn.execute("UPDATE items SET qty = 2")
    conn.execute("DELETE FROM orders WHERE id = 1")
    times = rows(conn, "SELECT DISTINCT pgh_created_at FROM orders_event ORDER BY 1")
    return {"contexts": (first, second), "times": [t[0] for t in times]}


def test_events_are_oldest_first_across_tables(conn, history):
    assert browse(conn, "", "pgh_model, pgh_id, pgh_label, pgh_obj_id") == [
        ("public.orders_event", 1, "insert", "1"),  # one sequence numbers both tables: as written
        ("public.orders_event", 2, "insert", "2"),
        ("public.orders_event", 3, "update", "1"),
        ("public.items_event", 4, "insert", "x"),
        ("public.orders_event", 5, "update", "1"),
        ("public.items_event", 6, "update", "x"),
        ("public.orders_event", 7, "delete", "1"),
    ]
    assert rows(conn, "SELECT pgh_model, pgh_id FROM pghistory.aggregate_events") == \
        browse(conn, "", "pgh_model, pgh_id")


def test_filters(conn, history):
    first, second = history["contexts"]
    t1, t2, t3 = history["times"]
    assert browse(conn, "'orders', '1'", "pgh_id") == [(1,), (3,), (5,), (7,)]
    assert browse(conn, "'orders', obj_id => '2'", "pgh_id") == [(2,)]
    assert browse(conn, "'orders', obj_id => '3'", "pgh_id") == []
    assert browse(conn, "'items', 'x'", "pgh_model, pgh_id") == [("public.items_event", 4), ("public.items_event", 6)]
    assert browse(conn, "since => %s", "pgh_model, pgh_id", t2) == [
        ("public.orders_event", 5), ("public.items_event", 6), ("public.orders_event", 7)]
    assert browse(conn, "until => %s", "pgh_model, pgh_id", t2) == [
        ("public.orders_event", 1), ("public.orders_event", 2), ("public.orders_event", 3), ("public.items_event", 4)]
    assert browse(conn, "'orders', since => %s, until => %s", "pgh_id", t2, t3) == [(5,)]
    assert browse(conn, "labels => '{update,delete}'", "pgh_model, pgh_id") == [
        ("public.orders_event", 3), ("public.orders_event", 5), ("public.items_event", 6), ("public.orders_event", 7)]
    assert browse(conn, "labels => '{}'") == []
    assert browse(conn, "context_id => %s", "pgh_model, pgh_id, pgh_context", second) == [
        ("public.orders_event", 5, {"step": 2}), ("public.items_event", 6, {"step": 2})]
    assert browse(conn, "'orders', '1', context_id => %s, labels => '{update}'", "pgh_id", first) == [(3,)]


def test_filtered_events_keep_the_diffs_of_the_whole_history(conn, history):
    t1, t2, t3 = history["times"]
    whole = {r[0]: r for r in browse(conn, "", "pgh_slug, pgh_diff")}
    assert whole["public.orders_event:5"] == ("public.orders_event:5", {"amount": [10, 11]})
    for args, params in [("'orders', '1', since => %s", (t2,)), ("'orders', since => %s", (t2,)),
                         ("'orders', labels => '{update}'", ()), ("'orders', '1', labels => '{update}'", ()),
                         ("context_id => %s", (history["contexts"][1],)), ("'orders', until => %s", (t3,))]:
        got = browse(conn, args, "pgh_slug, pgh_diff", *params)
        assert got and got == [whole[r[0]] for r in got], args


def test_an_objects_history_is_an_index_lookup(conn, history):
    conn.execute("INSERT INTO orders SELECT g, 'bulk', g FROM generate_series(100, 2100) AS g")
    conn.execute("UPDATE orders SET amount = amount + 1 WHERE id >= 100")
    conn.execute("ANALYZE orders_event")
    scans = "SELECT seq_scan, idx_scan FROM pg_stat_xact_user_tables WHERE relid = 'orders_event'::regclass"
    with conn.transaction():  # (the counts may include earlier transactions' not yet reported: compare)
        seq_before, idx_before = rows(conn, scans)[0]
        assert browse(conn, "'orders', '1500'", "pgh_label, pgh_diff") == [
            ("insert", None), ("update", {"amount": [1500, 1501]})]
        seq_after, idx_after = rows(conn, scans)[0]
    assert (seq_after - seq_before, idx_after - idx_before > 0) == (0, True)


def test_events_accepts_the_event_table_and_history_kept_after_untrack(conn, history):
    assert browse(conn, "'orders_event', '2'", "pgh_obj_model, pgh_id") == [("public.orders", 2)]
    conn.execute("SELECT pghistory.untrack('orders')")
    assert rows(conn, "SELECT DISTINCT pgh_model FROM pghistory.aggregate_events") == [("public.items_event",)]
    assert browse(conn, "'orders_event'", "pgh_obj_model, pgh_id, pgh_diff") == [
        ("public.orders", 1, None), ("public.orders", 2, None), ("public.orders", 3, {"status": ["new", "paid"]}),
        ("public.orders", 5, {"amount": [10, 11]}), ("public.orders", 7, {})]
    assert error(conn, "SELECT * FROM pghistory.events('orders')") == (
        "42704", "pghistory: public.orders is not tracked")
    conn.execute("SELECT pghistory.track('orders')")   # tracked again: the same history, continued
    assert value(conn, "SELECT count(*) FROM pghistory.aggregate_events WHERE pgh_obj_model = 'public.orders'") == 5


def test_history_of_a_dropped_table_stays_readable_through_its_event_table(conn, orders):
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10)")
    conn.execute("UPDATE orders SET status = 'paid'")
    conn.execute("DROP TABLE orders")
    assert rows(conn, "SELECT * FROM pghistory.aggregate_events") == []
    assert browse(conn, "'orders_event'", "pgh_model, pgh_obj_model, pgh_label, pgh_diff") == [
        ("public.orders_event", "public.orders", "insert", None),
        ("public.orders_event", "public.orders", "update", {"status": ["new", "paid"]})]
    assert error(conn, "SELECT pghistory.revert('orders_event', 1)") == (
        "42704", "pghistory: public.orders_event is not the event table of a tracked table")


def test_events_refuses_what_it_cannot_answer(conn, history):
    conn.execute("CREATE TABLE plain (id int)")
    assert error(conn, "SELECT * FROM pghistory.events(obj_id => '1')") == (
        "22023", "pghistory: obj_id needs tbl, the table the object belongs to")
    assert error(conn, "SELECT * FROM pghistory.events('plain')") == ("42704", "pghistory: public.plain is not tracked")
    assert error(conn, "SELECT * FROM pghistory.events('orders', 'one')") == (
        "22023", "pghistory: obj_id 'one' is not a valid key of public.orders (integer)")


# -- revert ---------------------------------------------------------------------------------------


def test_revert_an_update_is_itself_tracked_under_the_current_context(conn, orders):
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10)")
    conn.execute("UPDATE orders SET status = 'paid', amount = 12")
    with conn.transaction():
        ctx = value(conn, """SELECT pghistory.set_context('{"reason": "undo"}')""")
        assert value(conn, "SELECT pghistory.revert('orders_event', 1)") == 3
    assert rows(conn, "SELECT * FROM orders") == [(1, "new", 10)]
    assert browse(conn, "'orders'", "pgh_id, pgh_label, pgh_diff, pgh_context_id, pgh_context")[-1] == (
        3, "update", {"status": ["paid", "new"], "amount": [12, 10]}, ctx, {"reason": "undo"})
    # the row already is as event 1 recorded it: nothing is written
    assert value(conn, "SELECT pghistory.revert('orders_event', 1)") is None
    assert value(conn, "SELECT count(*) FROM orders_event") == 3


def test_revert_a_delete_inserts_the_row_again(conn, orders):
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10)")
    conn.execute("UPDATE orders SET status = 'paid'")
    conn.execute("DELETE FROM orders")
    assert value(conn, "SELECT pghistory.revert('orders_event', 3)") == 4
    assert rows(conn, "SELECT * FROM orders") == [(1, "paid", 10)]
    assert events(conn, "orders_event", "pgh_id, pgh_label, status") == [
        (1, "insert", "new"), (2, "update", "paid"), (3, "delete", "paid"), (4, "insert", "paid")]
    conn.execute("DELETE FROM orders")
    assert value(conn, "SELECT pghistory.revert('public.orders_event', 1)") == 6
    assert rows(conn, "SELECT * FROM orders") == [(1, "new", 10)]


def test_revert_an_old_snapshot_undoes_that_update(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("""SELECT pghistory.track('orders', level => %s, trackers => ARRAY[
        pghistory.insert_event(), pghistory.update_event(snapshot => 'old')])""", (level,))
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    conn.execute("UPDATE orders SET status = 'paid'")
    assert value(conn, "SELECT pghistory.revert('orders_event', 2)") == 3
    assert rows(conn, "SELECT * FROM orders") == [(1, "new")]
    assert events(conn, "orders_event", "pgh_label, status") == [("insert", "new"), ("update", "new"), ("update", "paid")]


def test_revert_handles_identity_and_generated_columns(conn, level):
    conn.execute("""CREATE TABLE lines (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, qty int,
                                       price int, total int GENERATED ALWAYS AS (qty * price) STORED)""")
    conn.execute("SELECT pghistory.track('lines', level => %s)", (level,))
    conn.execute("INSERT INTO lines (qty, price) VALUES (2, 5)")
    conn.execute("UPDATE lines SET qty = 3")
    assert value(conn, "SELECT pghistory.revert('lines_event', 1)") == 3
    assert rows(conn, "SELECT * FROM lines") == [(1, 2, 5, 10)]
    conn.execute("DELETE FROM lines")
    assert value(conn, "SELECT pghistory.revert('lines_event', 4)") == 5
    assert rows(conn, "SELECT * FROM lines") == [(1, 2, 5, 10)]


def test_revert_refusals(conn, orders):
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10), (2, 'new', 20)")
    assert error(conn, "SELECT pghistory.revert('orders', 1)") == (
        "42809", "pghistory: public.orders is a tracked table; revert() takes its event table, public.orders_event")
    assert error(conn, "SELECT pghistory.revert('orders_event', 99)") == (
        "P0002", "pghistory: public.orders_event has no event with pgh_id 99")

    conn.execute("CREATE TABLE log (line text)")
    conn.execute("SELECT pghistory.track('log')")
    conn.execute("INSERT INTO log VALUES ('a')")
    assert error(conn, "SELECT pghistory.revert('log_event', 1)") == (
        "0A000", "pghistory: public.log has no primary key, so revert() cannot tell which row an event is about")

    conn.execute("CREATE TABLE partial (id int PRIMARY KEY, a text, b text, c text)")
    conn.execute("SELECT pghistory.track('partial', exclude => '{b,c}')")
    conn.execute("INSERT INTO partial VALUES (1)")
    assert error(conn, "SELECT pghistory.revert('partial_event', 1)") == (
        "0A000", "pghistory: public.partial_event does not record every column of public.partial (not: b, c), "
                 "so its events cannot put a row back")

    conn.execute("SELECT pghistory.untrack('partial')")
    assert error(conn, "SELECT pghistory.revert('partial_event', 1)") == (
        "42704", "pghistory: public.partial_event is not the event table of a tracked table")


def test_revert_refuses_a_value_for_a_column_dropped_since(conn, orders):
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10)")
    conn.execute("UPDATE orders SET amount = NULL")
    conn.execute("ALTER TABLE orders DROP COLUMN amount")  # kept in the event table, with its history
    conn.execute("UPDATE orders SET status = 'paid'")
    assert error(conn, "SELECT pghistory.revert('orders_event', 1)") == (
        "55000", "pghistory: cannot revert public.orders to event 1 of public.orders_event: "
                 "it holds a value for column amount, which public.orders no longer has")
    # nothing of the dropped column is lost by going back to event 2 (amount was NULL)
    assert value(conn, "SELECT pghistory.revert('orders_event', 2)") == 4
    assert rows(conn, "SELECT * FROM orders") == [(1, "new")]


def test_revert_wraps_a_constraint_the_snapshot_now_violates(conn, orders):
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10)")
    conn.execute("UPDATE orders SET amount = 50")
    conn.execute("ALTER TABLE orders ADD CONSTRAINT big_orders CHECK (amount > 20) NOT VALID")
    with pytest.raises(psycopg.errors.CheckViolation) as info:
        conn.execute("SELECT pghistory.revert('orders_event', 1)")
    assert info.value.diag.message_primary == (
        "pghistory: cannot revert public.orders to event 1 of public.orders_event: "
        'new row for relation "orders" violates check constraint "big_orders"')
    assert info.value.diag.message_hint == (
        "The snapshot no longer fits the table as it is now; change the conflicting data first, "
        "or revert to another event.")
    conn.execute("DELETE FROM orders")
    conn.execute("CREATE TABLE statuses (name text PRIMARY KEY)")
    conn.execute("ALTER TABLE orders DROP CONSTRAINT big_orders")
    conn.execute("ALTER TABLE orders ADD CONSTRAINT known_status FOREIGN KEY (status) REFERENCES statuses NOT VALID")
    assert error(conn, "SELECT pghistory.revert('orders_event', 2)") == (
        "23503", "pghistory: cannot revert public.orders to event 2 of public.orders_event: "
                 'insert or update on table "orders" violates foreign key constraint "known_status"')
    assert rows(conn, "SELECT * FROM orders") == []
    assert value(conn, "SELECT count(*) FROM orders_event") == 3


# -- privileges -----------------------------------------------------------------------------------


@pytest.fixture
def reader(conn: psycopg.Connection, make_role, history: dict[str, Any]) -> str:
    """A role that may read the history of orders, and not that of items."""
    role = make_role("pgh_reader")
    conn.execute(f"GRANT SELECT ON orders_event TO {role}")
    return role


def test_readers_see_only_the_history_they_may_read(conn, connect, reader):
    c = connect(user=reader)
    assert rows(c, "SELECT pgh_model, pgh_id, pgh_context FROM pghistory.aggregate_events") == [
        ("public.orders_event", 1, None), ("public.orders_event", 2, None), ("public.orders_event", 3, None),
        ("public.orders_event", 5, None), ("public.orders_event", 7, None)]
    assert browse(c, "", "pgh_model, pgh_id") == browse(c, "'orders'", "pgh_model, pgh_id")
    assert error(c, "SELECT * FROM pghistory.events('items')") == (
        "42501", "pghistory: permission denied for the history in public.items_event")
    assert error(c, "SELECT * FROM items_event") == ("42501", "permission denied for table items_event")
    # fk-mode metadata lives in pghistory.context: shown to those who may read it
    conn.execute(f"GRANT SELECT ON pghistory.context TO {reader}")
    assert browse(c, "'orders', '1'", "pgh_id, pgh_context") == [
        (1, {"step": 1}), (3, {"step": 1}), (5, {"step": 2}), (7, None)]


def test_a_role_without_any_grant_reads_no_history(conn, connect, make_role, history):
    c = connect(user=make_role("pgh_nobody"))
    assert rows(c, "SELECT * FROM pghistory.aggregate_events") == []
    assert error(c, "SELECT * FROM pghistory.events('orders', '1')") == (
        "42501", "pghistory: permission denied for the history in public.orders_event")


def test_row_security_of_an_event_table_applies(conn, connect, reader):
    conn.execute("ALTER TABLE orders_event ENABLE ROW LEVEL SECURITY")
    conn.execute(f"CREATE POLICY only_two ON orders_event FOR SELECT TO {reader} USING (pgh_obj_id = 2)")
    c = connect(user=reader)
    assert rows(c, "SELECT pgh_model, pgh_id FROM pghistory.aggregate_events") == [("public.orders_event", 2)]
    assert browse(c, "'orders', '1'") == []


def test_a_schema_the_reader_cannot_use_hides_its_history(conn, connect, make_role):
    conn.execute("CREATE SCHEMA audit")
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    conn.execute("SELECT pghistory.track('orders', event_table => 'audit.orders_event')")
    conn.execute("INSERT INTO orders VALUES (1)")
    role = make_role("pgh_reader")
    conn.execute(f"GRANT SELECT ON audit.orders_event TO {role}")
    c = connect(user=role)
    assert rows(c, "SELECT * FROM pghistory.aggregate_events") == []
    conn.execute(f"GRANT USAGE ON SCHEMA audit TO {role}")
    assert rows(c, "SELECT pgh_model, pgh_obj_model FROM pghistory.aggregate_events") == [
        ("audit.orders_event", "public.orders")]


def test_revert_runs_with_the_callers_rights(conn, connect, reader):
    c = connect(user=reader)
    assert error(c, "SELECT pghistory.revert('orders_event', 1)")[0] == "42501"
    conn.execute(f"GRANT SELECT, INSERT, UPDATE ON orders TO {reader}")
    assert value(c, "SELECT pghistory.revert('orders_event', 1)") == 8
    assert rows(conn, "SELECT * FROM orders ORDER BY id") == [(1, "new", 10), (2, "new", 20)]


def test_browsing_functions_run_as_the_caller(conn):
    # events() has an overload taking obj_id in the key's own type
    assert rows(conn, """
        SELECT p.proname::text, p.prosecdef FROM pg_proc AS p
         WHERE p.pronamespace = 'pghistory'::regnamespace AND p.proname IN ('events', 'revert')
         ORDER BY 1""") == [("events", False), ("events", False), ("revert", False)]
