"""Events in the order they were written, across tables (issue 14, "Order and transaction across
tables"): one sequence, pghistory.event_id_seq, numbers the events of every event table, so
pgh_id orders them; events() and aggregate_events put the events of one transaction in that
order, and pgh_xact (the transaction that wrote each event) groups them. What keeps the numbers unique: dump/restore (test_dump_restore.py), reset_identities()
after a failover (here and test_replication.py), event tables numbered their own way."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from sqlhelpers import rows, value


@pytest.fixture
def shop(conn: psycopg.Connection) -> psycopg.Connection:
    """orders (statement level), items (row level) and lines (partitioned, composite key), tracked."""
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    conn.execute("CREATE TABLE items (id int PRIMARY KEY, qty int)")
    conn.execute("CREATE TABLE lines (id int, at int, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)")
    conn.execute("CREATE TABLE lines_1 PARTITION OF lines FOR VALUES FROM (0) TO (100)")
    conn.execute("SELECT pghistory.track('orders'), pghistory.track('items', level => 'row'),"
                 " pghistory.track('lines', partition_by => interval '1 month')")
    return conn


def test_one_transaction_across_three_tables_comes_back_in_written_order(shop):
    c = shop
    c.execute("INSERT INTO items VALUES (100, 0)")  # an earlier transaction, and an older object
    with c.transaction():
        c.execute("INSERT INTO orders VALUES (1, 'new')")
        c.execute("INSERT INTO lines VALUES (1, 1, 'a')")
        c.execute("UPDATE items SET qty = 1 WHERE id = 100")
        c.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
        c.execute("INSERT INTO items VALUES (101, 5)")
        c.execute("UPDATE lines SET v = 'b'")
    written = [("public.items_event", "insert", "100"),
               ("public.orders_event", "insert", "1"), ("public.lines_event", "insert", "[1, 1]"),
               ("public.items_event", "update", "100"), ("public.orders_event", "update", "1"),
               ("public.items_event", "insert", "101"), ("public.lines_event", "update", "[1, 1]")]
    assert rows(c, "SELECT pgh_model, pgh_label, pgh_obj_id FROM pghistory.aggregate_events") == written
    assert rows(c, "SELECT pgh_model, pgh_label, pgh_obj_id FROM pghistory.events()") == written
    # pgh_id alone is that order, and no two events of any table share one
    assert rows(c, "SELECT pgh_model, pgh_label, pgh_obj_id FROM pghistory.aggregate_events ORDER BY pgh_id") == written
    assert value(c, "SELECT array_agg(pgh_id ORDER BY pgh_id) FROM pghistory.aggregate_events") == list(range(1, 8))


def test_pgh_xact_groups_the_events_of_one_transaction_across_tables(shop):
    c = shop
    c.execute("SELECT pghistory.track('orders', trackers => ARRAY[pghistory.insert_event(),"
              " pghistory.manual_event('checked')])")
    c.execute("INSERT INTO items VALUES (100, 0)")
    with c.transaction():
        c.execute("INSERT INTO orders VALUES (1, 'new')")
        c.execute("INSERT INTO lines VALUES (1, 1, 'a')")
        c.execute("UPDATE items SET qty = 1 WHERE id = 100")
        c.execute("SELECT pghistory.create_event('orders', 1, 'checked')")
        inside = value(c, "SELECT pg_current_xact_id()::text")
    with c.transaction():  # two transactions starting in one statement's time are still two
        c.execute("TRUNCATE items")
        later = value(c, "SELECT pg_current_xact_id()::text")
    got = rows(c, "SELECT pgh_model, pgh_label, pgh_xact::text FROM pghistory.aggregate_events"
                  " WHERE pgh_xact IN (%s::xid8, %s::xid8)", inside, later)
    assert got == [("public.orders_event", "insert", inside), ("public.lines_event", "insert", inside),
                   ("public.items_event", "update", inside), ("public.orders_event", "checked", inside),
                   ("public.items_event", "truncate", later)]
    # every event has one, events() shows the event table's own, and nothing indexes it
    assert value(c, "SELECT count(*) FROM pghistory.aggregate_events WHERE pgh_xact IS NULL") == 0
    assert rows(c, "SELECT e.pgh_xact = o.pgh_xact FROM pghistory.events('orders') AS e"
                   " JOIN orders_event AS o USING (pgh_id)") == [(True,), (True,)]
    assert value(c, "SELECT count(*) FROM pg_index AS i JOIN pg_attribute AS a ON a.attrelid = i.indrelid"
                    " AND a.attnum = ANY (i.indkey) WHERE a.attname = 'pgh_xact'") == 0


def test_pgh_xact_cannot_be_forged_by_a_writer(conn, make_role, connect):
    conn.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    conn.execute("SELECT pghistory.track('notes')")
    writer = make_role("writer")
    conn.execute(sql.SQL("GRANT INSERT, UPDATE ON notes TO {}").format(sql.Identifier(writer)))
    with connect(user=writer) as w, w.transaction():
        w.execute("SET LOCAL pghistory.context_id = '00000000-0000-4000-8000-000000000001'")
        w.execute("INSERT INTO notes VALUES (1, 'a')")
        mine = value(w, "SELECT pg_current_xact_id()::text")
    assert value(conn, "SELECT pgh_xact::text FROM notes_event") == mine
    with pytest.raises(psycopg.errors.InsufficientPrivilege), connect(user=writer) as w:
        w.execute("UPDATE notes_event SET pgh_xact = '1'")


def test_every_event_table_takes_its_pgh_id_from_the_shared_sequence(shop):
    defaults = rows(shop, """
        SELECT c.relname::text, pg_get_expr(d.adbin, d.adrelid), a.attidentity::text
          FROM pg_class AS c
          JOIN pg_attribute AS a ON a.attrelid = c.oid AND a.attname = 'pgh_id'
          LEFT JOIN pg_attrdef AS d ON d.adrelid = c.oid AND d.adnum = a.attnum
         WHERE c.relname IN ('orders_event', 'items_event', 'lines_event') ORDER BY 1""")
    assert defaults == [(name, "nextval('pghistory.event_id_seq'::regclass)", "")
                        for name in ("items_event", "lines_event", "orders_event")]
    # the primary key of a plain event table is packed full: its pgh_ids only grow
    assert value(shop, "SELECT reloptions FROM pg_class WHERE oid = 'orders_event_pkey'::regclass") == [
        "fillfactor=100"]


def test_a_table_owner_writes_through_the_shared_sequence(conn, make_role, connect):
    owner = make_role("pgh_owner")
    conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public, pghistory TO {}").format(sql.Identifier(owner)))
    o = connect(owner)
    o.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    o.execute("SELECT pghistory.track('notes')")
    o.execute("INSERT INTO notes VALUES (1, 'x')")
    assert rows(o, "SELECT pgh_id, pgh_label FROM notes_event") == [(1, "insert")]
    # drawing numbers is all anyone may do with the sequence
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        o.execute("SELECT setval('pghistory.event_id_seq', 1000)")


def test_reset_identities_moves_the_shared_sequence_past_every_table(shop, make_role, connect):
    c = shop
    c.execute("INSERT INTO orders VALUES (1, 'new')")
    c.execute("INSERT INTO items VALUES (1, 1)")
    # what a logical-replication subscriber holds after a failover: rows, but the sequence where it was
    with c.transaction():
        c.execute("INSERT INTO orders_event (pgh_id, pgh_label, pgh_obj_id, id, status) VALUES (40, 'insert', 2, 2, 'x')")
        c.execute("INSERT INTO items_event (pgh_id, pgh_label, pgh_obj_id, id, qty) VALUES (41, 'insert', 2, 2, 2)")
        c.execute("SELECT setval('pghistory.event_id_seq', 39)")
    with pytest.raises(psycopg.errors.UniqueViolation, match="orders_event_pkey"):
        c.execute("INSERT INTO orders VALUES (3, 'new')")  # numbered 40, which orders_event has
    assert rows(c, "SELECT event_table::text, next_pgh_id FROM pghistory.reset_identities() ORDER BY 1") == [
        ("items_event", 42)]
    assert rows(c, "SELECT * FROM pghistory.reset_identities()") == []  # never back, nothing twice
    c.execute("INSERT INTO orders VALUES (3, 'new')")
    assert value(c, "SELECT max(pgh_id) FROM orders_event") == 42


def test_a_table_owner_moves_the_shared_sequence_but_never_past_two_to_the_62(conn, make_role, connect):
    owner = make_role("pgh_owner")
    conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public, pghistory TO {}").format(sql.Identifier(owner)))
    o = connect(owner)
    o.execute("CREATE TABLE notes (id int PRIMARY KEY, body text)")
    o.execute("SELECT pghistory.track('notes')")
    o.execute("INSERT INTO notes_event (pgh_id, pgh_label, pgh_obj_id, id) VALUES (500, 'insert', 5, 5)")
    assert rows(o, "SELECT event_table::text, next_pgh_id FROM pghistory.reset_identities()") == [("notes_event", 501)]
    o.execute("INSERT INTO notes_event (pgh_id, pgh_label, pgh_obj_id, id) VALUES (4611686018427387905, 'insert', 6, 6)")
    with pytest.raises(psycopg.errors.NumericValueOutOfRange, match="not moved past 2\\^62"):
        o.execute("SELECT * FROM pghistory.reset_identities()")
    assert value(conn, "SELECT last_value FROM pghistory.event_id_seq") == 500


def test_an_event_table_numbered_its_own_way_joins_the_sequence_when_tracked_again(shop):
    c = shop
    c.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'new')")
    c.execute("SELECT pghistory.untrack('orders')")
    # as 0.1.0 made it: an identity of its own, ahead of the shared sequence
    c.execute("ALTER TABLE orders_event ALTER COLUMN pgh_id DROP DEFAULT")
    c.execute("ALTER TABLE orders_event ALTER COLUMN pgh_id ADD GENERATED BY DEFAULT AS IDENTITY (START 90)")
    with c.transaction():
        c.execute("SET LOCAL pghistory.allow_history_changes = on")
        c.execute("INSERT INTO orders_event (pgh_label, pgh_obj_id, id, status) VALUES ('insert', 9, 9, 'x')")
    c.execute("SELECT pghistory.track('orders')")
    assert value(c, "SELECT pg_get_serial_sequence('orders_event', 'pgh_id')") is None
    c.execute("INSERT INTO items VALUES (1, 1)")
    c.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
    assert rows(c, "SELECT pgh_model, pgh_id FROM pghistory.aggregate_events WHERE pgh_id > 90 ORDER BY pgh_id") == [
        ("public.items_event", 91), ("public.orders_event", 92)]
