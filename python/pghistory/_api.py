"""The wrappers of the SQL API: track, untrack, create_event, events,
revert (install is in `._install`).

Each is one function for both connection kinds: it returns its result for a
`psycopg.Connection` and an awaitable for a `psycopg.AsyncConnection`
(``await pghistory.track(aconn, "orders")``). Each runs in the caller's
transaction, as any psycopg statement does: on a non-autocommit connection,
commit to keep what it did.

Arguments are checked and the SQL composed when the function is called,
before anything is sent; table names are passed as quoted text parameters
(see `._names`), never spliced into SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Coroutine, Sequence
from typing import Any, Literal, Union, overload
from uuid import UUID

import psycopg
from psycopg import sql

from ._names import TableName, quoted
from ._ops import Execute, Gen, Rollback, Row, run_any
from ._rows import EVENT_COLUMNS, Event
from ._trackers import Tracker, trackers_sql

AnyConn = Union[psycopg.Connection[Any], psycopg.AsyncConnection[Any]]

#: An object's primary key: in its own type, or as text.
ObjId = Union[int, str, UUID]


def _scalar(stmt: Execute) -> Gen[Any]:
    rows: list[Row] = yield stmt
    return rows[0][0] if rows else None


def _context(conn: object) -> Any:
    # The connection quotes identifiers with libpq; a wrong type is left to
    # run_any(), which names it.
    return conn if isinstance(conn, (psycopg.Connection, psycopg.AsyncConnection)) else None


def _column_names(value: Sequence[str] | None, what: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError(f"{what} must be a list, such as [{value!r}], not a str")
    return list(value)


def _named_args(args: Sequence[tuple[str, sql.Composable, list[Any]]]) -> tuple[sql.Composable, list[Any]]:
    """``name => expr, ...`` and the parameters, in order."""
    parts = [sql.SQL("{} => {}").format(sql.Identifier(name), expr) for name, expr, _ in args]
    params = [p for _, _, ps in args for p in ps]
    return sql.SQL(", ").join(parts), params


_PARAM = sql.Placeholder()


def _typed(type_: str) -> sql.Composable:
    return sql.SQL("{}::{}").format(_PARAM, sql.SQL(type_))


# -- track / untrack ---------------------------------------------------------

ContextMode = Literal["fk", "json", "none"]
Level = Literal["statement", "row"]


@overload
def track(
    conn: psycopg.Connection[Any],
    table: TableName,
    *,
    trackers: Sequence[Tracker] | None = ...,
    fields: Sequence[str] | None = ...,
    exclude: Sequence[str] | None = ...,
    event_table: TableName | None = ...,
    context: ContextMode | None = ...,
    level: Level | None = ...,
    append_only: bool | None = ...,
) -> str: ...
@overload
def track(
    conn: psycopg.AsyncConnection[Any],
    table: TableName,
    *,
    trackers: Sequence[Tracker] | None = ...,
    fields: Sequence[str] | None = ...,
    exclude: Sequence[str] | None = ...,
    event_table: TableName | None = ...,
    context: ContextMode | None = ...,
    level: Level | None = ...,
    append_only: bool | None = ...,
) -> Coroutine[Any, Any, str]: ...
def track(
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
) -> str | Coroutine[Any, Any, str]:
    """Track *table*: ``pghistory.track()``; return its event table's name.

    Every argument mirrors the SQL function's; left out (``None``), the SQL
    default applies: *trackers* insert, update, delete and truncate
    (`InsertEvent`, ...); all columns (or only *fields*, or all but
    *exclude*); *event_table* ``<schema>.<table>_event``; *context* ``"fk"``
    (``"json"``, ``"none"``); *level* ``"statement"`` (``"row"``);
    *append_only* ``True``. Calling it again reconfigures the table.
    """
    ctx = _context(conn)
    args: list[tuple[str, sql.Composable, list[Any]]] = [
        ("tbl", _typed("regclass"), [quoted(table, ctx)])
    ]
    if trackers is not None:
        if isinstance(trackers, (str, bytes)) or not isinstance(trackers, Sequence):
            raise TypeError("trackers must be a list of tracker objects, such as [pghistory.InsertEvent()]")
        expr, params = trackers_sql(trackers)
        args.append(("trackers", expr, params))
    if fields is not None:
        args.append(("fields", _typed("text[]"), [_column_names(fields, "fields")]))
    if exclude is not None:
        args.append(("exclude", _typed("text[]"), [_column_names(exclude, "exclude")]))
    if event_table is not None:
        args.append(("event_table", _typed("text"), [quoted(event_table, ctx, "event table")]))
    if context is not None:
        args.append(("context", _typed("text"), [context]))
    if level is not None:
        args.append(("level", _typed("text"), [level]))
    if append_only is not None:
        args.append(("append_only", _typed("boolean"), [bool(append_only)]))
    call, params = _named_args(args)
    stmt = Execute(sql.SQL("SELECT pghistory.track({})::text").format(call), params)
    return run_any(conn, _scalar(stmt))


@overload
def untrack(conn: psycopg.Connection[Any], table: TableName, *, drop_events: bool = ...) -> None: ...
@overload
def untrack(
    conn: psycopg.AsyncConnection[Any], table: TableName, *, drop_events: bool = ...
) -> Coroutine[Any, Any, None]: ...
def untrack(
    conn: AnyConn, table: TableName, *, drop_events: bool = False
) -> None | Coroutine[Any, Any, None]:
    """Stop tracking *table* (``pghistory.untrack()``).

    Its triggers go; its history stays, unless *drop_events* is true.
    """
    stmt = Execute(
        sql.SQL("SELECT pghistory.untrack(tbl => %s::regclass, drop_events => %s::boolean)"),
        [quoted(table, _context(conn)), bool(drop_events)],
    )
    return run_any(conn, _none(stmt))


def _none(stmt: Execute) -> Gen[None]:
    yield stmt


# -- create_event ------------------------------------------------------------


@overload
def create_event(conn: psycopg.Connection[Any], table: TableName, obj_id: ObjId, label: str) -> int: ...
@overload
def create_event(
    conn: psycopg.AsyncConnection[Any], table: TableName, obj_id: ObjId, label: str
) -> Coroutine[Any, Any, int]: ...
def create_event(
    conn: AnyConn, table: TableName, obj_id: ObjId, label: str
) -> int | Coroutine[Any, Any, int]:
    """Snapshot row *obj_id* of *table* under *label*; return the event's pgh_id.

    ``pghistory.create_event()``: *label* must be one of the table's trackers'
    labels (usually a `ManualEvent`); the event is linked to the active
    context, like any other.
    """
    stmt = Execute(
        sql.SQL("SELECT pghistory.create_event(%s::regclass, %s::text, %s::text)"),
        [quoted(table, _context(conn)), _obj_id(obj_id), label],
    )
    return run_any(conn, _scalar(stmt))


def _obj_id(obj_id: ObjId) -> str:
    if isinstance(obj_id, bool) or not isinstance(obj_id, (int, str, UUID)):
        raise TypeError(f"obj_id must be an int, str or UUID, not {type(obj_id).__qualname__}")
    return str(obj_id)


# -- events / revert ---------------------------------------------------------


@overload
def events(
    conn: psycopg.Connection[Any],
    table: TableName | None = ...,
    obj_id: ObjId | None = ...,
    *,
    since: dt.datetime | None = ...,
    until: dt.datetime | None = ...,
    labels: Sequence[str] | None = ...,
    context_id: UUID | str | None = ...,
) -> list[Event]: ...
@overload
def events(
    conn: psycopg.AsyncConnection[Any],
    table: TableName | None = ...,
    obj_id: ObjId | None = ...,
    *,
    since: dt.datetime | None = ...,
    until: dt.datetime | None = ...,
    labels: Sequence[str] | None = ...,
    context_id: UUID | str | None = ...,
) -> Coroutine[Any, Any, list[Event]]: ...
def events(
    conn: AnyConn,
    table: TableName | None = None,
    obj_id: ObjId | None = None,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    labels: Sequence[str] | None = None,
    context_id: UUID | str | None = None,
) -> list[Event] | Coroutine[Any, Any, list[Event]]:
    """The events of every tracked table, oldest first, as `Event` rows.

    ``pghistory.events()``: filter by tracked *table*, and within it by
    *obj_id* (the row's primary key); by time (*since*, *until*, compared
    with ``pgh_created_at``); by *labels*; by *context_id*. Filters are pushed into each event table, so one object's
    history is an index lookup.
    """
    if obj_id is not None and table is None:
        raise ValueError("obj_id needs a table: pghistory.events(conn, 'orders', obj_id=1)")
    stmt = Execute(
        sql.SQL(
            "SELECT {} FROM pghistory.events(tbl => %s::regclass, obj_id => %s::text,"
            " since => %s::timestamptz, until => %s::timestamptz, labels => %s::text[],"
            " context_id => %s::uuid)"
        ).format(sql.SQL(", ").join(map(sql.Identifier, EVENT_COLUMNS))),
        [
            quoted(table, _context(conn)) if table is not None else None,
            _obj_id(obj_id) if obj_id is not None else None,
            since,
            until,
            _column_names(labels, "labels"),
            str(context_id) if context_id is not None else None,
        ],
    )
    return run_any(conn, _events_gen(stmt))


def _events_gen(stmt: Execute) -> Gen[list[Event]]:
    rows: list[Row] = yield stmt
    return [Event(*row) for row in rows]


@overload
def revert(conn: psycopg.Connection[Any], event_table: TableName, pgh_id: int) -> int: ...
@overload
def revert(
    conn: psycopg.AsyncConnection[Any], event_table: TableName, pgh_id: int
) -> Coroutine[Any, Any, int]: ...
def revert(conn: AnyConn, event_table: TableName, pgh_id: int) -> int | Coroutine[Any, Any, int]:
    """Put the tracked row back as event *pgh_id* of *event_table* shows it.

    ``pghistory.revert()``: updates the row, or inserts it again if it was
    deleted; the revert is itself tracked. Returns the pgh_id of the event the
    revert wrote.
    """
    stmt = Execute(
        sql.SQL("SELECT pghistory.revert(%s::regclass, %s::bigint)"),
        [quoted(event_table, _context(conn), "event table"), int(pgh_id)],
    )
    return run_any(conn, _scalar(stmt))
