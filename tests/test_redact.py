"""Erasure (issue 15): redact() replaces an object's values by NULL in all its events, erases
context metadata keys, records itself, leaves other objects and other columns' diffs intact,
and is refused for roles that do not own the event table."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from psycopg import sql

from sqlhelpers import rows, value


@pytest.fixture(params=["plain", "partitioned"])
def customers(request: pytest.FixtureRequest, conn: psycopg.Connection[Any]) -> psycopg.Connection[Any]:
    c = conn
    c.execute("CREATE TABLE customers (id int PRIMARY KEY, email text, phone text, tier text)")
    c.execute("SELECT pghistory.track('customers'"
              + (", partition_by => interval '1 month')" if request.param == "partitioned" else ")"))
    with c.transaction():
        c.execute("""SELECT pghistory.set_context('{"user": "alice", "ip": "10.0.0.1"}')""")
        c.execute("INSERT INTO customers VALUES (1, 'a@x', '111', 'free'), (2, 'b@x', '222', 'free')")
    c.execute("UPDATE customers SET tier = 'gold', email = 'a2@x' WHERE id = 1")
    return c


def test_redact_erases_an_objects_values_and_keeps_the_rest(customers):
    c = customers
    before = value(c, "SELECT now()")
    assert value(c, "SELECT pghistory.redact('customers', 1, columns => '{email,phone}')") == 2
    assert rows(c, "SELECT pgh_label, id, email, phone, tier FROM customers_event ORDER BY pgh_id") == [
        ("insert", 1, None, None, "free"), ("insert", 2, "b@x", "222", "free"), ("update", 1, None, None, "gold")]
    # diffs of the other columns stay; the redacted ones no longer say anything
    assert rows(c, "SELECT pgh_label, pgh_diff FROM pghistory.events('customers', 1) ORDER BY pgh_id") == [
        ("insert", None), ("update", {"tier": ["free", "gold"]})]
    # time travel to before the update reads the redacted history (the live row is the application's)
    at = value(c, "SELECT pgh_created_at - interval '1 microsecond' FROM customers_event WHERE pgh_label = 'update'")
    assert rows(c, "SELECT id, email, phone, tier FROM pghistory.as_of(NULL::customers, %s) ORDER BY id", at) == [
        (1, None, None, "free"), (2, "b@x", "222", "free")]
    assert rows(c, """SELECT event_table::text, obj_id, columns, context_keys, events, redacted_by::text,
                             redacted_at >= %s FROM pghistory.redaction""", before) == [
        ("customers_event", "1", ["email", "phone"], [], 2, "postgres", True)]


def test_redact_defaults_to_every_tracked_column_but_the_key(customers):
    c = customers
    assert value(c, "SELECT pghistory.redact('customers', '2')") == 1
    assert rows(c, "SELECT id, email, phone, tier FROM customers_event WHERE pgh_obj_id = 2") == [(2, None, None, None)]
    assert value(c, "SELECT columns FROM pghistory.redaction") == ["email", "phone", "tier"]


def test_redact_erases_context_keys(customers):
    c = customers
    c.execute("SELECT pghistory.redact('customers', 1, columns => '{email}', context_keys => '{ip}')")
    assert rows(c, "SELECT metadata FROM pghistory.context") == [({"user": "alice"},)]
    assert value(c, "SELECT context_keys FROM pghistory.redaction") == ["ip"]


def test_redact_erases_context_keys_of_json_events(conn):
    c = conn
    c.execute("CREATE TABLE customers (id int PRIMARY KEY, email text)")
    c.execute("SELECT pghistory.track('customers', context => 'json')")
    with c.transaction():
        c.execute("""SELECT pghistory.set_context('{"user": "alice", "ip": "10.0.0.1"}')""")
        c.execute("INSERT INTO customers VALUES (1, 'a@x'), (2, 'b@x')")
    c.execute("SELECT pghistory.redact('customers', 1, context_keys => '{ip}')")
    assert rows(c, "SELECT id, email, pgh_context FROM customers_event ORDER BY pgh_id") == [
        (1, None, {"user": "alice"}), (2, "b@x", {"user": "alice", "ip": "10.0.0.1"})]


def test_bad_columns_are_refused_before_anything_is_written(customers):
    c = customers
    for columns, shown in [("{nope}", "nope"), ("{pgh_label}", "pgh_label"), ("{id}", "id")]:
        with pytest.raises(psycopg.errors.UndefinedColumn,
                           match=rf"^pghistory: public\.customers_event cannot redact column {shown}\n"):
            c.execute("SELECT pghistory.redact('customers', 1, columns => %s)", (columns,))
    assert value(c, "SELECT count(*) FROM customers_event WHERE email IS NULL") == 0
    assert value(c, "SELECT count(*) FROM pghistory.redaction") == 0


def test_only_the_event_tables_owner_redacts(customers, make_role, connect):
    c = customers
    owner, writer = make_role("pgh_owner"), make_role("pgh_writer")
    c.execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON customers, customers_event TO {}").format(
        sql.Identifier(writer)))
    with pytest.raises(psycopg.errors.InsufficientPrivilege,
                       match=r"^pghistory: only the owner of public\.customers_event can redact its history\n"):
        connect(writer).execute("SELECT pghistory.redact('customers', 1)")
    assert value(c, "SELECT count(*) FROM customers_event WHERE email IS NULL") == 0
    # the owner may, but not the context rows, which are not theirs
    c.execute(sql.SQL("ALTER TABLE customers OWNER TO {}").format(sql.Identifier(owner)))
    c.execute(sql.SQL("ALTER TABLE customers_event OWNER TO {}").format(sql.Identifier(owner)))
    o = connect(owner)
    with pytest.raises(psycopg.errors.InsufficientPrivilege,
                       match=r"^pghistory: the context keys of public\.customers_event live in pghistory\.context"):
        o.execute("SELECT pghistory.redact('customers', 1, context_keys => '{ip}')")
    assert value(o, "SELECT pghistory.redact('customers', 1, columns => '{phone}')") == 2
    assert rows(o, "SELECT redacted_by::text, columns FROM pghistory.redaction") == [(owner, ["phone"])]
    assert rows(connect(writer), "SELECT * FROM pghistory.redaction") == []


def test_the_definer_writers_of_policies_and_redactions_check_the_session_user(customers, make_role, connect):
    # _record_redaction() and _set_policy() write pghistory's own tables as the extension's owner
    # and are callable by everyone: each refuses a session user who does not own the event table
    c = customers
    w = connect(make_role("pgh_writer"))
    for call, action in [
            ("SELECT pghistory._record_redaction('customers_event', '1', '{email}', NULL, 2)",
             "record a redaction of its history"),
            ("SELECT pghistory._set_policy('customers_event', NULL, true, interval '1 day', false)",
             "change its partitioning or retention")]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match=rf"^pghistory: only the owner of public\.customers_event can {action}\n"):
            w.execute(call)
    assert value(c, "SELECT count(*) FROM pghistory.redaction") == 0
    assert value(c, "SELECT count(*) FROM pghistory.history_policy WHERE keep IS NOT NULL") == 0
