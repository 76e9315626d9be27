"""`pghistory.context()`: who and why, attached to every event of a block.

The block sets two settings the extension's triggers read,
``pghistory.context_id`` (a uuid) and ``pghistory.context_metadata`` (a JSON
object), and clears them when it ends. The first event written under an id
creates its row in ``pghistory.context``; an event written after the
metadata changed updates the row.

State is kept per connection, in a weak mapping from the connection object
to its active context (id, merged metadata, nesting depth), and nowhere
else: two connections never share a context, whichever threads or tasks
use them. The transactional rules are those of `._settings`.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, overload
from uuid import UUID, uuid4
from weakref import WeakKeyDictionary

import psycopg

from ._ambient import AmbientContext, CurrentContext, join
from ._ambient import current_context as ambient_current_context
from ._blocks import AsyncBlock, ConnT, SyncBlock
from ._metadata import check_metadata, dump_metadata
from ._ops import Execute, Gen, arun, check_connection_message, run
from ._settings import INTRANS, CONTEXT_ID, CONTEXT_METADATA, Scope, apply, finish, set_config
from .errors import ContextError


@dataclass
class _Active:
    """The context active on one connection."""

    id: UUID
    metadata: dict[str, Any]
    scope: Scope
    depth: int = 0


class _Registry:
    """Connection -> active context; the module's only state."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: WeakKeyDictionary[object, _Active] = WeakKeyDictionary()

    def get(self, conn: object) -> _Active | None:
        with self._lock:
            return self._active.get(conn)

    def add(self, conn: object, active: _Active) -> None:
        with self._lock:
            self._active[conn] = active

    def remove(self, conn: object, active: _Active | None = None) -> None:
        with self._lock:
            if active is None or self._active.get(conn) is active:
                self._active.pop(conn, None)


registry = _Registry()


def _set(active: _Active, metadata: dict[str, Any]) -> Execute:
    return set_config(
        {CONTEXT_ID: str(active.id), CONTEXT_METADATA: dump_metadata(metadata)},
        active.scope.local,
    )


def _clear(is_local: bool) -> Execute:
    return set_config({CONTEXT_ID: "", CONTEXT_METADATA: ""}, is_local)


class BaseContext(Generic[ConnT]):
    """What `Context` and `AsyncContext` share: all of the logic."""

    def __init__(self, conn: ConnT, metadata: Mapping[str, Any], local: bool):
        self._conn: ConnT = conn
        self._metadata = check_metadata(metadata)
        self._local = bool(local)
        self._entered: _Active | None = None  # the context this block entered
        self._merged: _Active | None = None  # the context the call form merged into
        self._id: UUID | None = None

    def __repr__(self) -> str:
        state = "entered" if self._entered else "not entered"
        return f"<{type(self).__qualname__} {self._id or '(no id)'} {state}>"

    @property
    def id(self) -> UUID | None:
        """The context's id: set once the block is entered (or merged), kept after."""
        return self._id

    @property
    def metadata(self) -> dict[str, Any]:
        """The context's merged metadata while it is active, else this block's own."""
        active = self._entered or self._merged
        if active is not None and registry.get(self._conn) is active:
            return dict(active.metadata)
        return dict(self._metadata)

    def _merge_gen(self, active: _Active) -> Gen[None]:
        merged = {**active.metadata, **self._metadata}
        yield from apply(self._conn, _set(active, merged), active.scope, entry=False)
        active.metadata = merged
        self._merged = active
        self._id = active.id

    def _call_gen(self) -> Gen[None]:
        """The call form: merge into the active context; no context, no-op.

        Inside an ambient context and no block of this connection's, merge
        into the ambient one; a transaction open on the connection gets the
        merged metadata at once (transaction-scoped, as integrated connections
        apply it)."""
        active = registry.get(self._conn)
        if active is not None:
            yield from self._merge_gen(active)
            return
        frame = join(self._metadata)
        if frame is not None:
            self._id = frame.id
            if self._conn.info.transaction_status == INTRANS:
                _, (ident, metadata) = frame.params()
                yield set_config({CONTEXT_ID: ident, CONTEXT_METADATA: metadata}, True)

    def _enter_gen(self) -> Gen[None]:
        if self._entered is not None:
            raise ContextError("this pghistory context block is already entered")
        active = registry.get(self._conn)
        if active is not None:
            if self._merged is not active:
                yield from self._merge_gen(active)
            active.depth += 1
        else:
            frame = join(self._metadata)  # inside an ambient context: join it
            if frame is not None:
                ident, metadata = frame.id, dict(frame.metadata)
            else:
                ident, metadata = uuid4(), dict(self._metadata)
            active = _Active(ident, metadata, Scope(local=self._local))
            yield from apply(self._conn, _set(active, active.metadata), active.scope, entry=True)
            active.depth = 1
            registry.add(self._conn, active)
        self._entered = active
        self._id = active.id

    def _exit_gen(self, raised: bool) -> Gen[None]:
        active, self._entered = self._entered, None
        if active is None:
            return
        active.depth -= 1
        if active.depth > 0:
            return
        registry.remove(self._conn, active)
        yield from finish(self._conn, _clear, active.scope, raised=raised)


class Context(BaseContext[psycopg.Connection[Any]], SyncBlock):
    """A context on a `psycopg.Connection`; made by `pghistory.context()`."""

    _exit_what = "clear the pghistory context"

    def __init__(
        self, conn: psycopg.Connection[Any], metadata: Mapping[str, Any], local: bool = False
    ):
        super().__init__(conn, metadata, local)
        run(conn, self._call_gen())


class AsyncContext(BaseContext[psycopg.AsyncConnection[Any]], AsyncBlock):
    """A context on a `psycopg.AsyncConnection`; made by `pghistory.context()`.

    Use ``async with`` for a block, and ``await pghistory.context(aconn, k=v)``
    for the call form.
    """

    _exit_what = "clear the pghistory context"

    def __init__(
        self, conn: psycopg.AsyncConnection[Any], metadata: Mapping[str, Any], local: bool = False
    ):
        super().__init__(conn, metadata, local)
        self._used = False

    def __del__(self) -> None:
        if not getattr(self, "_used", True):
            warnings.warn(
                "pghistory.context() on an AsyncConnection was neither awaited nor entered, "
                "so it did nothing: write `await pghistory.context(aconn, ...)` or "
                "`async with pghistory.context(aconn, ...):`",
                RuntimeWarning,
                stacklevel=2,
            )

    def __await__(self) -> Generator[Any, Any, None]:
        self._used = True
        return arun(self._conn, self._call_gen()).__await__()

    async def __aenter__(self) -> AsyncContext:
        self._used = True
        return await super().__aenter__()


@overload
def context(*, id: UUID | str | None = None, **metadata: Any) -> AmbientContext: ...
@overload
def context(conn: psycopg.Connection[Any], /, *, local: bool = False, **metadata: Any) -> Context: ...
@overload
def context(
    conn: psycopg.AsyncConnection[Any], /, *, local: bool = False, **metadata: Any
) -> AsyncContext: ...
def context(
    conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any] | None = None,
    /,
    *,
    local: bool = False,
    id: UUID | str | None = None,
    **metadata: Any,
) -> Context | AsyncContext | AmbientContext:
    """Attach a context (who and why) to every event written on *conn*.

    ``with pghistory.context(conn, user="alice", url="/checkout"):`` gives the
    whole block one context id: every event written on *conn* inside it points
    at the row of ``pghistory.context`` with that id, whose ``metadata`` is
    the keyword arguments, as JSON. When the outermost block ends, nothing
    written on *conn* carries the context any more, also when it raised.

    Nested blocks, and the call form ``pghistory.context(conn, reason="x")``
    (no ``with``), merge their metadata into the active context: same id,
    inner keys win, and the merged keys stay until the outermost block ends.
    The call form outside any context does nothing. With an
    `psycopg.AsyncConnection`, use ``async with`` and ``await
    pghistory.context(aconn, ...)``.

    The context lasts across commits and rollbacks inside the block, on
    autocommit connections too: on a connection idle at entry, the settings
    are set for the session and committed on their own. Entered inside an
    open transaction, they are set in it and share its fate. An exception
    leaving the block rolls back a transaction that began inside the block
    (as ``with conn:`` would), so a later rollback cannot bring the context
    back.

    *local* ``=True`` keeps everything transaction-scoped (``SET LOCAL``), for
    transaction poolers such as PgBouncer in transaction mode, where the next
    transaction may run on another server session: enter the block inside a
    transaction; the context ends with that transaction at the latest. The
    outermost block decides the mode of nested ones.

    Without *conn*, ``pghistory.context(**metadata)`` opens (or, nested and
    as a call, extends) the *ambient* context of the current thread or
    asyncio task: it sends nothing itself, and every integrated connection
    (`pghistory.sqlalchemy.instrument`, `HistoryConnection`) applies it to
    each transaction it runs meanwhile, transaction-scoped. *id* continues a
    context begun elsewhere (see `current_context`). A block on *conn*
    entered inside an ambient context joins it: same id, and its keys merge
    into the ambient metadata as a nested block's would.

    Metadata that JSON (or jsonb) cannot hold raises `TypeError` or
    `ValueError` before anything is sent. ``local`` and ``id`` are the
    reserved keywords.
    """
    if conn is None:
        if local:
            raise TypeError(
                "local= applies to a connection's context; the ambient context "
                "(pghistory.context() without a connection) is always transaction-scoped"
            )
        return AmbientContext(metadata, id)
    if id is not None:
        raise TypeError(
            "id= continues a context in the ambient form: `with pghistory.context(id=...):` "
            "and, inside it, `with pghistory.context(conn):` joins it"
        )
    if isinstance(conn, psycopg.AsyncConnection):
        return AsyncContext(conn, metadata, local)
    if isinstance(conn, psycopg.Connection):
        return Context(conn, metadata, local)
    raise TypeError(check_connection_message(conn))


def current_context() -> CurrentContext | None:
    """The active ambient context (id and metadata), or None outside one.

    Serialise it to continue the context in a background job or another
    service: ``ctx.as_dict()`` is JSON types only, `CurrentContext.from_dict`
    reads it back, and ``pghistory.context(id=ctx.id, **ctx.metadata)``
    continues it there, so its events share the id.
    """
    return ambient_current_context()
