"""Metadata without a context id: ``pghistory.context_metadata`` set alone is
the context of its transaction, which gets one id of its own (never dropped)."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from psycopg import sql

from sqlhelpers import events, rows, value


def _track(conn: psycopg.Connection, table: str, **options: str) -> None:
    conn.execute(sql.SQL("CREATE TABLE {} (id int PRIMARY KEY, status text)").format(sql.Identifier(table)))
    args = sql.SQL("").join(
        sql.SQL(", {} => {}").format(sql.Identifier(k), sql.Literal(v)) for k, v in options.items())
    conn.execute(sql.SQL("SELECT pghistory.track({}{})").format(sql.Literal(table), args))


def test_one_id_for_every_statement_of_the_transaction(conn):
    _track(conn, "orders")
    with conn.transaction():
        conn.execute("""SET LOCAL pghistory.context_metadata = '{"user": "x"}'""")
        inside = value(conn, "SELECT pghistory.current_context_id()")
        conn.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'new')")
        conn.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
        assert value(conn, "SELECT pghistory.current_context_id()") == inside
    assert isinstance(inside, uuid.UUID)
    assert inside.version == 8
    assert events(conn, "orders_event", "pgh_label, id, pgh_context_id") == [
        ("insert", 1, inside), ("insert", 2, inside), ("update", 1, inside)]
    assert rows(conn, "SELECT id, metadata, created_by = session_user FROM pghistory.context") == [
        (inside, {"user": "x"}, True)]
    # outside the transaction there is no context, and none is recorded
    assert value(conn, "SELECT pghistory.current_context_id()") is None
    conn.execute("UPDATE orders SET status = 'shipped' WHERE id = 2")
    assert events(conn, "orders_event", "pgh_label, id, pgh_context_id")[3:] == [("update", 2, None)]


def test_each_transaction_gets_its_own_id(conn):
    _track(conn, "orders")
    conn.execute("""SET pghistory.context_metadata = '{"job": "nightly"}'""")  # the session's
    for i in (1, 2):
        with conn.transaction():
            conn.execute("INSERT INTO orders VALUES (%s, 'new')", (i,))
    conn.execute("RESET pghistory.context_metadata")
    ids = [r[0] for r in rows(conn, "SELECT pgh_context_id FROM orders_event ORDER BY pgh_id")]
    assert len(set(ids)) == 2 and None not in ids
    assert dict(rows(conn, "SELECT id, metadata FROM pghistory.context")) == {
        ids[0]: {"job": "nightly"}, ids[1]: {"job": "nightly"}}


def test_json_context_at_row_level_carries_the_metadata(conn):
    _track(conn, "orders", context="json", level="row")
    with conn.transaction():
        conn.execute("""SELECT set_config('pghistory.context_metadata', '{"user": "x"}', true)""")
        conn.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'new')")
        inside = value(conn, "SELECT pghistory.current_context_id()")
    assert events(conn, "orders_event", "id, pgh_context_id, pgh_context") == [
        (1, inside, {"user": "x"}), (2, inside, {"user": "x"})]
    assert inside is not None
    assert value(conn, "SELECT count(*) FROM pghistory.context") == 0  # json keeps no context rows


def test_an_owner_without_rights_on_the_context_table_attaches_it_too(conn, connect, make_role):
    owner = make_role("pgh_owner")
    conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public, pghistory TO {}").format(sql.Identifier(owner)))
    as_owner = connect(owner)
    _track(as_owner, "orders")
    with as_owner.transaction():
        as_owner.execute("""SET LOCAL pghistory.context_metadata = '{"user": "y"}'""")
        as_owner.execute("INSERT INTO orders VALUES (1, 'new')")
        inside = value(as_owner, "SELECT pghistory.current_context_id()")
    assert events(conn, "orders_event", "id, pgh_context_id") == [(1, inside)]
    assert rows(conn, "SELECT id, metadata, created_by::text FROM pghistory.context") == [
        (inside, {"user": "y"}, owner)]


def test_set_context_joins_the_transaction_context(conn):
    _track(conn, "orders")
    with conn.transaction():
        conn.execute("""SET LOCAL pghistory.context_metadata = '{"user": "x"}'""")
        conn.execute("INSERT INTO orders VALUES (1, 'new')")
        joined = value(conn, """SELECT pghistory.set_context('{"reason": "refund"}')""")
        conn.execute("INSERT INTO orders VALUES (2, 'new')")
    assert events(conn, "orders_event", "id, pgh_context_id") == [(1, joined), (2, joined)]
    assert rows(conn, "SELECT metadata FROM pghistory.context") == [({"user": "x", "reason": "refund"},)]


def test_metadata_that_is_not_an_object_is_refused_not_dropped(conn):
    _track(conn, "orders")
    with pytest.raises(psycopg.errors.InvalidParameterValue) as info:
        with conn.transaction():
            conn.execute("SET LOCAL pghistory.context_metadata = 'nope'")
            conn.execute("INSERT INTO orders VALUES (1, 'new')")
    assert info.value.diag.message_primary == "pghistory.context_metadata must be a JSON object, not nope"
    assert value(conn, "SELECT count(*) FROM orders_event") == 0


def test_no_settings_no_context(conn):
    _track(conn, "orders")
    conn.execute("SET pghistory.context_metadata = ''")
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    assert events(conn, "orders_event", "id, pgh_context_id") == [(1, None)]
    assert value(conn, "SELECT pghistory.current_context_id()") is None
    assert value(conn, "SELECT count(*) FROM pghistory.context") == 0
