"""pghistory.backfill(): a baseline of the rows a table had before it was tracked."""

from __future__ import annotations

import psycopg
import pytest

from sqlhelpers import events, rows, value


def test_backfill_snapshots_rows_without_events_once(conn):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("INSERT INTO orders VALUES (1, 'old'), (2, 'old')")
    conn.execute("SELECT pghistory.track('orders')")
    conn.execute("INSERT INTO orders VALUES (3, 'new')")
    with conn.transaction():
        ctx = value(conn, """SELECT pghistory.set_context('{"user": "dba"}')""")
        assert value(conn, "SELECT pghistory.backfill('orders')") == 2
    assert value(conn, "SELECT pghistory.backfill('orders', label => 'baseline')") == 0  # idempotent per row
    # (backfilled rows come in no particular order)
    assert sorted(events(conn, "orders_event", "pgh_label, pgh_obj_id, status, pgh_context_id")) == [
        ("backfill", 1, "old", ctx), ("backfill", 2, "old", ctx), ("insert", 3, "new", None)]
    assert value(conn, "SELECT metadata FROM pghistory.context WHERE id = %s", ctx) == {"user": "dba"}
    conn.execute("INSERT INTO orders VALUES (4, 'x')")
    conn.execute("SET pghistory.enabled = off")
    conn.execute("INSERT INTO orders VALUES (5, 'unseen')")
    conn.execute("RESET pghistory.enabled")
    assert value(conn, "SELECT pghistory.backfill('orders', 'baseline')") == 1
    assert events(conn, "orders_event", "pgh_label, pgh_obj_id")[-1] == ("baseline", 5)


def test_backfill_of_tracked_columns_of_a_partitioned_table_in_json_mode(conn):
    conn.execute("CREATE TABLE m (id int PRIMARY KEY, v text, secret text) PARTITION BY RANGE (id)")
    conn.execute("CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (10)")
    conn.execute("CREATE TABLE m2 PARTITION OF m FOR VALUES FROM (10) TO (20)")
    conn.execute("INSERT INTO m VALUES (1, 'a', 's'), (11, 'b', 't')")
    conn.execute("SELECT pghistory.track('m', exclude => '{secret}', context => 'json')")
    with conn.transaction():
        conn.execute("""SELECT pghistory.set_context('{"why": "baseline"}')""")
        assert value(conn, "SELECT pghistory.backfill('m')") == 2
    assert rows(conn, "SELECT pgh_label, pgh_obj_id, v, pgh_context FROM m_event ORDER BY pgh_obj_id") == [
        ("backfill", 1, "a", {"why": "baseline"}), ("backfill", 11, "b", {"why": "baseline"})]
    conn.execute("UPDATE m SET v = 'c' WHERE id = 11")
    assert rows(conn, "SELECT pgh_label, pgh_diff FROM pghistory.events('m', obj_id => '11')") == [
        ("backfill", None), ("update", {"v": ["b", "c"]})]


def test_track_then_backfill_gives_a_complete_past(conn):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("INSERT INTO orders SELECT g, 'old' FROM generate_series(1, 1000) AS g")
    conn.execute("SELECT pghistory.track('orders')")
    assert value(conn, "SELECT pghistory.backfill('orders')") == 1000
    assert value(conn, "SELECT count(*) FROM pghistory.as_of(NULL::orders, now())") == 1000


def test_backfill_refuses(conn, connect, make_role):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("CREATE TABLE nokey (status text)")
    conn.execute("SELECT pghistory.track('orders'), pghistory.track('nokey')")
    cases = [
        ("SELECT pghistory.backfill('nokey')", "0A000",
         "pghistory: public.nokey has no primary key, so backfill() cannot tell its rows apart"),
        ("SELECT pghistory.backfill('orders', 'update')", "22023",
         "pghistory: label 'update' is that of a change (update tracker), not of a baseline"),
        ("SELECT pghistory.backfill('orders', NULL)", "22023", "pghistory: backfill() needs a label, not NULL"),
        ("SELECT pghistory.backfill('pghistory.context')", "42704", "pghistory: pghistory.context is not tracked"),
    ]
    for query, state, message in cases:
        with pytest.raises(psycopg.Error) as info:
            conn.execute(query)
        assert (info.value.sqlstate, info.value.diag.message_primary) == (state, message)
    role = make_role()
    conn.execute(f"GRANT SELECT ON orders, orders_event TO {role}")
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
        connect(user=role).execute("SELECT pghistory.backfill('orders')")
    assert info.value.diag.message_primary == "pghistory: permission denied to backfill public.orders"


def test_track_with_backfill_records_the_baseline_as_it_starts(conn):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("INSERT INTO orders VALUES (1, 'old'), (2, 'old')")
    conn.execute("SELECT pghistory.track('orders', backfill => true)")
    assert sorted(events(conn, "orders_event")) == [("backfill", 1), ("backfill", 2)]
    conn.execute("SET pghistory.enabled = off")
    conn.execute("INSERT INTO orders VALUES (3, 'unseen')")
    conn.execute("RESET pghistory.enabled")
    conn.execute("SELECT pghistory.track('orders', backfill => true)")  # same configuration: backfills still
    conn.execute("SELECT pghistory.track('orders')")
    assert sorted(events(conn, "orders_event")) == [("backfill", 1), ("backfill", 2), ("backfill", 3)]
    conn.execute("CREATE TABLE refused (id int PRIMARY KEY)")
    conn.execute("INSERT INTO refused VALUES (1)")
    with pytest.raises(psycopg.errors.UndefinedColumn):
        conn.execute("SELECT pghistory.track('refused', fields => '{nope}', backfill => true)")
    assert value(conn, "SELECT to_regclass('refused_event')") is None
