"""Schema changes: ALTER TABLE, partitions and DROP of tracked tables keep tracking correct.

The event triggers of event_triggers.sql follow each change; what cannot be followed is
refused, and the user's statement rolls back with it.
"""

from __future__ import annotations

import re
import threading
import time

import psycopg
import pytest
from psycopg import sql

from sqlhelpers import events, rows, value


@pytest.fixture(params=["statement", "row"])
def level(request: pytest.FixtureRequest) -> str:
    """Every behaviour here holds at both trigger levels."""
    return str(request.param)


@pytest.fixture
def orders(conn: psycopg.Connection, level: str) -> str:
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, amount numeric)")
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10)")
    return "orders"


def columns(conn: psycopg.Connection, table: str) -> list[tuple[str, str]]:
    """A table's columns and their types, in order."""
    return rows(conn, """
        SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
         WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum""", table)


def config(conn: psycopg.Connection, table: str = "orders") -> tuple:
    return rows(conn, """
        SELECT fields, exclude, ARRAY(SELECT (t.label, t.changed, t.condition)::text FROM unnest(trackers) AS t)
          FROM pghistory.tracked WHERE tracked_table = %s::regclass""", table)[0]


def trigger_functions(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """(table, function) of every trigger pghistory made, and every generated function."""
    return rows(conn, """
        SELECT coalesce(g.tgrelid::regclass::text, '-'), p.proname::text
          FROM pg_proc AS p LEFT JOIN pg_trigger AS g ON g.tgfoid = p.oid
         WHERE p.pronamespace = 'pghistory'::regnamespace AND p.proname LIKE '%/%'
         ORDER BY 1, 2""")


EVENT_COLUMNS = [("pgh_id", "bigint"), ("pgh_created_at", "timestamp with time zone"), ("pgh_xact", "xid8"),
                 ("pgh_label", "text"),
                 ("pgh_obj_id", "integer"), ("pgh_context_id", "uuid")]


def test_extension_installs_three_event_triggers(conn):
    assert rows(conn, """
        SELECT e.evtname::text, e.evtevent::text, e.evttags, e.evtfoid::regproc::text, d.deptype::text
          FROM pg_event_trigger AS e
          JOIN pg_depend AS d ON d.classid = 'pg_event_trigger'::regclass AND d.objid = e.oid
                             AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pghistory')
         ORDER BY 1""") == [
        ("pghistory_after_ddl", "ddl_command_end", ["ALTER TABLE", "CREATE TABLE", "ALTER SCHEMA"],
         "pghistory._after_ddl", "e"),
        ("pghistory_before_ddl", "ddl_command_start", ["ALTER TABLE", "ALTER SCHEMA"], "pghistory._before_ddl", "e"),
        ("pghistory_on_drop", "sql_drop", None, "pghistory._on_drop", "e"),
    ]


# -- added columns -------------------------------------------------------------


def test_added_column_is_added_to_the_event_table_and_recorded(conn, orders):
    conn.execute("ALTER TABLE orders ADD COLUMN note varchar(20)")
    assert columns(conn, "orders_event") == EVENT_COLUMNS + [
        ("id", "integer"), ("status", "text"), ("amount", "numeric"), ("note", "character varying(20)")]
    conn.execute("UPDATE orders SET note = 'gift'")
    conn.execute("UPDATE orders SET status = 'paid'")  # every column is compared, the new one too
    conn.execute("INSERT INTO orders VALUES (2, 'new', 20, 'rush')")
    conn.execute("DELETE FROM orders WHERE id = 2")
    assert events(conn, "orders_event", "pgh_label, id, status, amount, note") == [
        ("insert", 1, "new", 10, None),
        ("update", 1, "new", 10, "gift"),
        ("update", 1, "paid", 10, "gift"),
        ("insert", 2, "new", 20, "rush"),
        ("delete", 2, "new", 20, "rush"),
    ]
    assert rows(conn, "SELECT fields FROM pghistory.tracking") == [(["id", "status", "amount", "note"],)]


def test_added_column_is_not_tracked_when_fields_are_listed(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders', fields => '{id,status}', level => %s)", (level,))
    conn.execute("ALTER TABLE orders ADD COLUMN note text")
    conn.execute("INSERT INTO orders VALUES (1, 'new', 'x')")
    conn.execute("UPDATE orders SET note = 'y'")  # not tracked: records nothing
    assert columns(conn, "orders_event") == EVENT_COLUMNS + [("id", "integer"), ("status", "text")]
    assert events(conn, "orders_event", "pgh_label, id, status") == [("insert", 1, "new")]


def test_added_column_is_tracked_when_others_are_excluded(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text, updated_at timestamptz)")
    conn.execute("SELECT pghistory.track('orders', exclude => '{updated_at}', level => %s)", (level,))
    conn.execute("ALTER TABLE orders ADD COLUMN note text")
    conn.execute("INSERT INTO orders VALUES (1, 'new', now(), 'x')")
    conn.execute("UPDATE orders SET updated_at = now()")  # excluded: records nothing
    conn.execute("UPDATE orders SET note = 'y'")
    assert events(conn, "orders_event", "pgh_label, id, status, note") == [
        ("insert", 1, "new", "x"), ("update", 1, "new", "y")]


def test_added_pgh_column_is_refused_and_rolled_back(conn, orders):
    with pytest.raises(psycopg.errors.DuplicateColumn,
                       match=re.escape("pghistory: column pgh_note of public.orders clashes with the event "
                                       "table's own pgh_* columns")):
        conn.execute("ALTER TABLE orders ADD COLUMN pgh_note text")
    assert [c for c, _ in columns(conn, "orders")] == ["id", "status", "amount"]


# -- renamed columns ----------------------------------------------------------


def test_renamed_column_is_renamed_in_the_event_table(conn, orders):
    conn.execute("UPDATE orders SET status = 'paid'")
    conn.execute("ALTER TABLE orders RENAME COLUMN status TO state")
    assert [c for c, _ in columns(conn, "orders_event")][len(EVENT_COLUMNS):] == ["id", "state", "amount"]
    conn.execute("UPDATE orders SET state = 'shipped'")
    assert events(conn, "orders_event", "pgh_label, id, state, amount") == [
        ("insert", 1, "new", 10), ("update", 1, "paid", 10), ("update", 1, "shipped", 10)]


def test_rename_follows_fields_exclude_changed_and_conditions(conn, level):
    conn.execute('CREATE TABLE orders (id int PRIMARY KEY, status text, "Amount" numeric, note text)')
    conn.execute("""SELECT pghistory.track('orders', level => %s, fields => '{id,status,Amount}',
        trackers => ARRAY[pghistory.insert_event(),
                          pghistory.update_event('status_changed', changed => '{status}',
                                                 condition => 'NEW.status <> ''x'' AND OLD."Amount" = NEW."Amount"'),
                          pghistory.update_event('amount_changed', changed => '{Amount}')])""", (level,))
    conn.execute("ALTER TABLE orders RENAME COLUMN status TO state")
    conn.execute('ALTER TABLE orders RENAME COLUMN "Amount" TO "Total Amount"')
    assert config(conn) == (
        ["id", "state", "Total Amount"], None,
        ["(insert,,)", '(status_changed,{state},"NEW.state <> \'x\' AND OLD.""Total Amount"" = NEW.""Total Amount""")',
         '(amount_changed,"{""Total Amount""}",)'])
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10, 'a')")
    conn.execute("UPDATE orders SET state = 'paid'")
    conn.execute("UPDATE orders SET state = 'x'")            # the condition holds it back
    conn.execute('UPDATE orders SET "Total Amount" = 12')
    conn.execute("UPDATE orders SET note = 'b'")               # not tracked
    assert events(conn, "orders_event", 'pgh_label, id, state, "Total Amount"') == [
        ("insert", 1, "new", 10), ("status_changed", 1, "paid", 10), ("amount_changed", 1, "x", 12)]


def test_rename_of_an_excluded_column_renames_it_in_exclude(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text, updated_at timestamptz)")
    conn.execute("SELECT pghistory.track('orders', exclude => '{updated_at}', level => %s)", (level,))
    conn.execute("ALTER TABLE orders RENAME COLUMN updated_at TO changed_at")
    assert config(conn)[:2] == (None, ["changed_at"])
    assert [c for c, _ in columns(conn, "orders_event")][len(EVENT_COLUMNS):] == ["id", "status"]


def test_rename_onto_a_history_column_is_refused(conn, orders):
    conn.execute("ALTER TABLE orders DROP COLUMN amount")  # amount stays in the event table, as history
    with pytest.raises(psycopg.errors.DuplicateColumn) as error:
        conn.execute("ALTER TABLE orders RENAME COLUMN status TO amount")
    assert error.value.diag.message_primary == (
        "pghistory: cannot rename column status of public.orders to amount: "
        "its event table public.orders_event already has a column amount")
    assert error.value.diag.message_hint == (
        "Rename the old history first: ALTER TABLE public.orders_event RENAME COLUMN amount TO <another name>.")
    assert [c for c, _ in columns(conn, "orders")] == ["id", "status"]
    conn.execute("ALTER TABLE orders_event RENAME COLUMN amount TO old_amount")
    conn.execute("ALTER TABLE orders RENAME COLUMN status TO amount")
    conn.execute("UPDATE orders SET amount = 'paid'")
    assert events(conn, "orders_event", "pgh_label, amount, old_amount") == [
        ("insert", "new", 10), ("update", "paid", None)]


# -- dropped columns ----------------------------------------------------------


def test_dropped_column_keeps_its_history_and_new_events_leave_it_null(conn, orders):
    conn.execute("UPDATE orders SET amount = 11")
    conn.execute("ALTER TABLE orders DROP COLUMN amount")
    conn.execute("UPDATE orders SET status = 'paid'")
    conn.execute("INSERT INTO orders VALUES (2, 'new')")
    conn.execute("DELETE FROM orders WHERE id = 2")
    assert events(conn, "orders_event", "pgh_label, id, status, amount") == [
        ("insert", 1, "new", 10), ("update", 1, "new", 11), ("update", 1, "paid", None),
        ("insert", 2, "new", None), ("delete", 2, "new", None)]
    assert rows(conn, "SELECT fields FROM pghistory.tracking") == [(["id", "status"],)]


def test_dropped_column_leaves_fields_exclude_and_changed(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric, note text)")
    conn.execute("""SELECT pghistory.track('orders', level => %s, fields => '{id,status,amount}',
        trackers => ARRAY[pghistory.update_event(changed => '{status,amount}')])""", (level,))
    conn.execute("ALTER TABLE orders DROP COLUMN amount")
    assert config(conn) == (["id", "status"], None, ["(update,{status},)"])
    conn.execute("SELECT pghistory.track('orders', level => %s, exclude => '{note}')", (level,))
    conn.execute("ALTER TABLE orders DROP COLUMN note")
    assert config(conn)[:2] == (None, None)


def test_dropped_column_can_come_back_into_its_history(conn, orders):
    conn.execute("ALTER TABLE orders DROP COLUMN amount")
    conn.execute("ALTER TABLE orders ADD COLUMN amount numeric")
    conn.execute("UPDATE orders SET amount = 5")
    assert events(conn, "orders_event", "pgh_label, id, amount") == [("insert", 1, 10), ("update", 1, 5)]


def test_dropping_the_last_tracked_field_is_refused(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders', fields => '{status}', level => %s)", (level,))
    with pytest.raises(psycopg.errors.DependentObjectsStillExist) as error:
        conn.execute("ALTER TABLE orders DROP COLUMN status")
    assert error.value.diag.message_primary == (
        "pghistory: this change leaves no column to track in public.orders (fields => '{status}')")
    assert error.value.diag.message_hint == (
        "Untrack the table first (SELECT pghistory.untrack('public.orders')), or track() it with other fields.")
    assert [c for c, _ in columns(conn, "orders")] == ["id", "status"]


def test_dropping_what_a_tracker_watches_is_refused(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric)")
    conn.execute("""SELECT pghistory.track('orders', level => %s,
        trackers => ARRAY[pghistory.update_event('status_changed', changed => '{status}')])""", (level,))
    with pytest.raises(psycopg.errors.DependentObjectsStillExist) as error:
        conn.execute("ALTER TABLE orders DROP COLUMN status")
    assert error.value.diag.message_primary == (
        'pghistory: tracker "status_changed" of public.orders fires when status changes, and this change drops it')
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    conn.execute("ALTER TABLE orders DROP COLUMN status")  # fine once nothing watches it


def test_dropping_a_column_a_condition_uses_is_refused(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric)")
    conn.execute("""SELECT pghistory.track('orders', level => %s,
        trackers => ARRAY[pghistory.insert_event(condition => 'NEW.amount > 0')])""", (level,))
    with pytest.raises(psycopg.errors.DependentObjectsStillExist) as error:
        conn.execute("ALTER TABLE orders DROP COLUMN amount")
    assert error.value.diag.message_primary.startswith('pghistory: the condition of tracker "insert" is not valid: ')
    assert error.value.diag.message_hint == (
        "Change the tracker first with pghistory.track(... trackers => ...), then alter the table.")
    conn.execute("INSERT INTO orders VALUES (1, 'new', 5)")
    assert events(conn, "orders_event", "pgh_label, id, amount") == [("insert", 1, 5)]


def test_dropping_the_primary_key_leaves_pgh_obj_id_null(conn, orders):
    conn.execute("ALTER TABLE orders DROP CONSTRAINT orders_pkey")
    conn.execute("UPDATE orders SET status = 'paid'")
    conn.execute("ALTER TABLE orders ADD PRIMARY KEY (id)")
    conn.execute("UPDATE orders SET status = 'shipped'")
    assert events(conn, "orders_event", "pgh_label, pgh_obj_id, status") == [
        ("insert", 1, "new"), ("update", None, "paid"), ("update", 1, "shipped")]


def test_column_dropped_by_drop_type_cascade_is_followed(conn, level):
    conn.execute("CREATE TYPE mood AS ENUM ('happy', 'sad')")
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text, mood mood)")
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    conn.execute("INSERT INTO orders VALUES (1, 'new', 'happy')")
    conn.execute("DROP TYPE mood CASCADE")  # drops the column in both tables
    conn.execute("UPDATE orders SET status = 'paid'")
    assert events(conn, "orders_event", "pgh_label, id, status") == [("insert", 1, "new"), ("update", 1, "paid")]
    assert rows(conn, "SELECT fields FROM pghistory.tracking") == [(["id", "status"],)]


# -- type changes ---------------------------------------------------------------


def test_type_change_is_applied_to_the_event_table(conn, orders):
    conn.execute("UPDATE orders SET amount = 10.6")
    conn.execute("ALTER TABLE orders ALTER COLUMN amount TYPE int")        # assignment cast: rounds, like the table
    conn.execute("ALTER TABLE orders ALTER COLUMN status TYPE varchar(10)")
    conn.execute("UPDATE orders SET amount = 12")
    assert columns(conn, "orders_event")[len(EVENT_COLUMNS):] == [("id", "integer"), ("status", "character varying(10)"),
                                                 ("amount", "integer")]
    assert events(conn, "orders_event", "pgh_label, amount") == [("insert", 10), ("update", 11), ("update", 12)]


def test_type_change_without_assignment_cast_is_cast(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, code text)")
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    conn.execute("INSERT INTO orders VALUES (1, '7')")
    conn.execute("ALTER TABLE orders ALTER COLUMN code TYPE int USING code::int")
    conn.execute("UPDATE orders SET code = 8")
    assert events(conn, "orders_event", "pgh_label, code") == [("insert", 7), ("update", 8)]
    assert columns(conn, "orders_event")[-1] == ("code", "integer")


def test_type_change_the_history_cannot_take_is_refused(conn, orders):
    conn.execute("UPDATE orders SET status = 'paid'")
    conn.execute("UPDATE orders SET status = '2'")
    with pytest.raises(psycopg.errors.DatatypeMismatch) as error:
        conn.execute("ALTER TABLE orders ALTER COLUMN status TYPE int USING status::int")
    assert error.value.diag.message_primary == (
        "pghistory: the history of public.orders.status cannot be converted from text to integer")
    assert error.value.diag.message_detail == (
        'Converting column status of the event table public.orders_event failed: '
        'invalid input syntax for type integer: "new"')
    assert error.value.diag.message_hint == (
        "Convert the history first, the way you want it converted: ALTER TABLE public.orders_event "
        "ALTER COLUMN status TYPE integer USING <expression>; then run this ALTER TABLE again.")
    assert columns(conn, "orders")[1] == ("status", "text")           # rolled back
    # doing what the hint says works
    conn.execute("""ALTER TABLE orders_event ALTER COLUMN status TYPE int
                    USING CASE WHEN status ~ '^[0-9]+$' THEN status::int END""")
    conn.execute("ALTER TABLE orders ALTER COLUMN status TYPE int USING status::int")
    conn.execute("UPDATE orders SET status = 3")
    assert events(conn, "orders_event", "pgh_label, status") == [
        ("insert", None), ("update", None), ("update", 2), ("update", 3)]


def test_shorter_type_never_truncates_history(conn, level):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, code varchar(10))")
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    conn.execute("INSERT INTO orders VALUES (1, 'abcdefgh')")
    conn.execute("UPDATE orders SET code = 'abc'")
    with pytest.raises(psycopg.errors.DatatypeMismatch, match="cannot be converted from character varying"):
        conn.execute("ALTER TABLE orders ALTER COLUMN code TYPE varchar(3)")
    assert events(conn, "orders_event", "code") == [("abcdefgh",), ("abc",)]


def test_primary_key_type_change_changes_pgh_obj_id(conn, orders):
    conn.execute("ALTER TABLE orders ALTER COLUMN id TYPE bigint")
    conn.execute("INSERT INTO orders VALUES (5000000000, 'big', 1)")
    assert columns(conn, "orders_event")[4] == ("pgh_obj_id", "bigint")
    assert events(conn, "orders_event", "pgh_label, pgh_obj_id, id") == [
        ("insert", 1, 1), ("insert", 5000000000, 5000000000)]


def test_collation_change_is_applied(conn, orders):
    conn.execute('ALTER TABLE orders ALTER COLUMN status TYPE text COLLATE "C"')
    assert value(conn, """SELECT collname FROM pg_attribute JOIN pg_collation c ON c.oid = attcollation
                           WHERE attrelid = 'orders_event'::regclass AND attname = 'status'""") == "C"


def test_several_changes_in_one_statement(conn, orders):
    conn.execute("ALTER TABLE orders ADD COLUMN note text, DROP COLUMN amount, ALTER COLUMN id TYPE bigint")
    conn.execute("UPDATE orders SET note = 'x'")
    assert columns(conn, "orders_event")[4:] == [
        ("pgh_obj_id", "bigint"), ("pgh_context_id", "uuid"), ("id", "bigint"), ("status", "text"),
        ("amount", "numeric"), ("note", "text")]
    assert events(conn, "orders_event", "pgh_label, id, status, amount, note") == [
        ("insert", 1, "new", 10, None), ("update", 1, "new", None, "x")]


def test_a_refused_change_rolls_back_with_the_transaction_intact(conn, orders):
    with pytest.raises(psycopg.errors.DatatypeMismatch):
        with conn.transaction():
            conn.execute("ALTER TABLE orders ADD COLUMN note text")
            conn.execute("UPDATE orders SET note = 'x'")
            conn.execute("ALTER TABLE orders ALTER COLUMN status TYPE int USING 0")
    assert [c for c, _ in columns(conn, "orders_event")][len(EVENT_COLUMNS):] == ["id", "status", "amount"]
    conn.execute("UPDATE orders SET status = 'paid'")
    assert events(conn, "orders_event", "pgh_label, status") == [("insert", "new"), ("update", "paid")]


def test_changes_inside_a_transaction_with_writes_between(conn, orders):
    with conn.transaction():
        conn.execute("ALTER TABLE orders ADD COLUMN note text")
        conn.execute("UPDATE orders SET note = 'x'")
        conn.execute("ALTER TABLE orders RENAME COLUMN note TO remark")
        conn.execute("UPDATE orders SET remark = 'y'")
        conn.execute("ALTER TABLE orders DROP COLUMN remark")
        conn.execute("UPDATE orders SET status = 'paid'")
    assert events(conn, "orders_event", "pgh_label, status, remark") == [
        ("insert", "new", None), ("update", "new", "x"), ("update", "new", "y"), ("update", "paid", None)]


# -- renamed tables and schemas ---------------------------------------------------


def test_renamed_table_and_schema_keep_tracking(conn, orders, level):
    conn.execute("ALTER TABLE orders RENAME TO purchases")
    conn.execute("UPDATE purchases SET status = 'paid'")
    conn.execute('CREATE SCHEMA "Sales"')
    conn.execute('ALTER TABLE purchases SET SCHEMA "Sales"')
    conn.execute('UPDATE "Sales".purchases SET status = \'shipped\'')
    conn.execute('ALTER SCHEMA "Sales" RENAME TO "Sales 2"')
    conn.execute('DELETE FROM "Sales 2".purchases')
    assert events(conn, "orders_event", "pgh_label, status") == [
        ("insert", "new"), ("update", "paid"), ("update", "shipped"), ("delete", "shipped")]
    assert rows(conn, "SELECT tracked_table::text, event_table::text FROM pghistory.tracking") == [
        ('"Sales 2".purchases', "orders_event")]
    assert trigger_functions(conn) == [
        ('"Sales 2".purchases', f"Sales 2.purchases/{label}") for label in ("delete", "insert", "truncate", "update")]
    source = value(conn, """SELECT prosrc FROM pg_proc WHERE proname = 'Sales 2.purchases/update'""")
    assert 'Generated by pghistory.track() for "Sales 2".purchases' in source


def test_renamed_event_table_keeps_tracking(conn, orders):
    conn.execute("CREATE SCHEMA audit")
    conn.execute("ALTER TABLE orders_event RENAME TO orders_history")
    conn.execute("ALTER TABLE orders_history SET SCHEMA audit")
    conn.execute("UPDATE orders SET status = 'paid'")
    assert events(conn, "audit.orders_history", "pgh_label, status") == [("insert", "new"), ("update", "paid")]
    assert value(conn, "SELECT event_table::text FROM pghistory.tracking") == "audit.orders_history"


@pytest.mark.parametrize("change", [
    "RENAME COLUMN status TO state", "DROP COLUMN status", "DROP COLUMN pgh_label",
    "RENAME COLUMN pgh_context_id TO context_id"])
def test_event_table_keeps_the_columns_its_events_need(conn, orders, change):
    with pytest.raises(psycopg.errors.DependentObjectsStillExist) as error:
        conn.execute(f"ALTER TABLE orders_event {change}")
    column = change.split()[2]
    assert error.value.diag.message_primary == (
        f"pghistory: public.orders_event is the event table of public.orders, whose events need its column {column}")
    conn.execute("SELECT pghistory.track('orders', exclude => '{status}')")
    if column == "status":  # a column no longer tracked is history only
        conn.execute(f"ALTER TABLE orders_event {change}")


# -- dropped tables -------------------------------------------------------------------


def test_dropped_table_keeps_its_history_and_leaves_the_registry(conn, orders):
    conn.execute("CREATE TABLE other (id int PRIMARY KEY)")
    conn.execute("SELECT pghistory.track('other')")
    conn.execute("DROP TABLE orders")
    assert events(conn, "orders_event", "pgh_label, id, status") == [("insert", 1, "new")]
    assert rows(conn, "SELECT tracked_table::text FROM pghistory.tracked") == [("other",)]
    assert [f for _, f in trigger_functions(conn)] == [
        "public.other/delete", "public.other/insert", "public.other/truncate", "public.other/update"]
    # a new table of the same name, tracked, goes on in the same history (as after untrack())
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders')")
    conn.execute("INSERT INTO orders VALUES (1, 'again')")
    assert events(conn, "orders_event", "pgh_label, id, status") == [("insert", 1, "new"), ("insert", 1, "again")]


def test_dropped_schema_takes_tracked_tables_out_of_the_registry(conn, level):
    conn.execute("CREATE SCHEMA shop")
    conn.execute("CREATE TABLE shop.orders (id int PRIMARY KEY)")
    conn.execute("SELECT pghistory.track('shop.orders', event_table => 'public.shop_orders_event', level => %s)",
                 (level,))
    conn.execute("INSERT INTO shop.orders VALUES (1)")
    conn.execute("DROP SCHEMA shop CASCADE")
    assert value(conn, "SELECT count(*) FROM pghistory.tracked") == 0
    assert events(conn, "shop_orders_event", "pgh_label, id") == [("insert", 1)]
    assert trigger_functions(conn) == []


def test_dropping_the_history_of_a_tracked_table_is_refused(conn, orders):
    with pytest.raises(psycopg.errors.DependentObjectsStillExist) as error:
        conn.execute("DROP TABLE orders_event")
    assert error.value.diag.message_primary == (
        "pghistory: public.orders_event holds the history of public.orders, which is still tracked")
    assert error.value.diag.message_hint == (
        "SELECT pghistory.untrack('public.orders', drop_events => true) drops both; "
        "untrack() alone stops tracking and keeps the history.")
    conn.execute("DROP TABLE orders, orders_event")  # both at once is what the user asked for
    assert value(conn, "SELECT count(*) FROM pghistory.tracked") == 0


def test_untrack_with_drop_events_still_works(conn, orders):
    conn.execute("SELECT pghistory.untrack('orders', drop_events => true)")
    assert value(conn, "SELECT to_regclass('orders_event')") is None


# -- partitions -----------------------------------------------------------------------


@pytest.fixture
def measurements(conn: psycopg.Connection, level: str) -> str:
    conn.execute("CREATE TABLE m (id int, at int, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)")
    conn.execute("CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (10)")
    conn.execute("SELECT pghistory.track('m', level => %s)", (level,))
    return "m"


def test_new_and_attached_partitions_are_tracked(conn, measurements):
    conn.execute("CREATE TABLE m2 PARTITION OF m FOR VALUES FROM (10) TO (20) PARTITION BY RANGE (at)")
    conn.execute("CREATE TABLE m2a PARTITION OF m2 FOR VALUES FROM (10) TO (15)")
    conn.execute("CREATE TABLE m3 (id int NOT NULL, at int NOT NULL, v text)")
    conn.execute("ALTER TABLE m ATTACH PARTITION m3 FOR VALUES FROM (20) TO (30)")
    conn.execute("INSERT INTO m VALUES (1, 1, 'a'), (2, 11, 'b'), (3, 21, 'c')")
    conn.execute("INSERT INTO m2a VALUES (4, 12, 'd')")  # a statement on a partition itself
    conn.execute("UPDATE m3 SET v = 'C'")
    conn.execute("DELETE FROM m2 WHERE id = 2")
    conn.execute("TRUNCATE m1")
    assert events(conn, "m_event", "pgh_label, id, at, v") == [
        ("insert", 1, 1, "a"), ("insert", 2, 11, "b"), ("insert", 3, 21, "c"), ("insert", 4, 12, "d"),
        ("update", 3, 21, "C"), ("delete", 2, 11, "b"), ("truncate", 1, 1, "a")]


def test_detached_partition_is_no_longer_tracked(conn, measurements):
    conn.execute("CREATE TABLE m2 PARTITION OF m FOR VALUES FROM (10) TO (20)")
    conn.execute("ALTER TABLE m DETACH PARTITION m2")
    assert value(conn, """SELECT count(*) FROM pg_trigger WHERE tgrelid = 'm2'::regclass""") == 0
    conn.execute("INSERT INTO m2 VALUES (1, 11, 'x')")
    conn.execute("INSERT INTO m VALUES (2, 1, 'y')")
    assert events(conn, "m_event", "pgh_label, id") == [("insert", 2)]


def test_a_command_follows_only_the_tables_it_changed(conn, connect, level):
    """Other sessions' changes that commit while a command runs are theirs to follow (a parallel
    pg_restore depends on it: its workers add primary keys while triggers are still missing)."""
    for table in ("x", "y"):
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v text)")
        conn.execute(f"SELECT pghistory.track('{table}', level => %s)", (level,))
    functions = """SELECT array_agg(oid ORDER BY oid) FROM pg_proc WHERE proname LIKE 'public.y/%'"""
    holder = connect(autocommit=False)
    holder.execute("LOCK TABLE x")  # the ALTER of x takes its snapshot, then waits here
    done = threading.Event()
    alter_x = threading.Thread(target=lambda: (connect().execute("ALTER TABLE x ADD COLUMN w int"), done.set()))
    alter_x.start()
    deadline = time.monotonic() + 60
    while value(conn, "SELECT count(*) FROM pg_stat_activity WHERE query = 'ALTER TABLE x ADD COLUMN w int' "
                      "AND wait_event_type = 'Lock'") == 0:
        assert time.monotonic() < deadline, "the ALTER of x never waited for its lock"
        time.sleep(0.01)
    conn.execute("ALTER TABLE y ADD COLUMN z int")  # followed by this session
    after_y = value(conn, functions)
    holder.rollback()
    alter_x.join(timeout=60)
    assert done.is_set()
    assert value(conn, functions) == after_y  # the ALTER of x left y alone
    conn.execute("UPDATE x SET w = 1")
    conn.execute("INSERT INTO y VALUES (1, 'a', 2)")
    assert events(conn, "y_event", "pgh_label, z") == [("insert", 2)]


def test_a_primary_key_added_while_triggers_are_restored_leaves_them_alone(conn, level):
    """pg_restore -j adds a table's primary key after restoring the registry, and may have
    restored some of its triggers already: they are left as they are, for it to finish."""
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    for trigger in ("pghistory_before_ddl", "pghistory_after_ddl"):  # what a restore starts from
        conn.execute(f"ALTER EVENT TRIGGER {trigger} DISABLE")
    definitions = dict(rows(conn, """SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger
                                      WHERE tgrelid = 'orders'::regclass AND tgname IN ('pgh_update', 'pgh_delete')"""))
    conn.execute("DROP TRIGGER pgh_update ON orders")
    conn.execute("DROP TRIGGER pgh_delete ON orders")
    conn.execute("ALTER TABLE orders DROP CONSTRAINT orders_pkey")
    for trigger in ("pghistory_before_ddl", "pghistory_after_ddl"):
        conn.execute(f"ALTER EVENT TRIGGER {trigger} ENABLE")
    functions = value(conn, "SELECT array_agg(oid ORDER BY oid) FROM pg_proc WHERE proname LIKE 'public.orders/%'")
    conn.execute("ALTER TABLE orders ADD CONSTRAINT orders_pkey PRIMARY KEY (id)")
    assert value(conn, "SELECT array_agg(oid ORDER BY oid) FROM pg_proc WHERE proname LIKE 'public.orders/%'") == \
        functions
    for definition in definitions.values():  # what pg_restore does next succeeds
        conn.execute(definition)
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    conn.execute("UPDATE orders SET status = 'paid'")
    conn.execute("DELETE FROM orders")
    assert events(conn, "orders_event", "pgh_label, pgh_obj_id") == [("insert", 1), ("update", 1), ("delete", 1)]


# -- who may do what ---------------------------------------------------------------------


def test_a_table_owner_who_is_not_superuser_gets_changes_followed(conn, connect, make_role, level):
    owner = make_role("pgh_owner")
    conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public, pghistory TO {}").format(sql.Identifier(owner)))
    c = connect(user=owner)
    c.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    c.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    c.execute("INSERT INTO orders VALUES (1, 'new')")
    c.execute("ALTER TABLE orders ADD COLUMN note text")
    c.execute("ALTER TABLE orders RENAME COLUMN status TO state")
    c.execute("UPDATE orders SET note = 'x'")
    assert events(conn, "orders_event", "pgh_label, state, note") == [("insert", "new", None), ("update", "new", "x")]
    c.execute("DROP TABLE orders")
    assert value(conn, "SELECT count(*) FROM pghistory.tracked") == 0
    assert trigger_functions(conn) == []


def test_a_table_tracked_by_a_superuser_is_its_owners_to_alter(conn, connect, make_role, level):
    """The history and trigger functions belong to the table's owner (issue 11): the owner's
    ALTER TABLE is followed once the owner may create the functions in schema pghistory."""
    owner = make_role("pgh_owner")
    conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(owner)))
    c = connect(user=owner)
    c.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))  # by the superuser
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as error:
        c.execute("ALTER TABLE orders ADD COLUMN note text")
    assert error.value.diag.message_primary == (
        f"pghistory: {owner} may not create trigger functions in schema pghistory")
    c.execute("INSERT INTO orders VALUES (1, 'new')")  # tracking is intact
    conn.execute(sql.SQL("GRANT CREATE ON SCHEMA pghistory TO {}").format(sql.Identifier(owner)))
    c.execute("ALTER TABLE orders ADD COLUMN note text")
    c.execute("UPDATE orders SET note = 'x'")
    conn.execute("ALTER TABLE orders ADD COLUMN more text")  # and the superuser may
    c.execute("UPDATE orders SET more = 'y'")
    assert events(conn, "orders_event", "pgh_label, note, more") == [
        ("insert", None, None), ("update", "x", None), ("update", "x", "y")]


def test_install_by_a_non_superuser_leaves_out_the_event_triggers(pg, empty_db, make_role):
    role = make_role("pgh_installer")
    with pg.connect(empty_db) as su:
        su.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(sql.Identifier(empty_db), sql.Identifier(role)))
    notices: list[str] = []
    with pg.connect(empty_db, user=role) as c:
        c.add_notice_handler(lambda d: notices.append(f"{d.message_primary} / {d.message_hint}"))
        c.execute("CREATE EXTENSION pghistory")
        assert (
            f"pghistory: installed without the event triggers that follow ALTER TABLE ({role} may not "
            "create them) / After altering a tracked table, run SELECT pghistory.refresh('<table>'); or ask "
            "a superuser to run SELECT pghistory.install_event_triggers()."
        ) in notices
        assert value(c, "SELECT count(*) FROM pg_event_trigger") == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match=f"^pghistory: {role} may not create the event triggers that follow schema changes\n") as info:
            c.execute("SELECT pghistory.install_event_triggers()")
        # found by trying: the server's own refusal is the detail
        assert info.value.diag.message_detail.startswith('permission denied to create event trigger "pghistory_before_ddl"')
        c.execute("CREATE SCHEMA app")
        c.execute("CREATE TABLE app.orders (id int PRIMARY KEY, status text, amount int)")
        c.execute("SELECT pghistory.track('app.orders')")
        c.execute("INSERT INTO app.orders VALUES (1, 'new', 1)")
        # without the event triggers, refresh() follows a change
        c.execute("ALTER TABLE app.orders ADD COLUMN note text")
        c.execute("ALTER TABLE app.orders DROP COLUMN amount")
        c.execute("SELECT pghistory.refresh('app.orders')")
        c.execute("UPDATE app.orders SET note = 'x'")
        assert events(c, "app.orders_event", "pgh_label, status, amount, note") == [
            ("insert", "new", 1, None), ("update", "new", None, "x")]
    with pg.connect(empty_db) as su:  # a superuser adds them later, as members of the extension
        assert value(su, "SELECT pghistory.install_event_triggers()") == 3
        assert value(su, "SELECT pghistory.install_event_triggers()") == 0
        assert value(su, """SELECT count(*) FROM pg_depend WHERE classid = 'pg_event_trigger'::regclass
                             AND deptype = 'e'""") == 3
    with pg.connect(empty_db, user=role) as c:
        c.execute("ALTER TABLE app.orders RENAME COLUMN note TO remark")
        c.execute("UPDATE app.orders SET remark = 'y'")
        assert events(c, "app.orders_event", "pgh_label, remark") == [("insert", None), ("update", "x"),
                                                                     ("update", "y")]


def test_refresh_refuses_untracked_tables_and_non_owners(conn, connect, make_role, orders):
    conn.execute("CREATE TABLE plain (id int)")
    with pytest.raises(psycopg.errors.UndefinedObject, match="pghistory: public.plain is not tracked"):
        conn.execute("SELECT pghistory.refresh('plain')")
    other = make_role("pgh_other")
    with pytest.raises(psycopg.errors.InsufficientPrivilege,
                       match="pghistory: only the owner of public.orders can refresh its tracking"):
        connect(user=other).execute("SELECT pghistory.refresh('orders')")
    conn.execute("SELECT pghistory.refresh('orders')")  # nothing changed: nothing happens
    conn.execute("UPDATE orders SET status = 'paid'")
    assert events(conn, "orders_event") == [("insert", 1), ("update", 1)]


def test_partitioned_table_tracked_for_truncate_alone_before_it_has_partitions(conn):
    """The truncate tracker's triggers sit on the tables that hold rows: a partitioned table
    without partitions has none yet, and its first partition must still get one."""
    conn.execute("CREATE TABLE p (id int NOT NULL, at int NOT NULL, v text) PARTITION BY RANGE (at)")
    conn.execute("SELECT pghistory.track('p', trackers => ARRAY[pghistory.truncate_event()])")
    conn.execute("CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10)")
    conn.execute("CREATE TABLE p2 (id int NOT NULL, at int NOT NULL, v text)")
    conn.execute("ALTER TABLE p ATTACH PARTITION p2 FOR VALUES FROM (10) TO (20)")
    conn.execute("INSERT INTO p VALUES (1, 1, 'a'), (2, 11, 'b')")
    conn.execute("TRUNCATE p")
    assert events(conn, "p_event", "pgh_label, id, v") == [("truncate", 1, "a"), ("truncate", 2, "b")]


def test_partitioned_table_without_partitions_can_be_tracked_again_and_untracked(conn):
    """Its TRUNCATE tracker's function has no trigger yet; track() and untrack() still find it."""
    conn.execute("CREATE TABLE p (id int PRIMARY KEY, v text) PARTITION BY RANGE (id)")
    conn.execute("SELECT pghistory.track('p')")
    conn.execute("SELECT pghistory.track('p')")
    conn.execute("SELECT pghistory.track('p', level => 'row')")
    assert rows(conn, "SELECT proname::text FROM pg_proc WHERE proname LIKE 'public.p/%' ORDER BY 1") == [
        ("public.p/delete",), ("public.p/insert",), ("public.p/truncate",), ("public.p/update",)]
    conn.execute("SELECT pghistory.untrack('p')")
    assert rows(conn, "SELECT proname::text FROM pg_proc WHERE proname LIKE 'public.p/%'") == []
