"""`pghistory.ignore()` (record nothing for a block) and `pghistory.reset()`.

`ignore` sets ``pghistory.enabled = off`` for the block and puts back the
value it found; it follows the same transactional rules as a context (see
`._settings`), so neither a rollback inside the block nor one after it can
leave history switched off.

`reset` is for connection pools: it clears everything pghistory may have set
on a connection, and forgets the connection's bookkeeping.
"""

from __future__ import annotations

from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Generic, overload

import psycopg
from psycopg import sql

from ._context import ConnT, exit_failed, registry
from ._ops import Execute, Gen, arun, check_connection_message, run, run_any
from ._settings import CONTEXT_ID, CONTEXT_METADATA, ENABLED, NOW, Scope, apply, finish, set_config
from .errors import ContextError

_SWITCH_OFF = sql.SQL(
    "WITH previous AS MATERIALIZED"
    " (SELECT pg_catalog.current_setting('pghistory.enabled', true) AS value)"
    " SELECT value, pg_catalog.set_config('pghistory.enabled', 'off', {}), {} FROM previous"
)


class BaseIgnore(Generic[ConnT]):
    """What `Ignore` and `AsyncIgnore` share: all of the logic."""

    def __init__(self, conn: ConnT, local: bool = False):
        self._conn: ConnT = conn
        self._scope = Scope(local=bool(local))
        self._previous: str | None = None

    def _enter_gen(self) -> Gen[None]:
        if self._previous is not None:
            raise ContextError("this pghistory.ignore() block is already entered")
        stmt = Execute(_SWITCH_OFF.format(sql.Literal(self._scope.local), NOW))
        rows = yield from apply(self._conn, stmt, self._scope, entry=True)
        self._previous = rows[0][0] or ""

    def _exit_gen(self, raised: bool) -> Gen[None]:
        previous, self._previous = self._previous, None
        if previous is None:
            return

        def restore(is_local: bool) -> Execute:
            return set_config({ENABLED: previous}, is_local)

        yield from finish(self._conn, restore, self._scope, raised=raised)


class Ignore(BaseIgnore[psycopg.Connection[Any]]):
    """``with pghistory.ignore(conn):`` on a `psycopg.Connection`."""

    def __enter__(self) -> Ignore:
        run(self._conn, self._enter_gen())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            run(self._conn, self._exit_gen(exc is not None))
        except psycopg.Error:
            if not exit_failed("restore pghistory.enabled", exc):
                raise


class AsyncIgnore(BaseIgnore[psycopg.AsyncConnection[Any]]):
    """``async with pghistory.ignore(aconn):`` on a `psycopg.AsyncConnection`."""

    async def __aenter__(self) -> AsyncIgnore:
        await arun(self._conn, self._enter_gen())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await arun(self._conn, self._exit_gen(exc is not None))
        except psycopg.Error:
            if not exit_failed("restore pghistory.enabled", exc):
                raise


@overload
def ignore(conn: psycopg.Connection[Any], /, *, local: bool = False) -> Ignore: ...
@overload
def ignore(conn: psycopg.AsyncConnection[Any], /, *, local: bool = False) -> AsyncIgnore: ...
def ignore(
    conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any], /, *, local: bool = False
) -> Ignore | AsyncIgnore:
    """Record no history for what *conn* writes inside the block.

    ``with pghistory.ignore(conn):`` sets ``pghistory.enabled = off`` and, when
    the block ends (also by an exception), puts back the value it found, so
    blocks nest. Other connections keep recording. With *local* ``=True`` the
    setting is transaction-local (``SET LOCAL``): enter the block inside a
    transaction. Use ``async with`` on an `psycopg.AsyncConnection`.
    """
    if isinstance(conn, psycopg.AsyncConnection):
        return AsyncIgnore(conn, local)
    if isinstance(conn, psycopg.Connection):
        return Ignore(conn, local)
    raise TypeError(check_connection_message(conn))


_RESET = Execute(
    sql.SQL(
        "RESET pghistory.enabled;"
        " SELECT pg_catalog.set_config({}, '', false), pg_catalog.set_config({}, '', false), {}"
    ).format(sql.Literal(CONTEXT_ID), sql.Literal(CONTEXT_METADATA), NOW)
)


def _reset_gen(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> Gen[None]:
    registry.remove(conn)
    yield from finish(conn, lambda is_local: _RESET, Scope(local=False), raised=False)


@overload
def reset(conn: psycopg.Connection[Any]) -> None: ...
@overload
def reset(conn: psycopg.AsyncConnection[Any]) -> Coroutine[Any, Any, None]: ...
def reset(
    conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any],
) -> None | Coroutine[Any, Any, None]:
    """Clear every pghistory setting on *conn* and forget its bookkeeping.

    Clears the context settings and resets ``pghistory.enabled`` to the
    session default, for the session (committed on its own when the
    connection is idle; an aborted transaction is rolled back first). Meant as
    a connection pool's reset callback, so that no connection goes back into
    the pool carrying a context, whatever the code that borrowed it did::

        pool = psycopg_pool.ConnectionPool(dsn, reset=pghistory.reset)
        apool = psycopg_pool.AsyncConnectionPool(dsn, reset=pghistory.reset)

    Returns an awaitable for an `psycopg.AsyncConnection`.
    """
    return run_any(conn, _reset_gen(conn))
