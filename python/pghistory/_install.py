"""`install()`: put pghistory into a database, or upgrade it to this
package's version.

The ways in (``method``):

``"extension"``
    ``CREATE EXTENSION`` from the extension files on the server
    (``make install``, ``pgxn install``).
``"auto"``
    the first way in this server offers.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Literal, Union, overload

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from ._ops import Execute, Gen, Rollback, Row, run_any
from .errors import ExtensionNotAvailable

AnyConn = Union[psycopg.Connection[Any], psycopg.AsyncConnection[Any]]

Method = Literal["auto", "extension"]
#: Every value `install()` takes for ``method``.
METHODS: tuple[Method, ...] = ("auto", "extension")


def _install_gen(conn: AnyConn, method: Method) -> Gen[str]:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    own_transaction = conn.info.transaction_status == TransactionStatus.IDLE and not conn.autocommit
    try:
        yield Execute(sql.SQL("CREATE EXTENSION IF NOT EXISTS pghistory"))
    except psycopg.Error as ex:
        text = f"{ex.diag.message_primary or ''} {ex.diag.message_detail or ''}"
        if own_transaction:
            yield Rollback()
        if ex.sqlstate in ("58P01", "0A000") and ("control file" in text or "not available" in text):
            raise ExtensionNotAvailable(
                "the pghistory extension is not installed on this PostgreSQL server: "
                "install its files on the database host (`make install` in a pghistory "
                "checkout, with PG_CONFIG pointing at that server's pg_config, or "
                "`pgxn install pghistory`), then call pghistory.install() again "
                f"(server said: {ex.diag.message_primary})"
            ) from ex
        raise
    rows: list[Row] = yield Execute(
        sql.SQL("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'pghistory'")
    )
    version: str = rows[0][0]
    return version


@overload
def install(conn: psycopg.Connection[Any], method: Method = ...) -> str: ...
@overload
def install(conn: psycopg.AsyncConnection[Any], method: Method = ...) -> Coroutine[Any, Any, str]: ...
def install(conn: AnyConn, method: Method = "auto") -> str | Coroutine[Any, Any, str]:
    """Install pghistory into the connection's database by `method`; return
    the installed version.

    Raises `pghistory.errors.ExtensionNotAvailable` when the server has no
    pghistory extension files (they are installed with ``make install`` on
    the database host).
    """
    return run_any(conn, _install_gen(conn, method))
