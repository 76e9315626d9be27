"""Newest-first reading of history, streamed: what ``pghistory log`` and the history browser show.

``pghistory.events()`` returns history oldest first and builds its whole
result before the first row arrives, which is right for one object and too
slow for the first screen of a table with millions of events. So reading
newest first goes in two steps, both with the connected role's own rights:

1. *which events*: per readable event table, a server-side cursor over
   ``SELECT pgh_id, ... ORDER BY pgh_id DESC`` with the filters that need no
   diff (object, time, label, context) as a ``WHERE``: the primary key index
   read backwards, so the first rows arrive at once however long the history;
   the tables' streams are merged by ``pgh_created_at``;
2. *what they were*: each batch of events is read in full, diff included,
   by the query ``pghistory.events()`` itself runs on that event table (the
   extension's ``_events_query``: one index probe per event for its
   neighbours), restricted to the batch's ``pgh_id``: the diffs are the
   extension's own, and a page costs milliseconds, not one ``events()`` call
   per object.

Events come in the order they were written (``pgh_id``), across tables by
time and then ``pgh_id``, as ``pghistory.events()`` orders them. A page can be continued with `Position`: for each
event table, the ``pgh_id`` to continue below (keyset pagination).
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import json
import re
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from ._rows import EVENT_COLUMNS, Event, event_column

#: Events read in full per round trip (step 2).
BATCH = 50


class HistoryError(Exception):
    """A question about history that cannot be answered as asked; says what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Source:
    """One event table history is read from."""

    oid: int
    schema: str
    name: str
    obj_model: str | None
    readable: bool
    has_context_id: bool
    has_context: bool
    query: str  # the extension's own query over this event table (what events() runs), for step 2

    @property
    def model(self) -> str:
        """The event table's name as ``pgh_model`` spells it (``public.orders_event``)."""
        return f"{_quote(self.schema)}.{_quote(self.name)}"


def _quote(name: str) -> str:
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class Filters:
    """What to keep; every field left as None keeps everything."""

    table: str | None = None
    obj_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    labels: Sequence[str] | None = None
    context: dict[str, str] = field(default_factory=dict)
    context_id: uuid.UUID | None = None
    changed: Sequence[str] | None = None
    pgh_id: int | None = None


@dataclass(frozen=True)
class Position:
    """Where a newest-first listing continues: per event table (model), the pgh_id to stay below."""

    below: dict[str, int] = field(default_factory=dict)

    def token(self) -> str:
        """A bookmarkable form: ``public.orders_event:12,public.customers_event:7``."""
        return ",".join(f"{model}:{pgh_id}" for model, pgh_id in sorted(self.below.items()))

    @classmethod
    def parse(cls, token: str) -> Position:
        """The inverse of token(); a HistoryError for anything else."""
        below: dict[str, int] = {}
        for part in filter(None, token.split(",")):
            model, sep, pgh_id = part.rpartition(":")
            if not sep or not model or not pgh_id.isdigit():
                raise HistoryError(f"not a position in history: {token!r}", "follow the links of the previous page")
            below[model] = int(pgh_id)
        return cls(below)


def parse_time(conn: psycopg.Connection[Any], text: str, option: str = "time") -> dt.datetime:
    """A point in time as PostgreSQL reads it, or relative: ``2026-11-01``, ``yesterday``, ``2 hours ago``."""
    relative = re.fullmatch(r"\s*(.+?)\s+ago\s*", text, re.I)
    query = "SELECT now() - %s::interval" if relative else "SELECT %s::timestamptz"
    try:
        with conn.transaction():
            row = conn.execute(query, (relative.group(1) if relative else text,)).fetchone()
    except psycopg.DataError as exc:
        raise HistoryError(
            f"cannot read {option} {text!r} as a time",
            "give a date (2026-11-01), a timestamp (2026-11-01 12:00+00) or a relative time (2 hours ago, yesterday)",
        ) from exc
    assert row is not None
    value = row[0]
    assert isinstance(value, dt.datetime)
    return value


def sources(conn: psycopg.Connection[Any], table: str | None = None) -> list[Source]:
    """The event tables of ``table`` (tracked or event table), or of every tracked table."""
    query = sql.SQL("""
        SELECT c.oid::bigint, n.nspname::text, c.relname::text, s.obj_model,
               has_table_privilege(c.oid, 'SELECT') AND has_schema_privilege(n.oid, 'USAGE'),
               EXISTS (SELECT FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = c.oid
                          AND a.attname = 'pgh_context_id' AND NOT a.attisdropped),
               EXISTS (SELECT FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = c.oid
                          AND a.attname = 'pgh_context' AND NOT a.attisdropped),
               pghistory._events_query(s.event_table, s.obj_model, s.trackers,
                                       has_table_privilege('pghistory.context', 'SELECT'),
                                       ARRAY['since'])
          FROM pghistory._history_sources({}::regclass) AS s
          JOIN pg_catalog.pg_class AS c ON c.oid = s.event_table
          JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
         ORDER BY n.nspname, c.relname""").format(sql.Literal(None) if table is None else sql.Placeholder())
    try:
        with conn.transaction():
            rows = conn.execute(query, () if table is None else (table,)).fetchall()
    except psycopg.errors.UndefinedTable as exc:
        raise HistoryError(f"no table {table}", "name a tracked table; SELECT * FROM pghistory.tracking lists them") from exc
    except psycopg.errors.UndefinedObject as exc:
        if exc.diag.message_primary and exc.diag.message_primary.startswith("pghistory:"):
            raise HistoryError(f"{table} is not tracked", "track it with SELECT pghistory.track(...), or name a tracked table") from exc
        raise
    except (psycopg.errors.InvalidName, psycopg.errors.SyntaxError, psycopg.errors.InvalidSchemaName) as exc:
        raise HistoryError(f"no table {table}", "name a tracked table; SELECT * FROM pghistory.tracking lists them") from exc
    found = [Source(*row) for row in rows]
    if table is not None:
        for source in found:
            if not source.readable:
                raise HistoryError(
                    f"permission denied for the history in {source.model}",
                    f"reading history needs SELECT on its event table: GRANT SELECT ON {source.model} TO {_current_user(conn)}",
                )
    return [source for source in found if source.readable]


def _current_user(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT current_user::text").fetchone()
    return str(row[0]) if row else "?"


def _context_candidates(context: dict[str, str]) -> list[str]:
    """The metadata objects a --context filter matches: each value as a string, or as the JSON it spells."""
    choices: list[list[tuple[str, Any]]] = []
    for key, value in context.items():
        alternatives: list[tuple[str, Any]] = [(key, value)]
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = value
        if parsed != value:
            alternatives.append((key, parsed))
        choices.append(alternatives)
    return [json.dumps(dict(combo)) for combo in itertools.product(*choices)]


def _selection(source: Source, filters: Filters, below: int | None, read_context: bool) -> sql.Composed | None:
    """Step 1 for one event table: its events' keys, newest first; None when none can match."""
    conditions: list[sql.Composable] = []
    if filters.obj_id is not None:
        conditions.append(sql.SQL("pgh_obj_id = {}").format(sql.Literal(filters.obj_id)))
    if filters.pgh_id is not None:
        conditions.append(sql.SQL("pgh_id = {}").format(sql.Literal(filters.pgh_id)))
    if below is not None:
        conditions.append(sql.SQL("pgh_id < {}").format(sql.Literal(below)))
    if filters.since is not None:
        conditions.append(sql.SQL("pgh_created_at >= {}").format(sql.Literal(filters.since)))
    if filters.until is not None:
        conditions.append(sql.SQL("pgh_created_at < {}").format(sql.Literal(filters.until)))
    if filters.labels is not None:
        conditions.append(sql.SQL("pgh_label = ANY ({}::text[])").format(sql.Literal(list(filters.labels))))
    if filters.context_id is not None:
        if not source.has_context_id:
            return None
        conditions.append(sql.SQL("pgh_context_id = {}").format(sql.Literal(filters.context_id)))
    if filters.context:
        lookup = sql.SQL("(SELECT c.metadata FROM pghistory.context AS c WHERE c.id = pgh_context_id)")
        if source.has_context and source.has_context_id and read_context:
            metadata: sql.Composable = sql.SQL("coalesce(pgh_context, {})").format(lookup)
        elif source.has_context:
            metadata = sql.SQL("pgh_context")
        elif source.has_context_id and read_context:
            metadata = lookup
        else:
            return None
        conditions.append(sql.SQL("{} @> ANY ({}::jsonb[])").format(
            metadata, sql.Literal(_context_candidates(filters.context))))
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
    return sql.SQL("SELECT pgh_id, pgh_created_at, pgh_obj_id::text FROM {}{} ORDER BY pgh_id DESC").format(
        sql.Identifier(source.schema, source.name), where)


def _details(conn: psycopg.Connection[Any], keys: list[tuple[Source, int, dt.datetime, str | None]],
             prepared: dict[int, str]) -> list[Event]:
    """Step 2: the events of ``keys`` in full, in the order of ``keys``.

    Per event table, the query events() itself runs for a ``since`` filter (given -infinity) (one
    index probe per event for its neighbours, so diffs are the extension's),
    restricted to the batch's pgh_ids; prepared once per connection
    (``prepared`` maps the table's oid to the statement's name).
    """
    found: dict[tuple[int, int], Event] = {}
    by_source: dict[int, tuple[Source, list[int]]] = {}
    for source, pgh_id, _, _ in keys:
        by_source.setdefault(source.oid, (source, []))[1].append(pgh_id)
    columns = sql.SQL(", ").join(event_column(c, "pgh_events") for c in EVENT_COLUMNS)
    for oid, (source, ids) in by_source.items():
        if oid not in prepared:
            name = f"pghistory_page_{uuid.uuid4().hex[:12]}"
            conn.execute(sql.SQL(
                "PREPARE {} (text, timestamptz, timestamptz, text[], uuid, bigint[]) AS "
                "SELECT {} FROM ({}) AS pgh_events WHERE pgh_events.pgh_id = ANY ($6)").format(
                    sql.Identifier(name), columns, sql.SQL(source.query)))  # the extension's own SQL text
            prepared[oid] = name
        rows = conn.execute(sql.SQL("EXECUTE {} (NULL, '-infinity', NULL, NULL, NULL, {}::bigint[])").format(
            sql.Identifier(prepared[oid]), sql.Literal(ids))).fetchall()
        for row in rows:
            event = Event(*row)
            found[(oid, event.pgh_id)] = event
    return [found[(source.oid, pgh_id)] for source, pgh_id, _, _ in keys if (source.oid, pgh_id) in found]


class Listing:
    """Events newest first, streamed: iterate it; ``position`` is where the events not yet read start.

    Runs inside a transaction of its own on ``conn`` (named cursors need one);
    close() ends it (also on leaving a ``with`` block).
    """

    def __init__(self, conn: psycopg.Connection[Any], filters: Filters, position: Position | None = None,
                 batch: int = BATCH) -> None:
        self.conn, self.filters, self.batch = conn, filters, batch
        self.position = Position(dict(position.below)) if position else Position()
        self._sources = sources(conn, filters.table)
        row = conn.execute("SELECT has_table_privilege('pghistory.context', 'SELECT')").fetchone()
        self._read_context = bool(row and row[0])
        self._transaction: AbstractContextManager[Any] | None = conn.transaction()
        self._transaction.__enter__()
        self._cursors: list[psycopg.ServerCursor[Any]] = []
        self._prepared: dict[int, str] = {}

    def __enter__(self) -> Listing:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self.close(kind, exc, tb)

    def close(self, kind: type[BaseException] | None = None, exc: BaseException | None = None, tb: Any = None) -> None:
        """Closes the cursors, forgets the prepared statements and ends the transaction (read-only: nothing to keep)."""
        if self._transaction is None:
            return
        transaction, self._transaction = self._transaction, None
        try:
            for cursor in self._cursors:
                if not cursor.closed:
                    try:
                        cursor.close()
                    except psycopg.Error:
                        if kind is None:
                            raise
            if kind is None:
                for name in self._prepared.values():
                    self.conn.execute(sql.SQL("DEALLOCATE {}").format(sql.Identifier(name)))
        finally:
            self._cursors.clear()
            self._prepared.clear()
            transaction.__exit__(kind, exc, tb)

    def _stream(self, source: Source) -> Iterator[tuple[dt.datetime, str, int, Source, str | None]]:
        selection = _selection(source, self.filters, self.position.below.get(source.model), self._read_context)
        if selection is None:
            return
        cursor = self.conn.cursor(name=f"pghistory_{uuid.uuid4().hex[:12]}")
        self._cursors.append(cursor)
        cursor.execute(selection)
        while True:
            rows = cursor.fetchmany(self.batch)
            for pgh_id, created_at, obj_id in rows:
                yield created_at, source.model, pgh_id, source, obj_id
            if len(rows) < self.batch:
                cursor.close()
                return

    def __iter__(self) -> Iterator[Event]:
        # the order of events() reversed: time, then pgh_id (one sequence numbers every table's
        # events, so events of one transaction come as written), then the table
        merged = heapq.merge(*(self._stream(s) for s in self._sources), key=lambda k: (k[0], k[2], k[1]), reverse=True)
        while True:
            keys = [(source, pgh_id, at, obj) for at, _, pgh_id, source, obj in itertools.islice(merged, self.batch)]
            if not keys:
                return
            for event in _details(self.conn, keys, self._prepared):
                self.position.below[event.pgh_model] = event.pgh_id
                if self.filters.changed and not (event.pgh_diff and any(c in event.pgh_diff for c in self.filters.changed)):
                    continue
                yield event


def newest_first(conn: psycopg.Connection[Any], filters: Filters, limit: int | None = None,
                 position: Position | None = None) -> Iterable[Event]:
    """Up to ``limit`` events newest first (all of them with None), streamed."""
    with Listing(conn, filters, position) as listing:
        yield from itertools.islice(listing, limit)
