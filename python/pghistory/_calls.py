"""What the wrappers of the SQL API share: argument checks and SQL pieces.

Arguments are checked and the SQL composed when a wrapper is called, before
anything is sent; table names are passed as quoted text parameters (see
`._names`), never spliced into SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union
from uuid import UUID

import psycopg
from psycopg import sql

from ._ops import Execute, Gen, Row

AnyConn = Union[psycopg.Connection[Any], psycopg.AsyncConnection[Any]]

#: An object's primary key: in its own type, or as text.
ObjId = Union[int, str, UUID]

PARAM = sql.Placeholder()


def scalar(stmt: Execute) -> Gen[Any]:
    """Run *stmt*; its first column of its first row (None without rows)."""
    rows: list[Row] = yield stmt
    return rows[0][0] if rows else None


def quoting_context(conn: object) -> Any:
    """The connection, which quotes identifiers with libpq; a wrong type is
    left to the driver, which names it."""
    return conn if isinstance(conn, (psycopg.Connection, psycopg.AsyncConnection)) else None


def column_names(value: Sequence[str] | None, what: str) -> list[str] | None:
    """A list of names as a list (None stays None); a lone str is refused."""
    if value is None:
        return None
    if isinstance(value, str):
        raise TypeError(f"{what} must be a list, such as [{value!r}], not a str")
    return list(value)


def named_args(args: Sequence[tuple[str, sql.Composable, list[Any]]]) -> tuple[sql.Composable, list[Any]]:
    """``name => expr, ...`` and the parameters, in order."""
    parts = [sql.SQL("{} => {}").format(sql.Identifier(name), expr) for name, expr, _ in args]
    params = [p for _, _, ps in args for p in ps]
    return sql.SQL(", ").join(parts), params


def typed(type_: str) -> sql.Composable:
    """A parameter cast to *type_*: ``%s::type_``."""
    return sql.SQL("{}::{}").format(PARAM, sql.SQL(type_))


def obj_id_text(obj_id: ObjId) -> str:
    """An object's primary key as the text the SQL API takes."""
    if isinstance(obj_id, bool) or not isinstance(obj_id, (int, str, UUID)):
        raise TypeError(f"obj_id must be an int, str or UUID, not {type(obj_id).__qualname__}")
    return str(obj_id)
