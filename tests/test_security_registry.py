"""The registry pghistory.tracked changes only through pghistory's functions, which check both
the tracked table and the event table; a stale row makes nothing raise (issue 11, items 3, 4, 6)."""

from __future__ import annotations

import psycopg
import pytest

from sqlhelpers import rows, value


@pytest.fixture
def victim(conn: psycopg.Connection) -> psycopg.Connection:
    """A superuser's tracked table, whose event table mallory would like to capture."""
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders')")
    conn.execute("CREATE TABLE spare (pgh_id bigint, pgh_created_at timestamptz, pgh_label text, pgh_obj_id int)")
    return conn


@pytest.fixture
def mallory(conn: psycopg.Connection, connect, make_role) -> psycopg.Connection:
    """A role that may create tables (and trigger functions), and owns one: mine."""
    role = make_role("pgh_mallory")
    conn.execute(f"GRANT CREATE ON SCHEMA public, pghistory TO {role}")
    c = connect(user=role)
    c.execute("CREATE TABLE mine (id int PRIMARY KEY, v text)")
    return c


@pytest.mark.parametrize("statement", [
    """INSERT INTO pghistory.tracked (tracked_table, event_table, trackers, context, level, append_only)
       VALUES ('mine', 'spare', ARRAY[pghistory.insert_event()], 'fk', 'row', false)""",
    "UPDATE pghistory.tracked SET append_only = false",
    "DELETE FROM pghistory.tracked",
    "TRUNCATE pghistory.tracked",
])
def test_nobody_writes_the_registry_directly(victim, mallory, statement):
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied for table tracked"):
        mallory.execute(statement)
    assert rows(victim, "SELECT tracked_table::text, append_only FROM pghistory.tracked") == [("orders", True)]


@pytest.mark.parametrize("event_table", ["spare", "orders_event"])
def test_another_roles_table_cannot_become_an_event_table(victim, mallory, event_table):
    """Registering mine with someone else's table as its event table would have blocked that
    role's DROP TABLE and made its ALTERs add columns to its table."""
    with pytest.raises(psycopg.errors.Error) as info:
        mallory.execute(f"SELECT pghistory.track('mine', event_table => '{event_table}')")
    assert info.value.diag.message_primary == {
        "spare": f"pghistory: public.spare belongs to postgres, and the event table of public.mine must belong "
                 f"to its owner {mallory.info.user}",
        "orders_event": "pghistory: public.orders_event is the event table of another tracked table"}[event_table]
    with pytest.raises(psycopg.errors.Error) as info:
        mallory.execute(f"""SELECT pghistory._register(ROW('mine', '{event_table}', ARRAY[pghistory.insert_event()],
                                                        NULL, NULL, 'fk', 'row', false, now(), '{{}}')::pghistory.tracked)""")
    assert info.value.diag.message_primary in (
        f"pghistory: only the owner of public.mine and its event table public.{event_table} can change how it is tracked",
        f"pghistory: public.mine cannot record its history in public.{event_table}")
    victim.execute("DROP TABLE spare")
    victim.execute("ALTER TABLE orders ADD COLUMN note text")
    assert rows(victim, "SELECT tracked_table::text FROM pghistory.tracked") == [("orders",)]


def test_untracking_another_roles_table_through_the_registry_is_refused(victim, mallory):
    with pytest.raises(psycopg.errors.InsufficientPrivilege,
                       match="only the owner of public.orders and its event table can untrack it"):
        mallory.execute("SELECT pghistory._unregister('orders')")
    assert value(victim, "SELECT count(*) FROM pghistory.tracked") == 1


@pytest.fixture
def stale(victim: psycopg.Connection) -> int:
    """A registry row whose table was dropped while the event triggers were away."""
    victim.execute("CREATE TABLE gone (id int PRIMARY KEY)")
    victim.execute("SELECT pghistory.track('gone')")
    oid = value(victim, "SELECT 'gone'::regclass::oid")
    victim.execute("ALTER EVENT TRIGGER pghistory_on_drop DISABLE")
    victim.execute("DROP TABLE gone")
    victim.execute("ALTER EVENT TRIGGER pghistory_on_drop ENABLE")
    return oid


def test_forgetting_dropped_tables_drops_no_function_a_caller_names(victim, mallory, stale):
    """_forget_dropped_tables(oids, names) dropped the functions named after its caller's names;
    it now takes no argument and drops nothing itself."""
    victim.execute("CREATE TABLE p (id int, v text) PARTITION BY RANGE (id)")
    victim.execute("SELECT pghistory.track('p', trackers => ARRAY[pghistory.truncate_event('insert')])")
    with pytest.raises(psycopg.errors.UndefinedFunction):
        mallory.execute("SELECT pghistory._forget_dropped_tables(ARRAY[%s]::oid[], ARRAY['public.p'])", (stale,))
    assert value(mallory, "SELECT count(*) FROM pghistory._forget_dropped_tables()") == 4
    assert rows(victim, """SELECT proname::text FROM pg_proc WHERE pronamespace = 'pghistory'::regnamespace
                            AND proname LIKE 'public.%%' ORDER BY 1""") == [
        ("public.gone/delete",), ("public.gone/insert",), ("public.gone/truncate",), ("public.gone/update",),
        ("public.orders/delete",), ("public.orders/insert",), ("public.orders/truncate",),
        ("public.orders/update",), ("public.p/insert",)]
    assert rows(victim, "SELECT tracked_table::text FROM pghistory.tracked ORDER BY 1") == [("orders",), ("p",)]


def test_a_stale_registry_row_does_not_make_the_tracking_view_raise(victim, connect, make_role, stale):
    nobody = connect(user=make_role("pgh_nobody"))
    assert rows(nobody, "SELECT tracked_table::text, trackers, labels, fields FROM pghistory.tracking ORDER BY 1") == [
        (str(stale), ["insert_event('insert')", "update_event('update')", "delete_event('delete')",
                      "truncate_event('truncate')"], ["insert", "update", "delete", "truncate"], []),
        ("orders", ["insert_event('insert')", "update_event('update')", "delete_event('delete')",
                    "truncate_event('truncate')"], ["insert", "update", "delete", "truncate"], ["id", "status"])]


def test_the_tracking_view_shows_trackers_as_the_calls_that_make_them(victim):
    victim.execute("""SELECT pghistory.track('orders', trackers => ARRAY[
        pghistory.update_event('paid', changed => '{status}', condition => 'NEW.status = ''paid''', snapshot => 'old'),
        pghistory.manual_event('audit')])""")
    assert value(victim, "SELECT trackers FROM pghistory.tracking") == [
        "update_event('paid', changed => '{status}', condition => 'NEW.status = ''paid''', snapshot => 'old')",
        "manual_event('audit')"]
