"""`pghistory.reset()`: a connection back to how pghistory found it.

For connection pools: it clears everything pghistory may have set on a
connection (the context settings, ``pghistory.enabled``) and forgets the
connection's context bookkeeping, whatever the code that borrowed it did.
"""

from __future__ import annotations

from psycopg import sql

from ._calls import AnyConn
from ._context import registry
from ._ops import Execute, Gen, sync_twin
from ._settings import CONTEXT_ID, CONTEXT_METADATA, NOW, Scope, finish

_RESET = Execute(
    sql.SQL(
        "RESET pghistory.enabled;"
        " SELECT pg_catalog.set_config({}, '', false), pg_catalog.set_config({}, '', false), {}"
    ).format(sql.Literal(CONTEXT_ID), sql.Literal(CONTEXT_METADATA), NOW)
)


def reset_gen(conn: AnyConn) -> Gen[None]:
    """Clear every pghistory setting on *conn* and forget its bookkeeping.

    Clears the context settings and resets ``pghistory.enabled`` to the
    session default, for the session (committed on its own when the
    connection is idle; an aborted transaction is rolled back first). Meant as
    a connection pool's reset callback, so that no connection goes back into
    the pool carrying a context, whatever the code that borrowed it did::

        pool = psycopg_pool.ConnectionPool(dsn, reset=pghistory.reset)
        apool = psycopg_pool.AsyncConnectionPool(dsn, reset=pghistory.aio.reset)
    """
    registry.remove(conn)
    yield from finish(conn, lambda is_local: _RESET, Scope(local=False), raised=False)


reset = sync_twin(reset_gen)
