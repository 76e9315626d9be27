"""psycopg connection classes that apply the ambient context by themselves.

`HistoryConnection` and `AsyncHistoryConnection` are `psycopg.Connection`
and `psycopg.AsyncConnection` that, before a statement, apply the ambient
context (`pghistory.context(**metadata)`) to the transaction the statement
runs in, transaction-scoped, with at most one ``set_config`` statement per
transaction and none outside a context. Make them with ``.connect()``, or
give them to a pool::

    pool = psycopg_pool.ConnectionPool(dsn, connection_class=pgh.HistoryConnection,
                                       reset=pgh.reset)

psycopg has no public "transaction began" hook, so the classes extend the
two methods every transaction start goes through (the one that sends
``BEGIN``, for statements and ``conn.transaction()`` blocks alike, and the
one each statement calls first); `tests/test_integrations_psycopg.py` pins
that down on every release the package accepts. An autocommit connection
outside ``conn.transaction()`` runs each statement in a transaction of its
own, which a transaction-scoped setting cannot outlive: nothing is applied
there.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from ._ambient import APPLY_SQL, Applier

_IDLE = TransactionStatus.IDLE
_INTRANS = TransactionStatus.INTRANS


def _statement(params: tuple[str, str]) -> sql.Composed:
    """`APPLY_SQL` with its values bound client-side (the simple protocol, no
    prepared statement: what a transaction pooler accepts)."""
    return sql.SQL(APPLY_SQL.replace("%s", "{}")).format(*(sql.Literal(p) for p in params))


class _Mixin:
    """What both classes add: an `Applier` and the two extended methods."""

    _pgh_applier: Applier

    def _get_tx_start_command(self) -> bytes:
        self._pgh_applier.new_transaction()
        return super()._get_tx_start_command()  # type: ignore[misc, no-any-return]

    def _start_query(self) -> Any:
        yield from super()._start_query()  # type: ignore[misc]
        if self.pgconn.transaction_status != _INTRANS:  # type: ignore[attr-defined]
            return  # autocommit without a transaction, or a failed one
        pending = self._pgh_applier.pending()
        if pending is None:
            return
        state, params = pending
        yield from self._exec_command(_statement(params))  # type: ignore[attr-defined]
        self._pgh_applier.sent(state)


class HistoryConnection(_Mixin, psycopg.Connection[Any]):
    """A `psycopg.Connection` that applies the ambient pghistory context."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._pgh_applier = Applier()
        super().__init__(*args, **kwargs)


class AsyncHistoryConnection(_Mixin, psycopg.AsyncConnection[Any]):
    """A `psycopg.AsyncConnection` that applies the ambient pghistory context."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._pgh_applier = Applier()
        super().__init__(*args, **kwargs)
