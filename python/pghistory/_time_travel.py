"""Time travel and undo: the wrappers of backfill, as_of, changes, blame and revert_context.

Written once, as core generators (see `._ops`), with a twin for each
connection kind (``pghistory.as_of``, ``pghistory.aio.as_of``); each runs in
the caller's transaction.

``as_of`` returns the table's rows as dicts (column name to value, in the
table's column order, with psycopg's usual Python types), or as instances
of ``row`` (``row=Order`` calls ``Order(**columns)``: a dataclass, a
NamedTuple, a pydantic model). JSON values (diffs, blamed values) come back
with exact numbers, as `pghistory.events` returns them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from psycopg import sql

from ._browsing import _json
from ._calls import AnyConn, ObjId, obj_id_text, quoting_context, scalar
from ._names import TableName, identifier, quoted
from ._ops import Execute, Gen, Row, sync_twin


@dataclass(frozen=True)
class Change:
    """One object's net change between two moments (``pghistory.changes()``).

    ``change`` is ``"created"``, ``"updated"`` or ``"deleted"``; ``diff`` maps
    each column whose value differs to ``[at since, at until]``.
    """

    obj_id: str
    change: str
    diff: dict[str, list[Any]]


@dataclass(frozen=True)
class Blame:
    """One column of one row and the event that last changed it (``pghistory.blame()``).

    The ``pgh_*`` attributes are ``None`` when no event accounts for the column.
    """

    column: str
    value: Any
    pgh_id: int | None
    pgh_created_at: dt.datetime | None
    pgh_label: str | None
    pgh_context_id: UUID | None
    pgh_context: dict[str, Any] | None


@dataclass(frozen=True)
class RevertStep:
    """One step of ``pghistory.revert_context()``'s plan: ``action`` is delete, insert or update."""

    event_table: str
    obj_id: str
    action: str


def backfill_gen(conn: AnyConn, table: TableName, *, label: str | None = None) -> Gen[int]:
    """Snapshot every row of *table* that has no event yet (``pghistory.backfill()``); return how many.

    *label* defaults to ``"backfill"``. Running it again records only rows
    still without events.
    """
    count: int = yield from scalar(Execute(
        sql.SQL("SELECT pghistory.backfill(%s::regclass, coalesce(%s::text, 'backfill'))"),
        [quoted(table, quoting_context(conn)), label],
    ))
    return count


def as_of_gen(
    conn: AnyConn, table: TableName, at: dt.datetime, obj_id: ObjId | None = None,
    *, row: Callable[..., Any] | None = None,
) -> Gen[list[Any]]:
    """The rows of *table* as they were at *at* (``pghistory.as_of()``), or only row *obj_id*.

    Returns dicts, or ``row(**columns)`` for each row when *row* is given.
    """
    if not isinstance(at, dt.datetime):
        raise TypeError(f"at must be a datetime, not {type(at).__qualname__}")
    # as_of() is polymorphic: the table's row type must be in the SQL text,
    # as a quoted identifier (the name goes as a parameter for the columns)
    row_type = identifier(table)
    names_rows: list[Row] = yield Execute(
        sql.SQL(
            "SELECT array_agg(attname::text ORDER BY attnum) FROM pg_catalog.pg_attribute"
            " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped"
        ),
        [quoted(table, quoting_context(conn))],
    )
    if obj_id is None:
        query = Execute(sql.SQL("SELECT * FROM pghistory.as_of(NULL::{}, %s::timestamptz)").format(row_type), [at])
    else:
        query = Execute(
            sql.SQL("SELECT * FROM pghistory.as_of(NULL::{}, %s::timestamptz, %s::text)").format(row_type),
            [at, obj_id_text(obj_id)],
        )
    rows: list[Row] = yield query
    names: list[str] = names_rows[0][0]
    dicts = [dict(zip(names, r)) for r in rows]
    return dicts if row is None else [row(**d) for d in dicts]


def changes_gen(
    conn: AnyConn, table: TableName, since: dt.datetime | None = None, until: dt.datetime | None = None
) -> Gen[list[Change]]:
    """What changed in *table* between *since* (inclusive) and *until* (exclusive), per object.

    ``pghistory.changes()``: ``None`` bounds mean from the beginning, up to now.
    """
    rows: list[Row] = yield Execute(
        sql.SQL(
            "SELECT obj_id, change, diff::text"
            " FROM pghistory.changes(%s::regclass, %s::timestamptz, %s::timestamptz)"
        ),
        [quoted(table, quoting_context(conn)), since, until],
    )
    return [Change(r[0], r[1], _json(r[2])) for r in rows]


def blame_gen(conn: AnyConn, table: TableName, obj_id: ObjId) -> Gen[list[Blame]]:
    """For each tracked column of row *obj_id*: its value and the event that last changed it."""
    rows: list[Row] = yield Execute(
        sql.SQL(
            'SELECT "column", value::text, pgh_id, pgh_created_at, pgh_label, pgh_context_id, pgh_context'
            " FROM pghistory.blame(%s::regclass, %s::text)"
        ),
        [quoted(table, quoting_context(conn)), obj_id_text(obj_id)],
    )
    return [Blame(r[0], _json(r[1]), *r[2:]) for r in rows]


def revert_context_gen(
    conn: AnyConn, context_id: UUID | str, *, dry_run: bool = False, override: bool = False
) -> Gen[list[RevertStep]]:
    """Take back everything written under *context_id* (``pghistory.revert_context()``); return the plan.

    With *dry_run*, nothing is written. Rows changed since by another context
    are refused (`psycopg.errors.SerializationFailure`, naming them) unless
    *override*.
    """
    rows: list[Row] = yield Execute(
        sql.SQL(
            "SELECT event_table::text, obj_id, action"
            " FROM pghistory.revert_context(%s::uuid, dry_run => %s::boolean, override => %s::boolean)"
        ),
        [str(UUID(str(context_id))), bool(dry_run), bool(override)],
    )
    return [RevertStep(*r) for r in rows]


backfill = sync_twin(backfill_gen)
as_of = sync_twin(as_of_gen)
changes = sync_twin(changes_gen)
blame = sync_twin(blame_gen)
revert_context = sync_twin(revert_context_gen)
