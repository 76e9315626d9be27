"""The ambient context: ``pghistory.context(**metadata)`` without a connection.

A web request, a job or a script opens one ambient context, and every
*integrated* connection (engines given to `pghistory.sqlalchemy.instrument`,
`pghistory.HistoryConnection`, `pghistory.AsyncHistoryConnection`) applies
it to each transaction it runs while the context is active, whichever code
holds the connection. The block itself sends nothing.

State lives in one `contextvars.ContextVar`, as Starlette, structlog and
OpenTelemetry keep request state: it follows asyncio tasks (a task created
inside the block keeps the context, also after the block ended), and threads
that run in a copy of the current `contextvars.Context` (``asyncio.to_thread``,
Starlette's threadpool, `contextvars.copy_context`).

The variable holds the *frame* of the outermost block: its id and its
metadata. Nested blocks and the call form merge into that frame, so that,
exactly as with ``pghistory.context(conn, ...)``, one outermost block has one
id and merged keys stay until it ends; a frame is shared, not copied, by the
tasks and threads that inherit it, so metadata a FastAPI dependency adds in
the threadpool is seen by the request that awaits it.

Applying it is transaction-scoped (``SET LOCAL``, in the form Citus passes
on to its nodes: `._settings`) and done by `Applier`, one per connection:
before a statement, it compares what the transaction carries with what the
ambient context wants, and sends one script of ``SET LOCAL`` statements
(one round trip) only when they differ (at most once
per transaction, unless metadata changes in the middle of one). Nothing is
ever left on the connection after its transaction, so it is safe behind
transaction poolers (PgBouncer in transaction mode, RDS Proxy, Supavisor).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from uuid import UUID, uuid4

from psycopg import sql

from ._metadata import check_metadata, dump_metadata
from ._settings import CONTEXT_ID, CONTEXT_METADATA, set_local, set_local_statements
from .errors import ContextError


def apply_statements(params: tuple[str, str]) -> list[sql.Composed]:
    """The statements that apply (or clear) the ambient context in a
    transaction, ``SET LOCAL`` in the form Citus propagates (`._settings`);
    *params* (id, metadata) come from `Applier.pending`."""
    return set_local_statements({CONTEXT_ID: params[0], CONTEXT_METADATA: params[1]})


def apply_script(params: tuple[str, str]) -> sql.Composed:
    """`apply_statements` as one script: one round trip."""
    return set_local({CONTEXT_ID: params[0], CONTEXT_METADATA: params[1]})


@dataclass(eq=False)
class Frame:
    """The ambient context of one outermost block (shared, mutable)."""

    id: UUID
    metadata: dict[str, Any]
    depth: int = 0
    #: Bumped on every change of the metadata, so appliers see it changed.
    version: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _encoded: tuple[int, str] | None = field(default=None, repr=False)

    def merge(self, metadata: Mapping[str, Any]) -> None:
        if not metadata:
            return
        with self._lock:
            self.metadata = {**self.metadata, **metadata}
            self.version += 1

    def params(self) -> tuple[int, tuple[str, str]]:
        """The version and the values of the two settings (JSON encoded once per version)."""
        with self._lock:
            version, metadata = self.version, self.metadata
            if self._encoded is None or self._encoded[0] != version:
                self._encoded = (version, dump_metadata(metadata))
            return version, (str(self.id), self._encoded[1])


_current: contextvars.ContextVar[Frame | None] = contextvars.ContextVar(
    "pghistory_context", default=None
)


def active_frame() -> Frame | None:
    """The ambient context of the current thread or task, if any."""
    return _current.get()


@dataclass(frozen=True)
class CurrentContext:
    """The active context, as `pghistory.current_context()` returns it.

    Continue it in another process (a background job, another service) with
    ``pghistory.context(id=ctx.id, **ctx.metadata)``: its events then share
    the id. It pickles, and `as_dict()` / `from_dict()` turn it into and back
    from plain JSON types, for a job's headers or an HTTP header.
    """

    id: UUID
    metadata: Mapping[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """``{"id": "<uuid>", "metadata": {...}}``: JSON types only."""
        return {"id": str(self.id), "metadata": dict(self.metadata)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CurrentContext:
        """The inverse of `as_dict()`; refuses anything else with ValueError."""
        if not isinstance(data, Mapping) or set(data) != {"id", "metadata"}:
            raise ValueError(
                "a pghistory context is a mapping with exactly the keys 'id' and 'metadata', "
                f"not {data!r}"
            )
        metadata = data["metadata"]
        if not isinstance(metadata, Mapping):
            raise ValueError(f"a pghistory context's metadata is a mapping, not {metadata!r}")
        return cls(parse_id(data["id"]), check_metadata(metadata))


def parse_id(value: object) -> UUID:
    """A context id given by the caller: a UUID or its text."""
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise ValueError(f"a pghistory context id is a UUID (or its text), not {value!r}")


def current_context() -> CurrentContext | None:
    """The active ambient context's id and metadata, or None outside one."""
    frame = _current.get()
    if frame is None:
        return None
    with frame._lock:
        return CurrentContext(frame.id, dict(frame.metadata))


def join(metadata: Mapping[str, Any]) -> Frame | None:
    """Merge *metadata* into the ambient context, if one is active; return it.

    What ``pghistory.context(conn, ...)`` does inside an ambient context: the
    connection's block takes the ambient id, and its keys join the ambient
    metadata as a nested block's would.
    """
    frame = _current.get()
    if frame is not None:
        frame.merge(metadata)
    return frame


class AmbientContext:
    """``pghistory.context(**metadata)`` without a connection.

    Use it as ``with`` or ``async with`` block, or call it (no ``with``) to
    merge metadata into the active ambient context (nothing happens outside
    one).
    """

    def __init__(
        self, metadata: Mapping[str, Any], id: UUID | str | None = None, *, fresh: bool = False
    ):
        # fresh: always a new outermost context, never joining one (a web
        # request is a boundary: the middlewares use it)
        self._fresh = fresh
        self._metadata = check_metadata(metadata)
        self._wanted = parse_id(id) if id is not None else None
        self._merged: Frame | None = None
        self._entered: Frame | None = None
        self._token: contextvars.Token[Frame | None] | None = None
        self._last: Frame | None = None  # the frame entered or merged last, kept after
        frame = None if fresh else _current.get()
        if frame is not None:
            self._merge(frame)

    def __repr__(self) -> str:
        frame = self._entered or self._merged
        state = "entered" if self._entered else "not entered"
        return f"<AmbientContext {frame.id if frame else '(no id)'} {state}>"

    @property
    def id(self) -> UUID | None:
        """The context's id once the block is entered (or merged), kept after."""
        return self._last.id if self._last is not None else None

    @property
    def metadata(self) -> dict[str, Any]:
        """The merged metadata once entered (or merged), else this block's own."""
        frame = self._last
        return dict(frame.metadata) if frame is not None else dict(self._metadata)

    def _merge(self, frame: Frame) -> None:
        if self._wanted is not None and self._wanted != frame.id:
            raise ContextError(
                f"pghistory.context(id={str(self._wanted)!r}) continues a context, but "
                f"context {str(frame.id)!r} is already active here; continue a context "
                "outside any other (at the start of the job or request)"
            )
        frame.merge(self._metadata)
        self._merged = self._last = frame

    def __enter__(self) -> AmbientContext:
        if self._entered is not None:
            raise ContextError("this pghistory context block is already entered")
        frame = None if self._fresh else _current.get()
        if frame is not None:
            if self._merged is not frame:
                self._merge(frame)
            with frame._lock:
                frame.depth += 1
        else:
            frame = Frame(self._wanted or uuid4(), dict(self._metadata), depth=1)
            self._token = _current.set(frame)
        self._entered = self._last = frame
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        frame, self._entered = self._entered, None
        if frame is None:
            return
        with frame._lock:
            frame.depth -= 1
        token, self._token = self._token, None
        if token is not None:
            try:
                _current.reset(token)
            except ValueError:
                # left in another contextvars.Context than it was entered in
                # (a generator driven from elsewhere): end it in this one
                _current.set(None)

    async def __aenter__(self) -> AmbientContext:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)


class Applier:
    """What one connection's current transaction carries of the ambient context.

    `pending()` says what to send before the next statement (the parameters
    of `apply_script`) or None; `sent()` records that it was sent; `new_transaction()`
    forgets it (a transaction began, or a savepoint holding it rolled back).
    """

    __slots__ = ("_applied", "_lock")

    def __init__(self) -> None:
        self._applied: tuple[Frame, int] | None = None
        self._lock = threading.Lock()

    def new_transaction(self) -> None:
        with self._lock:
            self._applied = None

    def pending(self) -> tuple[tuple[Frame, int] | None, tuple[str, str]] | None:
        frame = _current.get()
        with self._lock:
            applied = self._applied
        if frame is None:
            if applied is None:
                return None
            return None, ("", "")  # the block ended inside the transaction: clear it
        if applied is not None and applied[0] is frame and applied[1] == frame.version:
            return None
        version, params = frame.params()
        return (frame, version), params

    def sent(self, state: tuple[Frame, int] | None) -> None:
        with self._lock:
            self._applied = state
