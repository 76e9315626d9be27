"""Trackers: which operations of a table record an event, under which label.

Each class mirrors one constructor of the SQL API (``pghistory.insert_event()``
and so on) with the same parameters and defaults, and renders to a call of
it; `pghistory.track()` takes a list of them::

    pghistory.track(conn, "orders", trackers=[
        pghistory.InsertEvent(),
        pghistory.UpdateEvent("status_changed", changed=["status"]),
        pghistory.DeleteEvent(),
        pghistory.ManualEvent("checkout"),
    ])

A ``condition`` is an SQL boolean expression over ``OLD`` and ``NEW``, as in
a trigger's ``WHEN`` clause (``"NEW.amount > 100"``): it is SQL, written by
the programmer, never by an end user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Union

from psycopg import sql


def _names(value: Sequence[str] | None, what: str) -> tuple[str, ...] | None:
    """A list of column names as a tuple (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError(f"{what} must be a list of column names, such as [{value!r}], not a str")
    return tuple(value)


def _call(function: str, args: dict[str, tuple[str, Any]]) -> tuple[sql.Composable, list[Any]]:
    """``pghistory.<function>(name => %s::type, ...)`` and its parameters."""
    parts = [
        sql.SQL("{} => {}::{}").format(sql.Identifier(name), sql.Placeholder(), sql.SQL(type_))
        for name, (type_, _) in args.items()
    ]
    query = sql.SQL("pghistory.{}({})").format(sql.Identifier(function), sql.SQL(", ").join(parts))
    return query, [value for _, value in args.values()]


@dataclass(frozen=True)
class InsertEvent:
    """After INSERT: stores the new row (``pghistory.insert_event()``)."""

    label: str = "insert"
    condition: str | None = None

    def _sql(self) -> tuple[sql.Composable, list[Any]]:
        return _call("insert_event", {"label": ("text", self.label),
                                      "condition": ("text", self.condition)})


@dataclass(frozen=True)
class UpdateEvent:
    """After UPDATE (``pghistory.update_event()``).

    Records only when a tracked column changed, or, with *changed*, one of
    those columns. *snapshot* is ``"new"`` (the row after the update) or
    ``"old"`` (before it).
    """

    label: str = "update"
    changed: Sequence[str] | None = None
    condition: str | None = None
    snapshot: Literal["new", "old"] = "new"

    def __post_init__(self) -> None:
        object.__setattr__(self, "changed", _names(self.changed, "changed"))

    def _sql(self) -> tuple[sql.Composable, list[Any]]:
        changed = list(self.changed) if self.changed is not None else None
        return _call("update_event", {"label": ("text", self.label),
                                      "changed": ("text[]", changed),
                                      "condition": ("text", self.condition),
                                      "snapshot": ("text", self.snapshot)})


@dataclass(frozen=True)
class DeleteEvent:
    """After DELETE: stores the deleted row (``pghistory.delete_event()``)."""

    label: str = "delete"
    condition: str | None = None

    def _sql(self) -> tuple[sql.Composable, list[Any]]:
        return _call("delete_event", {"label": ("text", self.label),
                                      "condition": ("text", self.condition)})


@dataclass(frozen=True)
class TruncateEvent:
    """TRUNCATE: stores every removed row (``pghistory.truncate_event()``)."""

    label: str = "truncate"

    def _sql(self) -> tuple[sql.Composable, list[Any]]:
        return _call("truncate_event", {"label": ("text", self.label)})


@dataclass(frozen=True)
class ManualEvent:
    """Recorded only by `pghistory.create_event()` (``pghistory.manual_event()``)."""

    label: str

    def _sql(self) -> tuple[sql.Composable, list[Any]]:
        return _call("manual_event", {"label": ("text", self.label)})


#: Any of the tracker classes.
Tracker = Union[InsertEvent, UpdateEvent, DeleteEvent, TruncateEvent, ManualEvent]
TRACKER_TYPES = (InsertEvent, UpdateEvent, DeleteEvent, TruncateEvent, ManualEvent)


def trackers_sql(trackers: Sequence[Tracker]) -> tuple[sql.Composable, list[Any]]:
    """``ARRAY[...]::pghistory.tracker[]`` for *trackers*, and its parameters."""
    parts: list[sql.Composable] = []
    params: list[Any] = []
    for tracker in trackers:
        if not isinstance(tracker, TRACKER_TYPES):
            raise TypeError(
                "trackers must be pghistory.InsertEvent(), UpdateEvent(), DeleteEvent(), "
                f"TruncateEvent() or ManualEvent() objects, not {type(tracker).__qualname__}"
            )
        part, part_params = tracker._sql()
        parts.append(part)
        params += part_params
    query = sql.SQL("ARRAY[{}]::pghistory.tracker[]").format(sql.SQL(", ").join(parts))
    return query, params
