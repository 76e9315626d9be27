"""Tracking: `pghistory.track()`, `pghistory.untrack()`, `pghistory.create_event()`.

Each is written once, as a core generator (``track_gen``, ...: see `._ops`);
``pghistory.track`` is its twin for a `psycopg.Connection` and
``pghistory.aio.track`` for a `psycopg.AsyncConnection`. Each runs in the
caller's transaction, as any psycopg statement does: on a non-autocommit
connection, commit to keep what it did.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from psycopg import sql

from ._calls import AnyConn, ObjId, column_names, named_args, obj_id_text, quoting_context, scalar, typed
from ._names import TableName, quoted
from ._ops import Execute, Gen, sync_twin
from ._trackers import Tracker, trackers_sql

ContextMode = Literal["fk", "json", "none"]
Level = Literal["statement", "row"]


def track_gen(
    conn: AnyConn,
    table: TableName,
    *,
    trackers: Sequence[Tracker] | None = None,
    fields: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    event_table: TableName | None = None,
    context: ContextMode | None = None,
    level: Level | None = None,
    append_only: bool | None = None,
) -> Gen[str]:
    """Track *table*: ``pghistory.track()``; return its event table's name.

    Every argument mirrors the SQL function's; left out (``None``), the SQL
    default applies: *trackers* insert, update, delete and truncate
    (`InsertEvent`, ...); all columns (or only *fields*, or all but
    *exclude*); *event_table* ``<schema>.<table>_event``; *context* ``"fk"``
    (``"json"``, ``"none"``); *level* ``"statement"`` (``"row"``);
    *append_only* ``True``. Calling it again reconfigures the table.
    """
    ctx = quoting_context(conn)
    args: list[tuple[str, sql.Composable, list[Any]]] = [
        ("tbl", typed("regclass"), [quoted(table, ctx)])
    ]
    if trackers is not None:
        if isinstance(trackers, (str, bytes)) or not isinstance(trackers, Sequence):
            raise TypeError("trackers must be a list of tracker objects, such as [pghistory.InsertEvent()]")
        expr, params = trackers_sql(trackers)
        args.append(("trackers", expr, params))
    if fields is not None:
        args.append(("fields", typed("text[]"), [column_names(fields, "fields")]))
    if exclude is not None:
        args.append(("exclude", typed("text[]"), [column_names(exclude, "exclude")]))
    if event_table is not None:
        args.append(("event_table", typed("text"), [quoted(event_table, ctx, "event table")]))
    if context is not None:
        args.append(("context", typed("text"), [context]))
    if level is not None:
        args.append(("level", typed("text"), [level]))
    if append_only is not None:
        args.append(("append_only", typed("boolean"), [bool(append_only)]))
    call, params = named_args(args)
    name: str = yield from scalar(Execute(sql.SQL("SELECT pghistory.track({})::text").format(call), params))
    return name


def untrack_gen(conn: AnyConn, table: TableName, *, drop_events: bool = False) -> Gen[None]:
    """Stop tracking *table* (``pghistory.untrack()``).

    Its triggers go; its history stays, unless *drop_events* is true.
    """
    yield Execute(
        sql.SQL("SELECT pghistory.untrack(tbl => %s::regclass, drop_events => %s::boolean)"),
        [quoted(table, quoting_context(conn)), bool(drop_events)],
    )


def create_event_gen(conn: AnyConn, table: TableName, obj_id: ObjId, label: str) -> Gen[int]:
    """Snapshot row *obj_id* of *table* under *label*; return the event's pgh_id.

    ``pghistory.create_event()``: *label* must be one of the table's trackers'
    labels (usually a `ManualEvent`); the event is linked to the active
    context, like any other.
    """
    pgh_id: int = yield from scalar(Execute(
        sql.SQL("SELECT pghistory.create_event(%s::regclass, %s::text, %s::text)"),
        [quoted(table, quoting_context(conn)), obj_id_text(obj_id), label],
    ))
    return pgh_id


track = sync_twin(track_gen)
untrack = sync_twin(untrack_gen)
create_event = sync_twin(create_event_gen)
