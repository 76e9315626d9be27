"""Logical replication and failover (issue 15): a tracked table, its event table and the context
table published to a subscriber arrive exactly, nothing recorded twice; after a failover to the
subscriber, tracked writes fail on the event table's key until pghistory.reset_identities()."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

import harness
from sqlhelpers import rows, value

SCHEMA = "CREATE TABLE orders (id int PRIMARY KEY, status text); SELECT pghistory.track('orders');"


@pytest.fixture
def logical(pg: harness.Server) -> Iterator[harness.Server]:
    """A server of the same major with wal_level = logical."""
    with harness.Server(pg.build, settings={"wal_level": "logical", "max_replication_slots": 4,
                                             "max_wal_senders": 4}) as server:
        yield server


def wait_for(check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "replication did not catch up"
        time.sleep(0.2)


def test_history_replicates_exactly_and_failover_needs_reset_identities(logical):
    with logical.connect() as c:
        c.autocommit = True
        for name in ["pub", "sub"]:
            c.execute(f"CREATE DATABASE {name}")
    with psycopg.connect(logical.dsn("pub"), autocommit=True) as pub, \
            psycopg.connect(logical.dsn("sub"), autocommit=True) as sub:
        for c in (pub, sub):
            c.execute("SET client_min_messages = warning")
            c.execute("CREATE EXTENSION pghistory")
            c.execute(SCHEMA)
        pub.execute("CREATE PUBLICATION history FOR TABLE orders, orders_event, pghistory.context")
        pub.execute("SELECT pg_create_logical_replication_slot('history', 'pgoutput')")
        sub.execute(f"CREATE SUBSCRIPTION history CONNECTION '{logical.dsn('pub')}' PUBLICATION history "
                    "WITH (create_slot = false, slot_name = 'history')")
        try:
            with pub.transaction():
                pub.execute("""SELECT pghistory.set_context('{"user": "alice"}')""")
                pub.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'new')")
            pub.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
            history = "SELECT pgh_id, pgh_label, pgh_obj_id, pgh_context_id, status FROM orders_event ORDER BY 1"
            contexts = "SELECT id, metadata FROM pghistory.context"
            # (each table's initial sync catches up on its own, so one table can be caught up before another)
            wait_for(lambda: rows(sub, history) == rows(pub, history) and len(rows(sub, history)) == 3
                     and rows(sub, contexts) == rows(pub, contexts))
            assert len(rows(sub, contexts)) == 1
            assert rows(sub, "SELECT id, status FROM orders ORDER BY id") == [(1, "paid"), (2, "new")]
        finally:
            sub.execute("ALTER SUBSCRIPTION history DISABLE")
            sub.execute("ALTER SUBSCRIPTION history SET (slot_name = NONE)")
            sub.execute("DROP SUBSCRIPTION history")
            # DISABLE stops the apply worker; its walsender on the publisher lets go of the slot
            # a moment later, and a slot still in use cannot be dropped
            wait_for(lambda: not value(
                pub, "SELECT active FROM pg_replication_slots WHERE slot_name = 'history'"))
            pub.execute("SELECT pg_drop_replication_slot('history')")
        # failover: the subscriber takes writes; its pgh_id identity never moved
        with pytest.raises(psycopg.errors.UniqueViolation, match="orders_event_pkey"):
            sub.execute("UPDATE orders SET status = 'shipped' WHERE id = 2")
        assert rows(sub, "SELECT event_table::text, next_pgh_id FROM pghistory.reset_identities()") == [
            ("orders_event", 4)]
        sub.execute("UPDATE orders SET status = 'shipped' WHERE id = 2")
        assert value(sub, "SELECT max(pgh_id) FROM orders_event") == 4
