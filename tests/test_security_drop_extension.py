"""DROP EXTENSION pghistory never leaves a table that cannot be written (issue 11, item 9):
without CASCADE it is refused while tables are tracked; with CASCADE the triggers go with
the extension and the history stays."""

from __future__ import annotations

import psycopg
import pytest

from sqlhelpers import events, rows, value


@pytest.fixture(params=["event triggers", "no event triggers"])
def orders(request, conn: psycopg.Connection) -> psycopg.Connection:
    if request.param == "no event triggers":
        for name in ("pghistory_before_ddl", "pghistory_after_ddl", "pghistory_on_drop"):
            conn.execute(f"ALTER EXTENSION pghistory DROP EVENT TRIGGER {name}")
            conn.execute(f"DROP EVENT TRIGGER {name}")
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders', append_only => false)")  # no guard trigger either
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    return conn


def test_drop_extension_is_refused_while_tables_are_tracked(orders):
    with pytest.raises(psycopg.errors.DependentObjectsStillExist) as info:
        orders.execute("DROP EXTENSION pghistory")
    assert info.value.diag.message_primary == "cannot drop extension pghistory because other objects depend on it"
    assert info.value.diag.message_hint == "Use DROP ... CASCADE to drop the dependent objects too."
    assert "trigger pgh_insert on table orders depends on function pghistory.\"public.orders/insert\"()" in (
        info.value.diag.message_detail or "")
    orders.execute("INSERT INTO orders VALUES (2, 'new')")
    assert events(orders, "orders_event", "pgh_label, id") == [("insert", 1), ("insert", 2)]


def test_drop_extension_cascade_keeps_the_history_and_the_table_writable(orders):
    orders.execute("DROP EXTENSION pghistory CASCADE")
    orders.execute("INSERT INTO orders VALUES (2, 'new')")
    orders.execute("UPDATE orders SET status = 'paid'")
    orders.execute("TRUNCATE orders")
    assert rows(orders, "SELECT tgname::text FROM pg_trigger WHERE tgrelid = 'orders'::regclass") == []
    assert rows(orders, "SELECT pgh_label, id FROM orders_event ORDER BY pgh_id") == [("insert", 1)]
    assert value(orders, "SELECT count(*) FROM pg_proc WHERE proname LIKE 'public.orders/%%'") == 0
