"""Helpers shared by the Python binding's tests (tests/test_python_*.py).

The connection under test is often a non-autocommit one whose transaction
state is the point of the test; these helpers read through a separate
observer connection (the autocommit ``conn`` fixture) where they can, and
leave the tested connection's transaction state as they found it where they
must read from it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import psycopg
from psycopg.pq import TransactionStatus

import pghistory as pgh

SETTINGS_SQL = (
    "SELECT current_setting('pghistory.context_id', true),"
    " current_setting('pghistory.context_metadata', true)"
)


def settings(conn: psycopg.Connection[Any]) -> tuple[str | None, str | None]:
    """The context settings as *conn* sees them now (its state left as found)."""
    idle = conn.info.transaction_status == TransactionStatus.IDLE
    with conn.cursor(row_factory=psycopg.rows.tuple_row) as cur:
        cur.execute(SETTINGS_SQL)
        row = cur.fetchone()
    if idle and not conn.autocommit:
        conn.rollback()
    assert row is not None
    return row[0], row[1]


def enabled(conn: psycopg.Connection[Any]) -> str | None:
    """pghistory.enabled as *conn* sees it now (its state left as found)."""
    idle = conn.info.transaction_status == TransactionStatus.IDLE
    row = conn.execute("SELECT current_setting('pghistory.enabled', true)").fetchone()
    if idle and not conn.autocommit:
        conn.rollback()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def make_orders(conn: psycopg.Connection[Any], **track_args: Any) -> None:
    """Table orders(id int primary key, status text), tracked."""
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
    pgh.track(conn, "orders", **track_args)


def history(observer: psycopg.Connection[Any], table: str = "orders_event") -> list[tuple[Any, ...]]:
    """(pgh_label, id, status, pgh_context_id) of every event, in order."""
    return observer.execute(
        f"SELECT pgh_label, id, status, pgh_context_id FROM {table} ORDER BY pgh_id"
    ).fetchall()


def contexts(observer: psycopg.Connection[Any]) -> dict[UUID, Any]:
    """id -> metadata of every row of pghistory.context."""
    return dict(observer.execute("SELECT id, metadata FROM pghistory.context").fetchall())
