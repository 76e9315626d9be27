"""track() called again, untrack(), and the tracking view."""

from __future__ import annotations

import psycopg
import pytest

from sqlhelpers import events, rows, value

TRIGGERS = """
    SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger
     WHERE tgrelid = %s::regclass AND NOT tgisinternal ORDER BY tgname"""


def test_default_triggers_are_statement_level_with_transition_tables(conn):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    assert value(conn, "SELECT pghistory.track('orders')::text") == "orders_event"
    assert rows(conn, TRIGGERS, "orders") == [
        ("pgh_delete", "CREATE TRIGGER pgh_delete AFTER DELETE ON public.orders REFERENCING OLD TABLE AS pgh_old_rows"
                       " FOR EACH STATEMENT EXECUTE FUNCTION pghistory.\"public.orders/delete\"()"),
        ("pgh_insert", "CREATE TRIGGER pgh_insert AFTER INSERT ON public.orders REFERENCING NEW TABLE AS pgh_new_rows"
                       " FOR EACH STATEMENT EXECUTE FUNCTION pghistory.\"public.orders/insert\"()"),
        ("pgh_truncate", "CREATE TRIGGER pgh_truncate BEFORE TRUNCATE ON public.orders"
                         " FOR EACH STATEMENT EXECUTE FUNCTION pghistory.\"public.orders/truncate\"()"),
        ("pgh_update", "CREATE TRIGGER pgh_update AFTER UPDATE ON public.orders REFERENCING OLD TABLE AS pgh_old_rows"
                       " NEW TABLE AS pgh_new_rows FOR EACH STATEMENT EXECUTE FUNCTION pghistory.\"public.orders/update\"()"),
    ]


def test_generated_functions_are_static_hardened_and_private(conn):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders')")
    functions = rows(conn, """
        SELECT p.proname, p.prosecdef, p.proconfig,
               (SELECT count(*) FROM aclexplode(p.proacl) WHERE grantee = 0) AS public_grants, p.prosrc
          FROM pg_proc p WHERE p.pronamespace = 'pghistory'::regnamespace AND p.proname LIKE 'public.orders/%'
         ORDER BY p.proname""")
    assert [f[0] for f in functions] == [
        "public.orders/delete", "public.orders/insert", "public.orders/truncate", "public.orders/update"]
    for name, secdef, config, public_grants, source in functions:
        assert secdef, name
        # no planner settings beyond jit: the update pairing is a FULL JOIN, never a nested loop
        assert config == ["search_path=pg_catalog, pg_temp", "jit=off"], name
        assert public_grants == 0, name
        # resolved at track() time: no catalog look-ups and no exception blocks per call
        assert "pg_catalog.pg_" not in source and "EXCEPTION" not in source and "EXECUTE" not in source, name


def test_row_level_uses_row_triggers_that_check_in_the_function(conn):
    # no WHEN: a WHEN naming columns would stop ALTER TABLE from dropping them or changing their type
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders', level => 'row')")
    name, definition = rows(conn, TRIGGERS, "orders")[3]
    assert (name, definition) == (
        "pgh_update",
        'CREATE TRIGGER pgh_update AFTER UPDATE ON public.orders FOR EACH ROW EXECUTE FUNCTION pghistory."public.orders/update"()')
    source = value(conn, """SELECT prosrc FROM pg_proc WHERE proname = 'public.orders/update'""")
    assert 'IF (OLD."id", OLD."status") IS DISTINCT FROM (NEW."id", NEW."status") THEN' in source


def test_track_twice_is_a_no_op(conn):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders')")
    before = rows(conn, "SELECT oid, tgname FROM pg_trigger WHERE tgrelid = 'orders'::regclass ORDER BY 1")
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    assert value(conn, "SELECT pghistory.track('orders')::text") == "orders_event"
    assert rows(conn, "SELECT oid, tgname FROM pg_trigger WHERE tgrelid = 'orders'::regclass ORDER BY 1") == before
    conn.execute("UPDATE orders SET status = 'paid'")
    assert events(conn, "orders_event") == [("insert", 1), ("update", 1)]


def test_track_again_reconfigures_and_keeps_history(conn):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text, amount int)")
    conn.execute("SELECT pghistory.track('orders', fields => '{id,status}')")
    conn.execute("INSERT INTO orders VALUES (1, 'new', 10)")
    conn.execute("""SELECT pghistory.track('orders', context => 'json',
        trackers => ARRAY[pghistory.update_event(), pghistory.manual_event('audit')])""")
    conn.execute("INSERT INTO orders VALUES (2, 'new', 20)")  # no insert tracker any more
    conn.execute("UPDATE orders SET amount = 11 WHERE id = 1")  # amount is tracked now
    assert events(conn, "orders_event", "pgh_label, id, status, amount") == [
        ("insert", 1, "new", None), ("update", 1, "new", 11)]
    assert rows(conn, "SELECT labels, fields, context, level FROM pghistory.tracking") == [
        (["update", "audit"], ["id", "status", "amount"], "json", "statement")]
    assert value(conn, """SELECT array_agg(attname::text ORDER BY attnum) FROM pg_attribute
                           WHERE attrelid = 'orders_event'::regclass AND attnum > 0""") == [
        "pgh_id", "pgh_created_at", "pgh_xact", "pgh_label", "pgh_obj_id", "pgh_context_id",
        "id", "status", "pgh_context", "amount"]


def test_untrack_keeps_history_and_track_again_continues_it(conn):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders')")
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    conn.execute("SELECT pghistory.untrack('orders')")
    conn.execute("UPDATE orders SET status = 'unseen'")
    assert rows(conn, "SELECT * FROM pghistory.tracking") == []
    assert value(conn, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'orders'::regclass") == 0
    assert value(conn, "SELECT count(*) FROM pg_proc WHERE proname LIKE 'public.orders/%'") == 0
    conn.execute("SELECT pghistory.track('orders')")
    conn.execute("UPDATE orders SET status = 'paid'")
    assert events(conn, "orders_event", "pgh_id, pgh_label, status") == [(1, "insert", "new"), (2, "update", "paid")]


def test_untrack_drop_events_drops_the_event_table(conn):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    conn.execute("SELECT pghistory.track('orders')")
    conn.execute("SELECT pghistory.untrack('orders', drop_events => true)")
    assert value(conn, "SELECT to_regclass('orders_event')") is None


def test_untrack_of_an_untracked_table_is_an_error(conn):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    with pytest.raises(psycopg.errors.UndefinedObject) as info:
        conn.execute("SELECT pghistory.untrack('orders')")
    assert info.value.diag.message_primary == "pghistory: public.orders is not tracked"
    assert info.value.diag.message_hint == "SELECT * FROM pghistory.tracking lists the tracked tables."


def test_event_table_can_be_named_and_placed_in_another_schema(conn):
    conn.execute("CREATE SCHEMA audit")
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    assert value(conn, "SELECT pghistory.track('orders', event_table => 'audit.orders_history')::text") == \
        "audit.orders_history"
    conn.execute("INSERT INTO orders VALUES (1)")
    assert events(conn, "audit.orders_history") == [("insert", 1)]
    with pytest.raises(psycopg.errors.ObjectInUse, match="already records its history in audit.orders_history"):
        conn.execute("SELECT pghistory.track('orders', event_table => 'elsewhere')")


def test_tracking_view_describes_each_tracked_table(conn):
    conn.execute("CREATE TABLE a (id int PRIMARY KEY, x text, y text)")
    conn.execute("CREATE TABLE b (x text)")
    conn.execute("SELECT pghistory.track('a', exclude => '{y}', level => 'row', append_only => false)")
    conn.execute("SELECT pghistory.track('b', context => 'none')")
    assert rows(conn, """SELECT tracked_table::text, event_table::text, labels, fields, context, level, append_only
                           FROM pghistory.tracking ORDER BY 1""") == [
        ("a", "a_event", ["insert", "update", "delete", "truncate"], ["id", "x"], "fk", "row", False),
        ("b", "b_event", ["insert", "update", "delete", "truncate"], ["x"], "none", "statement", True),
    ]


def test_history_is_append_only_unless_lifted_on_purpose(conn):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    conn.execute("SELECT pghistory.track('orders')")
    conn.execute("INSERT INTO orders VALUES (1), (2)")
    for statement in ("UPDATE orders_event SET pgh_label = 'forged'", "DELETE FROM orders_event",
                      "TRUNCATE orders_event"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only history"):
            conn.execute(statement)
    with conn.transaction():
        conn.execute("SET LOCAL pghistory.allow_history_changes = on")
        conn.execute("DELETE FROM orders_event WHERE pgh_obj_id = 1")
    assert events(conn, "orders_event") == [("insert", 2)]
    conn.execute("SELECT pghistory.track('orders', append_only => false)")
    conn.execute("DELETE FROM orders_event")
    assert events(conn, "orders_event") == []
