"""track(): which writes become events, and what the events hold."""

from __future__ import annotations

import psycopg
import pytest

from sqlhelpers import events, rows, value


@pytest.fixture(params=["statement", "row"])
def level(request: pytest.FixtureRequest) -> str:
    """Every behaviour here holds at both trigger levels."""
    return str(request.param)


@pytest.fixture
def orders(conn: psycopg.Connection, level: str) -> str:
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, amount numeric)")
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    return "orders"


def test_event_table_has_typed_columns_and_pgh_columns(conn, orders):
    assert rows(conn, """
        SELECT attname, format_type(atttypid, atttypmod), attnotnull
          FROM pg_attribute WHERE attrelid = 'orders_event'::regclass AND attnum > 0 ORDER BY attnum""") == [
        ("pgh_id", "bigint", True),
        ("pgh_created_at", "timestamp with time zone", True),
        ("pgh_xact", "xid8", False),
        ("pgh_label", "text", True),
        ("pgh_obj_id", "integer", False),
        ("pgh_context_id", "uuid", False),
        ("id", "integer", False),
        ("status", "text", False),
        ("amount", "numeric", False),
    ]
    assert rows(conn, """
        SELECT pg_get_indexdef(indexrelid) FROM pg_index
         WHERE indrelid = 'orders_event'::regclass ORDER BY indexrelid""") == [
        ("CREATE UNIQUE INDEX orders_event_pkey ON public.orders_event USING btree (pgh_id) WITH (fillfactor='100')",),
        ("CREATE INDEX orders_event_pgh_obj_id_pgh_id_idx ON public.orders_event USING btree (pgh_obj_id, pgh_id)",),
        ("CREATE INDEX orders_event_pgh_context_id_idx ON public.orders_event USING btree (pgh_context_id)",),
    ]


def test_insert_update_delete_are_recorded(conn, orders):
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10), (2, 'new', 20)")
    conn.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
    conn.execute("DELETE FROM orders WHERE id = 2")
    assert events(conn, "orders_event", "pgh_label, pgh_obj_id, id, status, amount") == [
        ("insert", 1, 1, "new", 10),
        ("insert", 2, 2, "new", 20),
        ("update", 1, 1, "paid", 10),
        ("delete", 2, 2, "new", 20),
    ]


def test_update_that_changes_nothing_tracked_records_nothing(conn, orders):
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10), (2, 'new', 20)")
    conn.execute("UPDATE orders SET status = status, amount = amount")
    conn.execute("UPDATE orders SET amount = 10.0 WHERE id = 1")  # equal value, other text
    assert events(conn, "orders_event") == [("insert", 1), ("insert", 2)]


def test_update_of_some_rows_records_only_those(conn, orders):
    conn.execute("INSERT INTO orders SELECT g, 'new', g FROM generate_series(1, 5) AS g")
    conn.execute("UPDATE orders SET status = CASE WHEN id % 2 = 0 THEN 'paid' ELSE status END")
    assert events(conn, "orders_event", "pgh_label, id, status")[5:] == [
        ("update", 2, "paid"), ("update", 4, "paid"),
    ]


def test_primary_key_update_is_recorded(conn, orders):
    conn.execute("INSERT INTO orders SELECT g, 'new', g FROM generate_series(1, 3) AS g")
    conn.execute("UPDATE orders SET id = id + 10")
    conn.execute("UPDATE orders SET id = 1 WHERE id = 11")
    assert sorted(events(conn, "orders_event", "pgh_label, pgh_obj_id, id, amount")[3:]) == [
        ("update", 1, 1, 1), ("update", 11, 11, 1), ("update", 12, 12, 2), ("update", 13, 13, 3),
    ]


def test_primary_key_swap_pairs_each_old_row_with_its_new_row(conn, orders):
    conn.execute("INSERT INTO orders VALUES (1, 'a', 1), (2, 'b', 2)")
    conn.execute("ALTER TABLE orders DROP CONSTRAINT orders_pkey, ADD PRIMARY KEY (id) DEFERRABLE INITIALLY DEFERRED")
    conn.execute("UPDATE orders SET id = 3 - id")
    assert sorted(events(conn, "orders_event", "pgh_label, id, status, amount")[2:]) == [
        ("update", 1, "b", 2), ("update", 2, "a", 1),
    ]


def test_statement_level_pairs_rows_by_key_and_a_moved_row_has_no_old_row(conn):
    """At statement level OLD is the row that had the same key before the statement; a row under a
    key the statement gave it has no OLD (NULLs), for the snapshot and for conditions alike."""
    conn.execute("CREATE TABLE t (id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED, status text)")
    conn.execute("""SELECT pghistory.track('t', trackers => ARRAY[
        pghistory.update_event('update'),
        pghistory.update_event('before', snapshot => 'old'),
        pghistory.update_event('moved_in', condition => 'OLD.id IS NULL')])""")
    conn.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    conn.execute("UPDATE t SET id = id + 1")  # 1 -> 2, 2 -> 3, 3 -> 4
    assert sorted(events(conn, "t_event", "pgh_label, pgh_obj_id, id, status")) == [
        ("before", 1, 1, "a"), ("before", 2, 2, "b"), ("before", 3, 3, "c"),  # key 1 left, keys 2 and 3 changed
        ("moved_in", 4, 4, "c"),
        ("update", 2, 2, "a"), ("update", 3, 3, "b"), ("update", 4, 4, "c"),
    ]


def test_tables_without_a_key_pair_old_and_new_rows_by_position(conn):
    conn.execute("CREATE TABLE t (code text, status text)")
    conn.execute("""SELECT pghistory.track('t', trackers => ARRAY[
        pghistory.update_event('update', condition => 'OLD.status <> NEW.status')])""")
    conn.execute("INSERT INTO t SELECT 'c' || g, 'new' FROM generate_series(1, 50) AS g")
    conn.execute("UPDATE t SET code = code || '!', status = CASE WHEN code IN ('c7', 'c42') THEN 'paid' ELSE status END")
    assert sorted(events(conn, "t_event", "pgh_label, code, status")) == [
        ("update", "c42!", "paid"), ("update", "c7!", "paid")]


@pytest.mark.parametrize("columns, trackers", [
    ("id int PRIMARY KEY, v int", "NULL"),
    ("id int, v int", "NULL"),  # paired by position
    ("id int, part int, v int, PRIMARY KEY (id, part)", "NULL"),
    # a condition strict on both sides must not turn the pairing into an inner join
    ("id int PRIMARY KEY, v int", "ARRAY[pghistory.update_event('update', condition => 'OLD.v < NEW.v')]"),
    ("id int PRIMARY KEY, v int", "ARRAY[pghistory.update_event('update', snapshot => 'old')]"),
])
def test_update_pairing_plan_made_for_one_row_is_never_a_nested_loop(conn, columns, trackers):
    """PL/pgSQL keeps a trigger's plan for the connection's life: the plan first made for one-row
    UPDATEs must not pair old and new rows with a nested loop, quadratic on the next big UPDATE."""
    conn.execute(f"CREATE TABLE t ({columns})")
    conn.execute(f"SELECT pghistory.track('t', trackers => {trackers})")
    conn.execute(f"INSERT INTO t SELECT g, {'g, ' if 'part' in columns else ''}0 FROM generate_series(1, 1000) AS g")
    for i in range(1, 11):  # past the plan cache's five custom plans
        conn.execute("UPDATE t SET v = v + 1 WHERE id = %s", (i,))
    conn.execute("LOAD 'auto_explain'")
    for setting in ("log_min_duration = 0", "log_nested_statements = on", "log_level = notice"):
        conn.execute(f"SET auto_explain.{setting}")
    plans: list[str] = []
    conn.add_notice_handler(lambda diag: plans.append(diag.message_primary or ""))
    conn.execute("UPDATE t SET v = v + 1")
    pairing = [p for p in plans if "INSERT INTO public.t_event" in p]
    assert len(pairing) == 1 and "Nested Loop" not in pairing[0], plans
    assert "Hash Full Join" in pairing[0] or "Merge Full Join" in pairing[0], pairing[0]
    assert value(conn, "SELECT count(*) FROM t_event WHERE pgh_label = 'update'") == 10 + 1000


def test_truncate_records_every_removed_row(conn, orders):
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10), (2, 'paid', 20)")
    conn.execute("TRUNCATE orders")
    assert sorted(events(conn, "orders_event", "pgh_label, id, status")[2:]) == [
        ("truncate", 1, "new"), ("truncate", 2, "paid"),
    ]


def test_truncate_is_not_recorded_without_its_tracker(conn, level):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY)")
    conn.execute("""SELECT pghistory.track('t', level => %s,
        trackers => ARRAY[pghistory.insert_event(), pghistory.delete_event()])""", (level,))
    conn.execute("INSERT INTO t VALUES (1)")
    conn.execute("TRUNCATE t")
    assert events(conn, "t_event") == [("insert", 1)]


def test_rolled_back_statements_and_savepoints_leave_no_events(conn, orders):
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("INSERT INTO orders VALUES (1, 'a', 1), (1, 'b', 2)")
    with conn.transaction():
        conn.execute("INSERT INTO orders VALUES (2, 'kept', 2)")
        with pytest.raises(psycopg.errors.DivisionByZero):
            with conn.transaction():
                conn.execute("UPDATE orders SET amount = 1 / 0 + amount")
        try:
            with conn.transaction():
                conn.execute("UPDATE orders SET status = 'undone'")
                raise RuntimeError("roll back the savepoint")
        except RuntimeError:
            pass
    try:
        with conn.transaction():
            conn.execute("DELETE FROM orders")
            raise RuntimeError("roll back the transaction")
    except RuntimeError:
        pass
    assert events(conn, "orders_event", "pgh_label, id, status") == [("insert", 2, "kept")]


def test_fields_tracks_only_those_columns(conn, level):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, a text, b text)")
    conn.execute("SELECT pghistory.track('t', fields => '{id,a}', level => %s)", (level,))
    conn.execute("INSERT INTO t VALUES (1, 'a', 'b')")
    conn.execute("UPDATE t SET b = 'changed'")  # b is not tracked: no event
    conn.execute("UPDATE t SET a = 'changed'")
    assert events(conn, "t_event", "*") and rows(conn, """
        SELECT attname FROM pg_attribute WHERE attrelid = 't_event'::regclass AND attnum > 0
           AND attname NOT LIKE 'pgh%' ORDER BY attnum""") == [("id",), ("a",)]
    assert events(conn, "t_event", "pgh_label, id, a") == [("insert", 1, "a"), ("update", 1, "changed")]


def test_exclude_leaves_columns_out(conn, level):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, a text, updated_at timestamptz)")
    conn.execute("SELECT pghistory.track('t', exclude => '{updated_at}', level => %s)", (level,))
    conn.execute("INSERT INTO t VALUES (1, 'a', now())")
    conn.execute("UPDATE t SET updated_at = now() + interval '1 day'")
    assert events(conn, "t_event", "pgh_label, id, a") == [("insert", 1, "a")]
    assert value(conn, "SELECT pghistory.tracking.fields FROM pghistory.tracking") == ["id", "a"]


def test_changed_fires_only_when_those_columns_change(conn, level):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, status text, note text)")
    conn.execute("""SELECT pghistory.track('t', level => %s, trackers => ARRAY[
        pghistory.update_event('status_changed', changed => '{status}')])""", (level,))
    conn.execute("INSERT INTO t VALUES (1, 'new', 'x')")
    conn.execute("UPDATE t SET note = 'y'")
    conn.execute("UPDATE t SET status = 'paid'")
    assert events(conn, "t_event", "pgh_label, status, note") == [("status_changed", "paid", "y")]


def test_condition_over_old_and_new(conn, level):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, amount int)")
    conn.execute("""SELECT pghistory.track('t', level => %s, trackers => ARRAY[
        pghistory.insert_event('big_insert', condition => 'NEW.amount >= 100'),
        pghistory.update_event('raised', condition => 'new.amount > old.amount'),
        pghistory.delete_event('big_delete', condition => 'OLD.amount >= 100')])""", (level,))
    conn.execute("INSERT INTO t VALUES (1, 5), (2, 500)")
    conn.execute("UPDATE t SET amount = amount - 1 WHERE id = 1")
    conn.execute("UPDATE t SET amount = amount + 1")
    conn.execute("DELETE FROM t")
    got = events(conn, "t_event", "pgh_label, id, amount")
    assert got[0] == ("big_insert", 2, 500)
    assert sorted(got[1:3]) == [("raised", 1, 5), ("raised", 2, 501)]  # one statement: any order
    assert got[3:] == [("big_delete", 2, 501)]


def test_snapshot_old_stores_the_row_before_the_update(conn, level):
    conn.execute("CREATE TABLE t (id int PRIMARY KEY, status text)")
    conn.execute("""SELECT pghistory.track('t', level => %s, trackers => ARRAY[
        pghistory.update_event('before_update', snapshot => 'old')])""", (level,))
    conn.execute("INSERT INTO t VALUES (1, 'new')")
    conn.execute("UPDATE t SET status = 'paid'")
    assert events(conn, "t_event", "pgh_label, id, status") == [("before_update", 1, "new")]


def test_pghistory_enabled_off_records_nothing_for_that_session_only(conn, connect, orders):
    other = connect()
    conn.execute("SET pghistory.enabled = off")
    conn.execute("INSERT INTO orders VALUES (1, 'ignored', 1)")
    other.execute("INSERT INTO orders VALUES (2, 'recorded', 2)")
    with conn.transaction():
        conn.execute("SET LOCAL pghistory.enabled = on")
        conn.execute("INSERT INTO orders VALUES (3, 'recorded', 3)")
    conn.execute("INSERT INTO orders VALUES (4, 'ignored', 4)")
    conn.execute("RESET pghistory.enabled")
    conn.execute("INSERT INTO orders VALUES (5, 'recorded', 5)")
    assert events(conn, "orders_event", "id") == [(2,), (3,), (5,)]


def test_enabled_with_a_typo_is_an_error_not_silence(conn, orders):
    conn.execute("SET pghistory.enabled = 'of'")
    with pytest.raises(psycopg.errors.InvalidParameterValue, match='pghistory.enabled is "of", which is neither on nor off'):
        conn.execute("INSERT INTO orders VALUES (1, 'x', 1)")
    assert value(conn, "SELECT count(*) FROM orders") == 0


def test_create_event_snapshots_the_row_under_a_manual_label(conn, level):
    conn.execute("CREATE TABLE t (id bigint PRIMARY KEY, status text)")
    conn.execute("""SELECT pghistory.track('t', level => %s,
        trackers => ARRAY[pghistory.insert_event(), pghistory.manual_event('checkout')])""", (level,))
    conn.execute("INSERT INTO t VALUES (1, 'cart')")
    ids = [value(conn, f"SELECT pghistory.create_event('t', {arg}, 'checkout')")
           for arg in ("1", "'1'", "1::bigint", "'1'::text")]
    assert ids == [2, 3, 4, 5]
    assert events(conn, "t_event", "pgh_id, pgh_label, pgh_obj_id, status") == [
        (1, "insert", 1, "cart"), (2, "checkout", 1, "cart"), (3, "checkout", 1, "cart"),
        (4, "checkout", 1, "cart"), (5, "checkout", 1, "cart"),
    ]


def test_create_event_with_a_uuid_key(conn):
    conn.execute("CREATE TABLE t (id uuid PRIMARY KEY, v text)")
    conn.execute("SELECT pghistory.track('t', trackers => ARRAY[pghistory.manual_event('seen')])")
    conn.execute("INSERT INTO t VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'x')")
    conn.execute("SELECT pghistory.create_event('t', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'seen')")
    assert events(conn, "t_event", "pgh_label, pgh_obj_id::text, v") == [
        ("seen", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "x")]


def test_create_event_refuses_an_unknown_label_naming_the_known_ones(conn, orders):
    conn.execute("INSERT INTO orders VALUES (1, 'new', 1)")
    with pytest.raises(psycopg.errors.UndefinedObject) as info:
        conn.execute("SELECT pghistory.create_event('orders', 1, 'checkout')")
    assert info.value.diag.message_primary == "pghistory: public.orders has no tracker labelled 'checkout'"
    assert info.value.diag.message_detail == "Its labels are: insert, update, delete, truncate."


def test_create_event_refuses_a_missing_row_and_an_untracked_table(conn, orders):
    with pytest.raises(psycopg.errors.NoDataFound, match=r"public.orders has no row with id = '7'"):
        conn.execute("SELECT pghistory.create_event('orders', 7, 'insert')")
    conn.execute("CREATE TABLE other (id int PRIMARY KEY)")
    with pytest.raises(psycopg.errors.UndefinedObject, match="pghistory: public.other is not tracked"):
        conn.execute("SELECT pghistory.create_event('other', 1, 'insert')")
    assert value(conn, "SELECT count(*) FROM orders_event") == 0
