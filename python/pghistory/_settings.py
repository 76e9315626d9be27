"""Setting and clearing pghistory's settings so that they last exactly as long
as a Python block, whatever the connection's transaction does meanwhile.

The settings (``pghistory.context_id``, ``pghistory.context_metadata``,
``pghistory.enabled``) are PostgreSQL configuration parameters, and those are
transactional: a value set inside a transaction that rolls back is undone.
The rules, shared by `pghistory.context()` and `pghistory.ignore()`:

Entering a block (`apply`):

- session mode, connection idle: set the values for the session; on a
  non-autocommit connection, commit that statement on its own, so a rollback
  later inside the block cannot undo it (the block is *durable*);
- session mode, transaction open: set the values inside it (a rollback of that
  transaction undoes them, together with everything else it did);
- local mode: set the values for the current transaction only; an autocommit
  connection outside a transaction is refused (`ContextError`), since the
  values would end with the statement that sets them.

Leaving a block (`finish`), session mode:

- connection idle: clear for the session (and commit on its own);
- transaction aborted (an error inside the block): roll it back, since nothing
  else can run in it anyway, then clear as above; inside a
  ``conn.transaction()`` block psycopg forbids that rollback, and that block,
  which began before ours, will roll back to the values from before ours;
- transaction open and the block raised, when that transaction began inside
  the block: roll it back too, as ``with conn:`` does; a later rollback would
  otherwise bring back values committed before it (whether it began inside
  is known from ``now()``, the start time of a transaction, read at entry
  and, only on this path, at exit);
- transaction open otherwise: clear inside it.

Leaving a block, local mode: clear inside the transaction if it is still
open; a finished transaction took the values with it.

Transaction-scoped values are set by ``SET LOCAL`` statements (`set_local`),
the one form Citus passes on to the nodes where the events of distributed
tables are written; session values by ``set_config()``, which Citus never
passes on (README, "Distributed tables (Citus)").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from ._ops import Commit, Execute, Gen, Row, Rollback
from .errors import ContextError

IDLE = TransactionStatus.IDLE
INERROR = TransactionStatus.INERROR
INTRANS = TransactionStatus.INTRANS
UNKNOWN = TransactionStatus.UNKNOWN

CONTEXT_ID = "pghistory.context_id"
CONTEXT_METADATA = "pghistory.context_metadata"
ENABLED = "pghistory.enabled"


def set_config(values: Mapping[str, str], is_local: bool) -> Execute:
    """One statement setting every name in *values*: for the session
    (``set_config()``, its last column ``now()``, as `apply` needs), or for
    the transaction (`set_local`, no rows)."""
    if is_local:
        return Execute(set_local(values), None)
    calls = [
        sql.SQL("pg_catalog.set_config({}, {}, false)").format(sql.Placeholder(), sql.Placeholder())
        for _ in values
    ]
    params: list[Any] = []
    for name, value in values.items():
        params += [name, value]
    return Execute(sql.SQL("SELECT ") + sql.SQL(", ").join([*calls, NOW]), params)


#: Citus passes settings on to the nodes a transaction writes on (whose
#: triggers write the events of distributed tables) only when they are set
#: by ``SET LOCAL``, and only while this is 'local' (never those set by
#: ``set_config()``). Elsewhere it is an unused placeholder setting.
_PROPAGATE = sql.SQL("SET LOCAL citus.propagate_set_commands = 'local'")


def set_local_statements(values: Mapping[str, str]) -> list[sql.Composed]:
    """The ``SET LOCAL`` statements setting every name in *values* for the
    current transaction, in the form Citus propagates (`_PROPAGATE` first)."""
    return [
        sql.Composed([_PROPAGATE]),
        *(
            sql.SQL("SET LOCAL {} = {}").format(sql.Identifier(*name.split(".")), sql.Literal(value))
            for name, value in values.items()
        ),
    ]


def set_local(values: Mapping[str, str]) -> sql.Composed:
    """`set_local_statements` as one script, one round trip (the simple protocol).

    (Citus passes on the text of the whole script for each of its ``SET
    LOCAL`` statements, so the nodes run it more than once: harmless, each
    statement sets the same value again.)"""
    return sql.SQL("; ").join(set_local_statements(values))


NOW = sql.SQL("pg_catalog.now()")


@dataclass
class Scope:
    """What a block knows about the settings it made."""

    local: bool
    #: Committed for the session at some point: a later rollback cannot undo them.
    durable: bool = False
    #: ``now()`` of the transaction open when the block was entered (None: none was).
    entered_in: dt.datetime | None = None


def apply(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any],
          stmt: Execute, scope: Scope, *, entry: bool) -> Gen[list[Row]]:
    """Run *stmt* (which sets settings, and ends with ``now()`` unless local) by the entry
    rules above, noting in *scope* what it learns; returns its rows."""
    status = conn.info.transaction_status
    if scope.local and status == IDLE and conn.autocommit:
        raise ContextError(
            "local=True needs an open transaction, and this autocommit connection "
            "has none: the settings would end with the statement setting them. "
            "Enter the block inside `with conn.transaction():` (or leave local=False)"
        )
    own_transaction = status == IDLE and not conn.autocommit
    try:
        rows: list[Row] = yield stmt
        if own_transaction and not scope.local:
            yield Commit()
    except psycopg.Error:
        if own_transaction:
            yield Rollback()  # it held nothing but our statement
        raise
    if status == IDLE and not scope.local:
        scope.durable = True
    if entry and status != IDLE and not scope.local:
        scope.entered_in = rows[0][-1]  # _began_inside() needs it; local mode never does
    return rows


def _began_inside(scope: Scope) -> Gen[bool]:
    """Whether the transaction open now began after the block was entered."""
    if scope.durable or scope.entered_in is None:
        return True
    rows: list[Row] = yield Execute(sql.SQL("SELECT ") + NOW)
    return bool(rows[0][0] != scope.entered_in)


def finish(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any],
           clear: Callable[[bool], Execute], scope: Scope, *, raised: bool) -> Gen[None]:
    """Run ``clear(is_local)`` by the exit rules above."""
    if conn.closed or conn.broken:
        return
    status = conn.info.transaction_status
    if scope.local:
        if status not in (IDLE, INERROR, UNKNOWN):
            yield clear(True)
        return
    if status == INERROR or (status != IDLE and raised and (yield from _began_inside(scope))):
        try:
            yield Rollback()
        except psycopg.ProgrammingError:
            pass  # inside conn.transaction(): that block ends the transaction
        status = conn.info.transaction_status
    if status == IDLE:
        yield from apply(conn, clear(False), Scope(local=False), entry=False)
    elif status != INERROR:
        yield clear(False)
