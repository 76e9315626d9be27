"""Browsing: `pghistory.events()` and `pghistory.revert()`.

Written once, as core generators (see `._ops`), with a twin for each
connection kind (``pghistory.events``, ``pghistory.aio.events``).

`events` pages through history with keyset queries: the rows come in one
total order, ``(pgh_created_at, pgh_id, pgh_model)``, ascending by default
(the SQL function's own order) or descending, and a page starts strictly
after (or before) the `Event` that ended the previous one. The cursor's time
is also passed to the SQL function as its *since* (or *until*), which pushes
it into every event table's own query.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from psycopg import sql

from ._calls import AnyConn, ObjId, column_names, obj_id_text, quoting_context, scalar
from ._names import TableName, quoted
from ._ops import Execute, Gen, Row, sync_twin
from ._rows import EVENT_COLUMNS, Event, event_column

Order = Literal["asc", "desc"]

#: The total order of events, which the keyset cursor compares.
_KEY = sql.SQL("(e.pgh_created_at, e.pgh_id, e.pgh_model)")
_CURSOR = sql.SQL("(%s::timestamptz, %s::bigint, %s::text)")
#: Columns decoded in Python (`_json`), so their numbers come back exact.
_EXACT_JSON = ("pgh_data", "pgh_diff")
#: The smallest step of a timestamptz: ``until`` is exclusive.
_TICK = dt.timedelta(microseconds=1)


def events_gen(
    conn: AnyConn,
    table: TableName | None = None,
    obj_id: ObjId | None = None,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    labels: Sequence[str] | None = None,
    context_id: UUID | str | None = None,
    changed: Sequence[str] | None = None,
    order: Order = "asc",
    limit: int | None = None,
    after: Event | None = None,
    before: Event | None = None,
) -> Gen[list[Event]]:
    """The events of every tracked table, as `Event` rows.

    ``pghistory.events()``: filter by tracked *table*, and within it by
    *obj_id* (the row's primary key); by time (*since* inclusive, *until*
    exclusive, compared with ``pgh_created_at``); by *labels*; by
    *context_id*; by *changed*, a list of columns: the events whose
    ``pgh_diff`` names one of them ("who changed status":
    ``changed=["status"]``; inserts, deletes and first events have no such
    diff). Filters are pushed into each event table, so one object's
    history is an index lookup; they never change a diff.

    Rows come oldest first (``pgh_created_at``, then ``pgh_id``, then
    ``pgh_model``), newest first with *order* ``"desc"``; at most *limit* of
    them. *after* and *before* take an `Event` (the last one of the previous
    page) and keep only the events that come strictly after or before it in
    that order, whichever *order* the rows are returned in::

        page = pghistory.events(conn, "orders", order="desc", limit=50)
        older = pghistory.events(conn, "orders", order="desc", limit=50, before=page[-1])

    Numbers in ``pgh_data`` and ``pgh_diff`` come back as `int` when they
    are whole numbers written without a fraction, else as `decimal.Decimal`
    exactly as stored (``42.00`` is ``Decimal("42.00")``).
    """
    if obj_id is not None and table is None:
        raise ValueError("obj_id needs a table: pghistory.events(conn, 'orders', obj_id=1)")
    if order not in ("asc", "desc"):
        raise ValueError(f"order must be 'asc' or 'desc', not {order!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be an int of 0 or more, not {limit!r}")
    for name, cursor in (("after", after), ("before", before)):
        if cursor is not None and not isinstance(cursor, Event):
            raise TypeError(
                f"{name} must be a pghistory.Event (the last one of the previous page), "
                f"not {type(cursor).__qualname__}"
            )
    conditions: list[sql.Composable] = []
    params: list[Any] = []
    if after is not None:
        since = after.pgh_created_at if since is None else max(since, after.pgh_created_at)
        conditions.append(sql.SQL("{} > {}").format(_KEY, _CURSOR))
        params += [after.pgh_created_at, after.pgh_id, after.pgh_model]
    if before is not None:
        bound = before.pgh_created_at + _TICK
        until = bound if until is None else min(until, bound)
        conditions.append(sql.SQL("{} < {}").format(_KEY, _CURSOR))
        params += [before.pgh_created_at, before.pgh_id, before.pgh_model]
    direction = sql.SQL("DESC" if order == "desc" else "ASC")
    columns = [
        sql.SQL("e.{}::text").format(sql.Identifier(c)) if c in _EXACT_JSON else event_column(c, "e")
        for c in EVENT_COLUMNS
    ]
    query = sql.SQL(
        "SELECT {columns} FROM pghistory.events(tbl => %s::regclass, obj_id => %s::text,"
        " since => %s::timestamptz, until => %s::timestamptz, labels => %s::text[],"
        " context_id => %s::uuid, changed => %s::text[]) AS e{where}"
        " ORDER BY e.pgh_created_at {d}, e.pgh_id {d}, e.pgh_model {d}{limit}"
    ).format(
        columns=sql.SQL(", ").join(columns),
        where=sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL(""),
        d=direction,
        limit=sql.SQL(" LIMIT %s::bigint") if limit is not None else sql.SQL(""),
    )
    params = [
        quoted(table, quoting_context(conn)) if table is not None else None,
        obj_id_text(obj_id) if obj_id is not None else None,
        since,
        until,
        column_names(labels, "labels"),
        str(context_id) if context_id is not None else None,
        column_names(changed, "changed"),
        *params,
        *([limit] if limit is not None else []),
    ]
    rows: list[Row] = yield Execute(query, params)
    return [_event(row) for row in rows]


_EXACT_JSON_AT = [EVENT_COLUMNS.index(c) for c in _EXACT_JSON]


def _event(row: Row) -> Event:
    values = list(row)
    for i in _EXACT_JSON_AT:
        values[i] = _json(values[i])
    return Event(*values)


def _json(text: str | None) -> Any:
    """jsonb text as Python, numbers exact (`Decimal` for a fraction or an exponent)."""
    return None if text is None else json.loads(text, parse_float=Decimal)


def revert_gen(conn: AnyConn, event_table: TableName, pgh_id: int) -> Gen[int | None]:
    """Put the tracked row back as event *pgh_id* of *event_table* shows it.

    ``pghistory.revert()``: updates the row, or inserts it again if it was
    deleted; the revert is itself tracked. Returns the pgh_id of the event the
    revert wrote, or None when the row already matched the snapshot (nothing
    was written).
    """
    written: int | None = yield from scalar(Execute(
        sql.SQL("SELECT pghistory.revert(%s::regclass, %s::bigint)"),
        [quoted(event_table, quoting_context(conn), "event table"), int(pgh_id)],
    ))
    return written


events = sync_twin(events_gen)
revert = sync_twin(revert_gen)
