"""Small helpers the SQL tests share: run a query, read an event table."""

from __future__ import annotations

from typing import Any

import psycopg


def rows(conn: psycopg.Connection[Any], query: str, *params: Any) -> list[tuple[Any, ...]]:
    """All rows of a query, as tuples."""
    return conn.execute(query, params or None).fetchall()


def value(conn: psycopg.Connection[Any], query: str, *params: Any) -> Any:
    """The single value a query returns."""
    row = conn.execute(query, params or None).fetchone()
    assert row is not None, query
    return row[0]


def events(conn: psycopg.Connection[Any], event_table: str, columns: str = "pgh_label, pgh_obj_id") -> list[tuple[Any, ...]]:
    """The events of an event table, oldest first."""
    return rows(conn, f"SELECT {columns} FROM {event_table} ORDER BY pgh_id")
