"""Typed rows returned by the browsing functions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import sql


@dataclass(frozen=True)
class Event:
    """One event, as ``pghistory.events()`` and ``pghistory.aggregate_events`` show it.

    Attributes mirror the SQL columns (README, "Browsing history").
    ``pgh_data`` is the tracked row as the event recorded it: after the
    change for inserts, updates and manual events, before it for
    ``snapshot="old"`` updates, deletes and truncates. ``pgh_diff`` is the
    change the event stands for, ``{column: [before, after]}`` for each
    column whose value differs (extension/diffs.sql): ``None`` for an
    insert; for an update or manual event, from the object's previous event
    to this one (``None`` when there is none, or it was a delete or
    truncate); for an old-snapshot update, from this event to the object's
    next one (``None`` until there is one); ``{}`` for a delete or truncate.
    Numbers in both are `int` or, with a fraction or an exponent,
    `decimal.Decimal` exactly as stored. ``pgh_context`` is the context's
    metadata (``None`` without a context). ``pgh_xact`` is the transaction
    that wrote the event (``pg_current_xact_id()``, as an `int`): events
    with the same one were written together. ``None`` for events recorded
    before 0.2.0.
    """

    pgh_slug: str
    pgh_model: str
    pgh_id: int
    pgh_created_at: dt.datetime
    pgh_label: str
    pgh_data: dict[str, Any]
    pgh_diff: dict[str, list[Any]] | None
    pgh_context_id: UUID | None
    pgh_context: dict[str, Any] | None
    pgh_obj_model: str
    pgh_obj_id: str | None
    pgh_xact: int | None


#: The columns read from ``pghistory.events()``, in `Event`'s field order.
EVENT_COLUMNS = (
    "pgh_slug",
    "pgh_model",
    "pgh_id",
    "pgh_created_at",
    "pgh_label",
    "pgh_data",
    "pgh_diff",
    "pgh_context_id",
    "pgh_context",
    "pgh_obj_model",
    "pgh_obj_id",
    "pgh_xact",
)


def event_column(column: str, alias: str) -> sql.Composable:
    """How a column of `EVENT_COLUMNS` is selected from *alias*: xid8, which psycopg
    has no loader for, as a bigint (every transaction id fits one)."""
    selected = sql.SQL("{}.{}").format(sql.Identifier(alias), sql.Identifier(column))
    return selected + sql.SQL("::text::bigint") if column == "pgh_xact" else selected
