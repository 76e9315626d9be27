"""SQLAlchemy 2: ``pghistory.sqlalchemy.instrument(engine)``.

Every transaction an instrumented `Engine` or `AsyncEngine` runs (Core
connections and ORM sessions alike) carries the ambient context
(``pghistory.context(**metadata)``) active when its statements run,
transaction-scoped: one script of ``SET LOCAL`` statements (one round
trip, the form Citus passes on to its nodes) before the first statement of
the transaction, none outside a context, nothing left
on the pooled connection after. It hooks SQLAlchemy's event API
(``begin``, ``rollback_savepoint``, ``before_cursor_execute``) and supports
the psycopg (3) driver, ``postgresql+psycopg://``.

Install with ``pip install pghistory[sqlalchemy]``.
"""

from __future__ import annotations

from typing import Any, TypeVar, Union

try:
    from sqlalchemy import event
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.ext.asyncio import AsyncEngine
except ImportError as ex:  # pragma: no cover - exercised by a subprocess test
    raise ImportError(
        "pghistory.sqlalchemy needs SQLAlchemy 2: pip install 'pghistory[sqlalchemy]'"
    ) from ex

from ._ambient import Applier, apply_script

__all__ = ["instrument"]

EngineT = TypeVar("EngineT", bound=Union[Engine, AsyncEngine])

_DRIVERS = ("psycopg", "psycopg_async")
_KEY = "pghistory.applier"


def _applier(conn: Connection) -> Applier:
    info = conn.connection.info  # kept with the DBAPI connection across checkouts
    applier = info.get(_KEY)
    if applier is None:
        applier = info[_KEY] = Applier()
    return applier


def _on_begin(conn: Connection) -> None:
    _applier(conn).new_transaction()


def _on_rollback_savepoint(conn: Connection, name: str, context: Any) -> None:
    # the savepoint may have held the SET LOCAL: send it again if needed
    _applier(conn).new_transaction()


def _before_cursor_execute(
    conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    dbapi_conn = conn.connection.dbapi_connection
    if dbapi_conn is None or getattr(dbapi_conn, "autocommit", False):
        return  # AUTOCOMMIT: each statement is a transaction of its own
    applier = _applier(conn)
    pending = applier.pending()
    if pending is None:
        return
    state, params = pending
    apply_cursor = dbapi_conn.cursor()
    try:
        apply_cursor.execute(apply_script(params))
    finally:
        apply_cursor.close()
    applier.sent(state)


def instrument(engine: EngineT) -> EngineT:
    """Apply the ambient pghistory context to every transaction of *engine*.

    *engine* is an `Engine` or an `AsyncEngine` using the psycopg driver
    (``postgresql+psycopg://``); returns it. Instrumenting twice does nothing
    more. Refuses another driver with ValueError.
    """
    sync_engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
    if not isinstance(sync_engine, Engine):
        raise TypeError(
            "pghistory.sqlalchemy.instrument() takes a sqlalchemy Engine or AsyncEngine, "
            f"not {type(engine).__qualname__}"
        )
    driver = sync_engine.dialect.driver
    if sync_engine.dialect.name != "postgresql" or driver not in _DRIVERS:
        raise ValueError(
            "pghistory.sqlalchemy.instrument() supports PostgreSQL through the psycopg (3) "
            f"driver, not {sync_engine.dialect.name}+{driver}: use a postgresql+psycopg:// URL"
        )
    for name, fn in (
        ("begin", _on_begin),
        ("rollback_savepoint", _on_rollback_savepoint),
        ("before_cursor_execute", _before_cursor_execute),
    ):
        if not event.contains(sync_engine, name, fn):
            event.listen(sync_engine, name, fn)
    return engine
