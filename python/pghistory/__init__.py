"""pghistory: history tracking for PostgreSQL tables, from Python.

A thin binding of the pghistory extension on psycopg 3::

    import psycopg
    import pghistory as pgh

    with psycopg.connect(dsn) as conn:
        pgh.track(conn, "orders")
        with pgh.context(conn, user="alice", url="/checkout"):
            conn.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
        for ev in pgh.events(conn, "orders", obj_id=1):
            print(ev.pgh_label, ev.pgh_diff, ev.pgh_context)

All logic lives in the database: this package calls the extension's SQL
functions and sets the settings its triggers read; it never writes trigger
SQL. Every function takes a `psycopg.Connection` or a
`psycopg.AsyncConnection`; with the latter, await it (``async with`` for the
context managers).
"""

from __future__ import annotations

from . import errors
from ._api import ObjId, create_event, events, revert, track, untrack
from ._context import AsyncContext, Context, context
from ._install import install
from ._ignore import AsyncIgnore, Ignore, ignore, reset
from ._metadata import MAX_METADATA_BYTES
from ._names import TableName
from ._rows import Event
from ._trackers import DeleteEvent, InsertEvent, ManualEvent, Tracker, TruncateEvent, UpdateEvent
from .errors import ContextError, ExtensionNotAvailable

#: The package's version: the version of the extension it is made for.
__version__ = "0.2.0"

__all__ = [
    "MAX_METADATA_BYTES",
    "AsyncContext",
    "AsyncIgnore",
    "Context",
    "ContextError",
    "DeleteEvent",
    "Event",
    "ExtensionNotAvailable",
    "Ignore",
    "InsertEvent",
    "ManualEvent",
    "ObjId",
    "TableName",
    "Tracker",
    "TruncateEvent",
    "UpdateEvent",
    "context",
    "create_event",
    "errors",
    "events",
    "ignore",
    "install",
    "reset",
    "revert",
    "track",
    "untrack",
]
