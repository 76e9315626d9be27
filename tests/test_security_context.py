"""Context rows: created only as the side effect of a write to a tracked table, changed only by
the role that created them; no setting a user can set skips them (issue 11, items 2 and 5)."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from sqlhelpers import events, rows, value

OWNERS = ["superuser", "plain role"]  # the context row written inline, or through _attach_context()


@pytest.fixture(params=OWNERS)
def orders(request, conn: psycopg.Connection, connect, make_role) -> psycopg.Connection:
    """orders, tracked, owned by a superuser or by a plain role; returns the owner's connection."""
    as_owner = conn
    if request.param == "plain role":
        role = make_role("pgh_owner")
        conn.execute(f"GRANT CREATE ON SCHEMA public, pghistory TO {role}")
        as_owner = connect(user=role)
    as_owner.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    as_owner.execute("SELECT pghistory.track('orders')")
    return as_owner


def writer(orders: psycopg.Connection, connect, make_role, prefix: str) -> psycopg.Connection:
    role = make_role(prefix)
    orders.execute(f"GRANT INSERT, UPDATE ON orders TO {role}")
    return connect(user=role)


def test_a_role_without_grants_cannot_forge_context_rows(conn, connect, make_role):
    mallory = connect(user=make_role("pgh_mallory"))
    with pytest.raises(psycopg.errors.InsufficientPrivilege,
                       match=r"permission denied for function _attach_context"):
        mallory.execute("""SELECT pghistory._attach_context('11111111-1111-1111-1111-111111111111',
                                                              '{"user": "forged"}')""")
    assert value(conn, "SELECT count(*) FROM pghistory.context") == 0


def test_a_writer_cannot_change_the_metadata_of_another_roles_context(conn, connect, make_role, orders):
    alice = writer(orders, connect, make_role, "pgh_alice")
    mallory = writer(orders, connect, make_role, "pgh_mallory")
    with alice.transaction():
        context_id = value(alice, """SELECT pghistory.set_context('{"user": "alice"}')""")
        alice.execute("INSERT INTO orders VALUES (1, 'new')")
    with mallory.transaction():
        mallory.execute("SELECT set_config('pghistory.context_id', %s, true)", (str(context_id),))
        mallory.execute("""SELECT set_config('pghistory.context_metadata', '{"user": "forged"}', true)""")
        mallory.execute("UPDATE orders SET status = 'paid'")
    with alice.transaction():  # alice continues her own context: she may change it
        alice.execute("SELECT set_config('pghistory.context_id', %s, true)", (str(context_id),))
        alice.execute("""SELECT set_config('pghistory.context_metadata', '{"user": "alice"}', true)""")
        alice.execute("""SELECT pghistory.set_context('{"step": 2}')""")
        alice.execute("UPDATE orders SET status = 'shipped'")
    assert events(conn, "orders_event", "pgh_label, status, pgh_context_id") == [
        ("insert", "new", context_id), ("update", "paid", context_id), ("update", "shipped", context_id)]
    assert rows(conn, "SELECT metadata, created_by::text FROM pghistory.context") == [
        ({"user": "alice", "step": 2}, alice.info.user)]


def test_the_context_row_is_written_whatever_a_user_sets(conn, connect, make_role, orders):
    """pghistory._attached was a marker any role could set to make the trigger skip the row."""
    app = writer(orders, connect, make_role, "pgh_app")
    context_id = str(uuid.uuid4())
    metadata = '{"user": "app"}'
    with app.transaction():
        app.execute("SELECT set_config('pghistory.context_id', %s, true)", (context_id,))
        app.execute("SELECT set_config('pghistory.context_metadata', %s, true)", (metadata,))
        app.execute("SELECT set_config('pghistory._attached', %s, true)", (context_id + metadata,))
        app.execute("INSERT INTO orders VALUES (1, 'new')")
        app.execute("INSERT INTO orders VALUES (2, 'new')")
    assert rows(conn, "SELECT id::text, metadata, created_by::text FROM pghistory.context") == [
        (context_id, {"user": "app"}, app.info.user)]
