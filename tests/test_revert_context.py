"""pghistory.revert_context(): taking back everything one context wrote."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
import pytest

from sqlhelpers import rows, value


@pytest.fixture(params=["statement", "row"])
def level(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def shop(conn: psycopg.Connection, level: str) -> UUID:
    """orders and items tracked; one request (the context returned) inserts, updates and deletes in both."""
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL)")
    conn.execute("CREATE TABLE items (id int PRIMARY KEY, order_id int, qty int)")
    conn.execute("SELECT pghistory.track('orders', level => %s), pghistory.track('items', level => %s)", (level, level))
    conn.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'new')")
    conn.execute("INSERT INTO items VALUES (10, 1, 1), (20, 2, 1)")
    with conn.transaction():
        ctx = value(conn, """SELECT pghistory.set_context('{"url": "/request"}')""")
        conn.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
        conn.execute("UPDATE orders SET status = 'shipped' WHERE id = 1")
        conn.execute("INSERT INTO orders VALUES (3, 'new')")
        conn.execute("INSERT INTO items VALUES (30, 3, 5)")
        conn.execute("DELETE FROM items WHERE id = 20")
        conn.execute("UPDATE items SET qty = 2 WHERE id = 10")
    return ctx


def state(conn: psycopg.Connection) -> list[Any]:
    return [rows(conn, "SELECT * FROM orders ORDER BY id"), rows(conn, "SELECT * FROM items ORDER BY id")]


BEFORE = [[(1, "new"), (2, "new")], [(10, 1, 1), (20, 2, 1)]]


def test_dry_run_returns_the_plan_and_writes_nothing(conn, shop):
    after = state(conn)
    plan = rows(conn, "SELECT event_table::text, obj_id, action FROM pghistory.revert_context(%s, dry_run => true)", shop)
    assert sorted(plan) == [("items_event", "10", "update"), ("items_event", "20", "insert"),
                            ("items_event", "30", "delete"), ("orders_event", "1", "update"),
                            ("orders_event", "3", "delete")]
    assert state(conn) == after


def test_revert_context_puts_every_row_back_as_tracked_writes(conn, shop):
    with conn.transaction():
        undo = value(conn, """SELECT pghistory.set_context('{"url": "/undo"}')""")
        done = rows(conn, "SELECT event_table::text, obj_id, action FROM pghistory.revert_context(%s)", shop)
    assert len(done) == 5
    assert state(conn) == BEFORE
    assert rows(conn, """SELECT pgh_obj_model, pgh_obj_id, pgh_label FROM pghistory.events(context_id => %s)
                          ORDER BY 1, 2""", undo) == [
        ("public.items", "10", "update"), ("public.items", "20", "insert"), ("public.items", "30", "delete"),
        ("public.orders", "1", "update"), ("public.orders", "3", "delete")]
    # newest first across both tables (one sequence numbers their events): items 10 (updated last),
    # 20, 30, then orders 3 and 1; taking it back again would undo the undo: those rows were
    # changed since, by another context
    with pytest.raises(psycopg.errors.SerializationFailure) as info:
        conn.execute("SELECT * FROM pghistory.revert_context(%s, dry_run => true)", (shop,))
    assert info.value.diag.message_detail == (
        "Changed since: public.items 10 (events 11); public.items 20 (events 12); public.items 30 (events 13); "
        "public.orders 1 (events 15); public.orders 3 (events 14).")


def test_revert_context_refuses_conflicts_unless_overridden(conn, shop):
    conn.execute("UPDATE orders SET status = 'lost' WHERE id = 1")
    with pytest.raises(psycopg.errors.SerializationFailure) as info:
        conn.execute("SELECT * FROM pghistory.revert_context(%s)", (shop,))
    assert info.value.diag.message_primary == f"pghistory: cannot revert context {shop}: a row was changed since by another context"
    assert info.value.diag.message_detail == "Changed since: public.orders 1 (events 11)."
    assert state(conn)[0] == [(1, "lost"), (2, "new"), (3, "new")]  # nothing half-done
    rows(conn, "SELECT * FROM pghistory.revert_context(%s, override => true)", shop)
    assert state(conn) == BEFORE


def test_a_revert_that_fails_leaves_nothing_half_done(conn, shop):
    conn.execute("ALTER TABLE items ADD CONSTRAINT qty_big CHECK (qty > 1) NOT VALID")
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("SELECT * FROM pghistory.revert_context(%s)", (shop,))
    assert state(conn) == [[(1, "shipped"), (2, "new"), (3, "new")], [(10, 1, 2), (30, 3, 5)]]


def test_revert_context_refuses(conn, shop):
    cases = [
        ("SELECT * FROM pghistory.revert_context(NULL)", "22023",
         "pghistory: revert_context() needs a context id, not NULL"),
    ]
    for query, sqlstate, message in cases:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(query)
        assert (info.value.sqlstate, info.value.diag.message_primary) == (sqlstate, message)
    with conn.transaction():
        conn.execute("SELECT set_config('pghistory.context_id', %s, true)", (str(shop),))
        with pytest.raises(psycopg.errors.InvalidParameterValue) as info:
            conn.execute("SELECT * FROM pghistory.revert_context(%s)", (shop,))
    assert info.value.diag.message_primary == (
        f"pghistory: context {shop} is the active one; its revert would be recorded under it")
    # a row older than tracking, changed by a context, has no recorded state before it
    conn.execute("CREATE TABLE old (id int PRIMARY KEY, v text)")
    conn.execute("INSERT INTO old VALUES (1, 'a')")
    conn.execute("SELECT pghistory.track('old')")
    with conn.transaction():
        ctx = value(conn, "SELECT pghistory.set_context('{}')")
        conn.execute("UPDATE old SET v = 'b'")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState) as info:
        conn.execute("SELECT * FROM pghistory.revert_context(%s)", (ctx,))
    assert info.value.diag.message_primary == (
        f"pghistory: cannot revert context {ctx}: the state before it of public.old 1 is not recorded")


def test_an_unknown_context_reverts_nothing(conn, shop):
    assert rows(conn, "SELECT * FROM pghistory.revert_context(gen_random_uuid())") == []
