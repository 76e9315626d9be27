"""`pghistory.ignore()`: record nothing for a block.

It sets ``pghistory.enabled = off`` for the block and puts back the
value it found; it follows the same transactional rules as a context (see
`._settings`), so neither a rollback inside the block nor one after it can
leave history switched off. Its logic is `BaseIgnore`; `Ignore` and
`AsyncIgnore` only add the ``with`` and ``async with`` adapters of `._blocks`.
"""

from __future__ import annotations

from typing import Any, Generic, overload

import psycopg
from psycopg import sql

from ._blocks import AsyncBlock, ConnT, SyncBlock
from ._ops import Execute, Gen, check_connection_message
from ._settings import ENABLED, NOW, Scope, apply, finish, set_config, set_local
from .errors import ContextError

_SWITCH_OFF = sql.SQL(
    "WITH previous AS MATERIALIZED"
    " (SELECT pg_catalog.current_setting('pghistory.enabled', true) AS value)"
    " SELECT value, pg_catalog.set_config('pghistory.enabled', 'off', false), {} FROM previous"
).format(NOW)
_PREVIOUS = sql.SQL("SELECT pg_catalog.current_setting('pghistory.enabled', true)")


class BaseIgnore(Generic[ConnT]):
    """What `Ignore` and `AsyncIgnore` share: all of the logic."""

    def __init__(self, conn: ConnT, local: bool = False):
        self._conn: ConnT = conn
        self._scope = Scope(local=bool(local))
        self._previous: str | None = None

    def _enter_gen(self) -> Gen[None]:
        if self._previous is not None:
            raise ContextError("this pghistory.ignore() block is already entered")
        if self._scope.local:  # the previous value first: its rows are the first result
            stmt = Execute(_PREVIOUS + sql.SQL("; ") + set_local({ENABLED: "off"}), None)
        else:
            stmt = Execute(_SWITCH_OFF)
        rows = yield from apply(self._conn, stmt, self._scope, entry=True)
        self._previous = rows[0][0] or ""

    def _exit_gen(self, raised: bool) -> Gen[None]:
        previous, self._previous = self._previous, None
        if previous is None:
            return

        def restore(is_local: bool) -> Execute:
            return set_config({ENABLED: previous}, is_local)

        yield from finish(self._conn, restore, self._scope, raised=raised)


class Ignore(BaseIgnore[psycopg.Connection[Any]], SyncBlock):
    """``with pghistory.ignore(conn):`` on a `psycopg.Connection`."""

    _exit_what = "restore pghistory.enabled"


class AsyncIgnore(BaseIgnore[psycopg.AsyncConnection[Any]], AsyncBlock):
    """``async with pghistory.ignore(aconn):`` on a `psycopg.AsyncConnection`."""

    _exit_what = "restore pghistory.enabled"


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

    Only the tracked table's owner (a login that is, or is a member of, the
    owner role) and superusers may write without history: anyone else's
    write to a tracked table inside the block fails with
    `psycopg.errors.InsufficientPrivilege` (README, "Security model").
    """
    if isinstance(conn, psycopg.AsyncConnection):
        return AsyncIgnore(conn, local)
    if isinstance(conn, psycopg.Connection):
        return Ignore(conn, local)
    raise TypeError(check_connection_message(conn))
