"""psycopg connection classes that apply the ambient context by themselves.

`HistoryConnection` and `AsyncHistoryConnection` are `psycopg.Connection`
and `psycopg.AsyncConnection` that, before a statement, apply the ambient
context (`pghistory.context(**metadata)`) to the transaction the statement
runs in, transaction-scoped, with at most one script of ``SET LOCAL``
statements (one round trip) per transaction and none outside a context. Make them with ``.connect()``, or
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
from psycopg import errors, generators, pq
from psycopg._encodings import conn_encoding
from psycopg.abc import PQGen
from psycopg.pq import TransactionStatus

from ._ambient import Applier, apply_script, apply_statements

_IDLE = TransactionStatus.IDLE
_INTRANS = TransactionStatus.INTRANS


def _script(conn: Any, params: tuple[str, str]) -> PQGen[None]:
    """Send `apply_script` as one simple Query (no prepared statement: what
    a transaction pooler accepts) and check each of its results; in pipeline
    mode, queue its statements one by one (a pipeline takes one statement
    per query, and sends them together anyway)."""
    if conn._pipeline:
        for stmt in apply_statements(params):
            yield from conn._exec_command(stmt)
        return
    conn.pgconn.send_query(apply_script(params).as_bytes(conn))
    results = yield from generators.execute(conn.pgconn)
    for result in results:
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise errors.error_from_result(result, encoding=conn_encoding(conn))


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
        yield from _script(self, params)
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
