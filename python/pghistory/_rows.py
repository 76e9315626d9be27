"""Typed rows returned by the browsing functions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class Event:
    """One event, as ``pghistory.events()`` and ``pghistory.aggregate_events`` show it.

    Attributes mirror the SQL columns: ``pgh_data`` is the snapshot of the
    tracked row, ``pgh_diff`` maps each column that changed since the
    object's previous event to ``[old, new]`` (``None`` for its first event),
    ``pgh_context`` is the context's metadata (``None`` without a context).
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
)
