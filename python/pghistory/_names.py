"""Table names as the Python API accepts them, quoted for the SQL API.

A table is named by a string, ``"orders"`` or ``"schema.orders"``, or by a
`psycopg.sql.Identifier`, ``sql.Identifier("My Schema", "Order Lines")``.
A string is a name, not SQL: each dotted part is taken literally (case and
spaces kept) and quoted, exactly as ``sql.Identifier`` would; a name that
itself contains a dot needs an ``sql.Identifier``. The quoted text is sent as
a parameter and cast to ``regclass`` (or parsed by ``parse_ident()``) on the
server, so no name ever becomes part of the SQL text.
"""

from __future__ import annotations

from typing import Union

from psycopg import sql
from psycopg.abc import AdaptContext

#: A table name: ``"table"``, ``"schema.table"`` or an ``sql.Identifier``.
TableName = Union[str, sql.Identifier]


def identifier(name: TableName, what: str = "table") -> sql.Identifier:
    """Return *name* as an `sql.Identifier`, checking its shape."""
    if isinstance(name, sql.Identifier):
        return name
    if not isinstance(name, str):
        raise TypeError(
            f"a {what} name must be a str such as 'schema.table' or a "
            f"psycopg.sql.Identifier, not {type(name).__qualname__}"
        )
    parts = name.split(".")
    if len(parts) > 2 or "" in parts:
        raise ValueError(
            f"{name!r} is not a {what} name: use 'table' or 'schema.table' "
            "(for a name that contains a dot, pass psycopg.sql.Identifier(schema, name))"
        )
    return sql.Identifier(*parts)


def quoted(name: TableName, context: AdaptContext | None, what: str = "table") -> str:
    """Return *name* as quoted SQL text, such as ``"audit"."Orders"``."""
    return identifier(name, what).as_string(context)
