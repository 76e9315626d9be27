"""Following schema changes: no setting a user can set switches it off (issue 11, item 5)."""

from __future__ import annotations

import psycopg
import pytest

from sqlhelpers import events, value


@pytest.fixture
def orders(conn: psycopg.Connection) -> psycopg.Connection:
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders')")
    return conn


def test_a_session_setting_does_not_stop_schema_changes_being_followed(orders):
    orders.execute("SET pghistory._following_schema = on")
    orders.execute("ALTER TABLE orders ADD COLUMN note text")
    orders.execute("INSERT INTO orders VALUES (1, 'new', 'rush')")
    assert events(orders, "orders_event", "pgh_label, id, note") == [("insert", 1, "rush")]


def test_a_session_setting_does_not_switch_off_the_drop_guard(orders):
    orders.execute("SET pghistory._following_schema = on")
    with pytest.raises(psycopg.errors.DependentObjectsStillExist,
                       match="holds the history of public.orders, which is still tracked"):
        orders.execute("DROP TABLE orders_event")
    assert value(orders, "SELECT count(*) FROM pghistory.tracked") == 1
