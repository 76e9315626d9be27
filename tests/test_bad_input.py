"""Bad input to track() and the tracker constructors: a clear error, and nothing half-configured."""

from __future__ import annotations

import psycopg
import pytest

from sqlhelpers import rows, value


def assert_untouched(conn: psycopg.Connection, table: str = "orders") -> None:
    """No registry row, no triggers, no generated functions, no event table."""
    assert rows(conn, "SELECT * FROM pghistory.tracked") == []
    assert value(conn, "SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass", table) == 0
    assert value(conn, "SELECT count(*) FROM pg_proc WHERE pronamespace = 'pghistory'::regnamespace "
                       "AND proname LIKE '%%/%%'") == 0
    assert value(conn, "SELECT to_regclass(%s)", f"{table}_event") is None


@pytest.fixture
def orders(conn: psycopg.Connection) -> str:
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    return "orders"


CASES = [
    # (call, error class, message, hint fragment)
    ("pghistory.track('orders', fields => '{id,nope}')", psycopg.errors.UndefinedColumn,
     "pghistory: public.orders has no column nope", "fields"),
    ("pghistory.track('orders', exclude => '{\"Status\"}')", psycopg.errors.UndefinedColumn,
     'pghistory: public.orders has no column "Status"', "case-sensitive"),
    ("pghistory.track('orders', fields => '{id}', exclude => '{status}')", psycopg.errors.InvalidParameterValue,
     "pghistory: give fields or exclude, not both", "exclude lists"),
    ("pghistory.track('orders', fields => '{}')", psycopg.errors.InvalidParameterValue,
     "pghistory: fields is empty, so there is nothing to track", "NULL"),
    ("pghistory.track('orders', exclude => '{id,status}')", psycopg.errors.InvalidParameterValue,
     "pghistory: no column of public.orders is left to track", "exclude"),
    ("pghistory.track('orders', level => 'rows')", psycopg.errors.InvalidParameterValue,
     "pghistory: unknown level 'rows'", "'statement'"),
    ("pghistory.track('orders', context => 'jsonb')", psycopg.errors.InvalidParameterValue,
     "pghistory: unknown context mode 'jsonb'", "'fk'"),
    ("pghistory.track('orders', append_only => NULL)", psycopg.errors.InvalidParameterValue,
     "pghistory: append_only must be true or false, not NULL", None),
    ("pghistory.track('orders', trackers => '{}')", psycopg.errors.InvalidParameterValue,
     "pghistory: trackers is empty, so nothing would be recorded", "NULL"),
    ("pghistory.track('orders', trackers => ARRAY[pghistory.insert_event('x'), pghistory.update_event('x')])",
     psycopg.errors.DuplicateObject, 'pghistory: label "x" is registered twice for public.orders', "own label"),
    ("pghistory.track('orders', trackers => ARRAY[pghistory.update_event(changed => '{nope}')])",
     psycopg.errors.UndefinedColumn, 'pghistory: tracker "update" watches column nope, which public.orders does not have',
     "changed"),
    ("pghistory.track('orders', trackers => ARRAY[pghistory.insert_event(condition => 'OLD.id > 1')])",
     psycopg.errors.InvalidParameterValue,
     'pghistory: the condition of tracker "insert" is not valid: INSERT trigger\'s WHEN condition cannot reference OLD values',
     "OLD and NEW"),
    ("pghistory.track('orders', trackers => ARRAY[pghistory.update_event(condition => 'NEW.nope')])",
     psycopg.errors.InvalidParameterValue,
     'pghistory: the condition of tracker "update" is not valid: column new.nope does not exist', "WHEN"),
    ("pghistory.track('orders', trackers => ARRAY[pghistory.update_event(condition => 'true); DROP TABLE orders; --')])",
     psycopg.errors.InvalidParameterValue, None, "WHEN"),
    ("pghistory.track('orders', trackers => ARRAY[ROW('x', 'upsert', NULL, NULL, 'new')::pghistory.tracker])",
     psycopg.errors.InvalidParameterValue, 'pghistory: (x,upsert,,,new) is not a tracker', "insert_event()"),
    ("pghistory.track('orders', event_table => 'a.b.c')", psycopg.errors.InvalidName,
     "pghistory: event_table a.b.c has too many dotted parts", "schema.table"),
    ("pghistory.update_event(snapshot => 'before')", psycopg.errors.InvalidParameterValue,
     "pghistory: snapshot must be 'new' or 'old', not 'before'", "'old'"),
    ("pghistory.insert_event('')", psycopg.errors.InvalidParameterValue,
     "pghistory: a insert tracker needs a label", "pgh_label"),
    ("pghistory.update_event(changed => '{}')", psycopg.errors.InvalidParameterValue,
     'pghistory: changed is empty, so tracker "update" would never fire', "NULL"),
]


@pytest.mark.parametrize("call, error, message, hint", CASES, ids=[c[0][10:60] for c in CASES])
def test_bad_arguments_are_refused_before_anything_is_written(conn, orders, call, error, message, hint):
    with pytest.raises(error) as info:
        conn.execute(f"SELECT {call}")
    if message is not None:
        assert info.value.diag.message_primary == message
    if hint is not None:
        assert hint in (info.value.diag.message_hint or "")
    assert_untouched(conn)


@pytest.mark.parametrize("ddl, kind", [
    ("CREATE VIEW v AS SELECT 1 AS id", "view"),
    ("CREATE MATERIALIZED VIEW v AS SELECT 1 AS id", "materialized view"),
    ("CREATE SEQUENCE v", "sequence"),
])
def test_only_tables_can_be_tracked(conn, ddl, kind):
    conn.execute(ddl)
    with pytest.raises(psycopg.errors.WrongObjectType) as info:
        conn.execute("SELECT pghistory.track('v')")
    assert info.value.diag.message_primary == f"pghistory: public.v is a {kind}, and only tables can be tracked"
    assert value(conn, "SELECT count(*) FROM pghistory.tracked") == 0


def test_missing_table_is_named(conn):
    with pytest.raises(psycopg.errors.UndefinedTable, match='relation "nope" does not exist'):
        conn.execute("SELECT pghistory.track('nope')")


def test_temporary_tables_are_refused(conn):
    conn.execute("CREATE TEMP TABLE scratch (id int)")
    with pytest.raises(psycopg.errors.WrongObjectType, match="is a temporary table"):
        conn.execute("SELECT pghistory.track('scratch')")
    assert value(conn, "SELECT count(*) FROM pghistory.tracked") == 0


def test_only_the_owner_can_track(conn, connect, make_role, orders):
    role = make_role()
    conn.execute(f"GRANT ALL ON orders TO {role}")
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
        connect(user=role).execute("SELECT pghistory.track('orders')")
    assert info.value.diag.message_primary == "pghistory: only the owner of public.orders can track it"
    assert_untouched(conn)


def test_columns_named_like_pghistorys_own_are_refused(conn):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, pgh_label text)")
    with pytest.raises(psycopg.errors.DuplicateColumn) as info:
        conn.execute("SELECT pghistory.track('orders')")
    assert info.value.diag.message_primary == \
        "pghistory: column pgh_label of public.orders clashes with the event table's own pgh_* columns"
    assert info.value.diag.message_hint == "Leave it out with exclude => '{pgh_label}', or rename it."
    assert_untouched(conn)
    conn.execute("SELECT pghistory.track('orders', exclude => '{pgh_label}')")


def test_an_existing_table_that_is_not_an_event_table_is_not_taken_over(conn, orders):
    conn.execute("CREATE TABLE orders_event (id int)")
    with pytest.raises(psycopg.errors.DuplicateTable, match="public.orders_event exists and is not a pghistory event table"):
        conn.execute("SELECT pghistory.track('orders')")
    assert rows(conn, "SELECT * FROM pghistory.tracked") == []
    assert value(conn, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'orders'::regclass") == 0


def test_an_event_table_serves_one_tracked_table(conn, orders):
    conn.execute("CREATE TABLE other (id int PRIMARY KEY, status text)")
    conn.execute("SELECT pghistory.track('orders')")
    with pytest.raises(psycopg.errors.DuplicateTable, match="is the event table of another tracked table"):
        conn.execute("SELECT pghistory.track('other', event_table => 'orders_event')")
    assert value(conn, "SELECT count(*) FROM pghistory.tracked") == 1


def test_a_failed_reconfiguration_keeps_the_old_one_working(conn, orders):
    conn.execute("SELECT pghistory.track('orders')")
    with pytest.raises(psycopg.errors.UndefinedColumn):
        conn.execute("SELECT pghistory.track('orders', fields => '{nope}')")
    conn.execute("INSERT INTO orders VALUES (1, 'new')")
    assert rows(conn, "SELECT pgh_label, id FROM orders_event") == [("insert", 1)]
    assert value(conn, "SELECT fields FROM pghistory.tracking") == ["id", "status"]
