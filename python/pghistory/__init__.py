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
SQL. The functions take a `psycopg.Connection`; their twins for a
`psycopg.AsyncConnection` are in `pghistory.aio` (``await
pghistory.aio.track(aconn, "orders")``). ``context()`` and ``ignore()`` take
either kind (``async with`` for an `AsyncConnection`).
"""

from __future__ import annotations

from . import aio, errors
from ._ambient import AmbientContext, CurrentContext
from ._browsing import events, revert
from ._calls import ObjId
from ._connection import AsyncHistoryConnection, HistoryConnection
from ._context import AsyncContext, Context, context, current_context
from ._ignore import AsyncIgnore, Ignore, ignore
from ._install import install
from ._metadata import MAX_METADATA_BYTES
from ._names import TableName
from ._reset import reset
from ._rows import Event
from ._time_travel import Blame, Change, RevertStep, as_of, backfill, blame, changes, revert_context
from ._trackers import DeleteEvent, InsertEvent, ManualEvent, Tracker, TruncateEvent, UpdateEvent
from ._tracking import create_event, track, untrack
from .errors import ContextError, ExtensionNotAvailable, NoEventTriggersWarning

#: The package's version: the version of the extension it is made for.
__version__ = "0.2.0"

__all__ = [
    "MAX_METADATA_BYTES",
    "AmbientContext",
    "AsyncContext",
    "AsyncHistoryConnection",
    "AsyncIgnore",
    "Blame",
    "Change",
    "Context",
    "ContextError",
    "CurrentContext",
    "DeleteEvent",
    "Event",
    "HistoryConnection",
    "ExtensionNotAvailable",
    "Ignore",
    "InsertEvent",
    "ManualEvent",
    "NoEventTriggersWarning",
    "ObjId",
    "RevertStep",
    "TableName",
    "Tracker",
    "TruncateEvent",
    "UpdateEvent",
    "aio",
    "as_of",
    "backfill",
    "blame",
    "changes",
    "context",
    "create_event",
    "current_context",
    "errors",
    "events",
    "ignore",
    "install",
    "reset",
    "revert",
    "revert_context",
    "track",
    "untrack",
]
