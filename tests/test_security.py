"""Privileges and hardening: writers need no rights on history, history cannot be forged,
and search_path tricks do not reach pghistory's functions."""

from __future__ import annotations

import psycopg
import pytest

from sqlhelpers import events, rows, value


@pytest.fixture
def app(conn: psycopg.Connection, make_role) -> str:
    """An application role that may write orders and nothing else."""
    role = make_role("pgh_app")
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders')")
    conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON orders TO {role}")
    return role


@pytest.mark.parametrize("level", ["statement", "row"])
def test_writers_need_no_privilege_on_history(conn, connect, app, level):
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    writer = connect(user=app)
    with writer.transaction():
        context_id = value(writer, """SELECT pghistory.set_context('{"user": "app"}')""")
        writer.execute("INSERT INTO orders VALUES (1, 'new')")
        writer.execute("UPDATE orders SET status = 'paid'")
        writer.execute("DELETE FROM orders")
    writer.execute("INSERT INTO orders VALUES (2, 'new')")
    writer.execute("TRUNCATE orders")
    assert events(conn, "orders_event", "pgh_label, id, pgh_context_id") == [
        ("insert", 1, context_id), ("update", 1, context_id), ("delete", 1, context_id),
        ("insert", 2, None), ("truncate", 2, None)]
    assert rows(conn, "SELECT metadata FROM pghistory.context") == [({"user": "app"},)]


@pytest.mark.parametrize("statement", [
    "SELECT * FROM orders_event",
    "INSERT INTO orders_event (pgh_label) VALUES ('forged')",
    "UPDATE orders_event SET pgh_label = 'forged'",
    "DELETE FROM orders_event",
    "TRUNCATE orders_event",
    "SELECT * FROM pghistory.context",
    "INSERT INTO pghistory.context (id) VALUES (gen_random_uuid())",
    "UPDATE pghistory.context SET metadata = '{}'",
    "DELETE FROM pghistory.context",
    "TRUNCATE pghistory.context",
    "SELECT pghistory.\"public.orders/insert\"()",
])
def test_application_roles_cannot_read_or_forge_history(conn, connect, app, statement):
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        connect(user=app).execute(statement)


def test_track_and_untrack_by_someone_else_are_refused(conn, connect, app):
    writer = connect(user=app)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only the owner of public.orders can track it"):
        writer.execute("SELECT pghistory.track('orders', append_only => false)")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only the owner of public.orders can untrack it"):
        writer.execute("SELECT pghistory.untrack('orders')")
    assert value(conn, "SELECT count(*) FROM pghistory.tracked") == 1


def test_extension_functions_pin_search_path(conn):
    assert rows(conn, """
        SELECT p.oid::regprocedure::text FROM pg_proc AS p
          JOIN pg_depend AS d ON d.objid = p.oid AND d.deptype = 'e'
         WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pghistory')
           AND NOT coalesce(p.proconfig, '{}') @> '{"search_path=pg_catalog, pg_temp"}'""") == []
    assert value(conn, """
        SELECT array_agg(p.proname::text ORDER BY p.proname) FROM pg_proc AS p
         WHERE p.pronamespace = 'pghistory'::regnamespace AND p.prosecdef""") == [
        "_attach_context",
        "_citus_number_above",      # moves a Citus node's pgh_id numbering forward, never past 2^62
        "_event_ids_past",          # moves the shared pgh_id sequence forward, never past 2^62
        "_forget_dropped_policies",  # policies of event tables that no longer exist
        "_forget_dropped_tables",  # sql_drop: registry rows of tables that no longer exist
        "_grant_attach_context",   # EXECUTE on _attach_context for the owners of tracked tables
        "_record_redaction",       # the record of redact(), checking the session user's ownership
        "_register",               # the registry's writers, checking the session user's ownership
        "_set_policy",             # the policies' writer, checking the session user's ownership
        "_unregister",
    ]


@pytest.mark.parametrize("level", ["statement", "row"])
def test_search_path_tricks_do_not_reach_pghistory(conn, connect, app, level):
    """Shadow now(), to_jsonb(), gen_random_uuid(), current_setting() and = in a schema
    that comes first in the writer's search_path: nothing pghistory does may use them."""
    conn.execute("SELECT pghistory.track('orders', level => %s)", (level,))
    conn.execute(f"CREATE SCHEMA evil AUTHORIZATION {app}")
    writer = connect(user=app)
    writer.execute("""
        CREATE FUNCTION evil.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '2000-01-01'::timestamptz $$;
        CREATE FUNCTION evil.to_jsonb(anyelement) RETURNS jsonb LANGUAGE sql AS $$ SELECT '"evil"'::jsonb $$;
        CREATE FUNCTION evil.gen_random_uuid() RETURNS uuid LANGUAGE sql
            AS $$ SELECT '00000000-0000-0000-0000-000000000000'::uuid $$;
        CREATE FUNCTION evil.current_setting(text, boolean) RETURNS text LANGUAGE sql AS $$ SELECT 'off' $$;
        CREATE FUNCTION evil.int_eq(int, int) RETURNS boolean LANGUAGE sql AS $$ SELECT true $$;
        CREATE OPERATOR evil.= (LEFTARG = int, RIGHTARG = int, FUNCTION = evil.int_eq);
        CREATE FUNCTION evil.text_ne(text, text) RETURNS boolean LANGUAGE sql AS $$ SELECT false $$;
        CREATE OPERATOR evil.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.text_ne);
    """)
    writer.execute("SET search_path = evil, public, pg_catalog")
    with writer.transaction():
        context_id = value(writer, """SELECT pghistory.set_context('{"user": "app"}')""")
        writer.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'new')")
        writer.execute("UPDATE orders SET status = 'paid' WHERE id OPERATOR(pg_catalog.=) 1")
    assert str(context_id) != "00000000-0000-0000-0000-000000000000"
    assert events(conn, "orders_event", "pgh_label, id, status, pgh_created_at > '2001-01-01', pgh_context_id") == [
        ("insert", 1, "new", True, context_id), ("insert", 2, "new", True, context_id),
        ("update", 1, "paid", True, context_id)]


def test_the_registry_is_readable_but_changes_only_through_pghistory(conn, connect, app):
    writer = connect(user=app)
    assert rows(writer, "SELECT tracked_table::text FROM pghistory.tracked") == [("orders",)]
    for statement in ["DELETE FROM pghistory.tracked", "UPDATE pghistory.tracked SET append_only = false",
                      """INSERT INTO pghistory.tracked (tracked_table, event_table, trackers, context, level, append_only)
                         VALUES ('orders_event', 'orders', '{}', 'fk', 'row', false)"""]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for table tracked"):
            writer.execute(statement)
    assert value(conn, "SELECT append_only FROM pghistory.tracked") is True


def test_an_owner_who_is_not_superuser_tracks_with_create_on_schema_pghistory(conn, connect, make_role):
    owner = make_role("pgh_owner")
    conn.execute(f"GRANT CREATE ON SCHEMA public TO {owner}")
    as_owner = connect(user=owner)
    as_owner.execute("CREATE TABLE mine (id int PRIMARY KEY, v text)")
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
        as_owner.execute("SELECT pghistory.track('mine')")
    assert info.value.diag.message_primary == f"pghistory: {owner} may not create trigger functions in schema pghistory"
    conn.execute(f"GRANT CREATE ON SCHEMA pghistory TO {owner}")
    as_owner.execute("SELECT pghistory.track('mine')")
    as_owner.execute("INSERT INTO mine VALUES (1, 'a')")
    assert events(as_owner, "mine_event", "pgh_label, v") == [("insert", "a")]
    as_owner.execute("SELECT pghistory.untrack('mine', drop_events => true)")
    conn.execute(f"REVOKE CREATE ON SCHEMA pghistory FROM {owner}")
