"""``pghistory as-of TABLE TIME``: the rows of a tracked table as they were at TIME (``pghistory.as_of``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from psycopg import sql

from .. import _browse
from . import add_parser
from .blame import table
from .log import CliError, connect


def register(subparsers: Any) -> None:
    """Adds ``pghistory as-of``."""
    parser = add_parser(subparsers, "as-of", help="a tracked table as it was at a moment")
    parser.add_argument("table", help="a tracked table")
    parser.add_argument("time", help="the moment: 2026-11-01, '2026-11-01 12:00+00', '2 hours ago', yesterday")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or JSON lines")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Prints the table's rows at that moment, in key order."""
    with connect(args) as conn:
        try:
            _browse.sources(conn, args.table)
            at = _browse.parse_time(conn, args.time, "TIME")
        except _browse.HistoryError as exc:
            raise CliError(exc.message, exc.hint) from exc
        found = conn.execute("SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class AS c "
                             "JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace "
                             "WHERE c.oid = %s::regclass", (args.table,)).fetchone()
        assert found is not None
        relation = sql.Identifier(str(found[0]), str(found[1]))
        rows = conn.execute(sql.SQL("SELECT pg_catalog.to_jsonb(r) FROM pghistory.as_of(NULL::{}, {}) AS r "
                                    "ORDER BY 1").format(relation, sql.Literal(at))).fetchall()
        columns = [str(r[0]) for r in conn.execute(
            "SELECT a.attname::text FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = %s::regclass "
            "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum", (args.table,)).fetchall()]
    if args.format == "json":
        for (row,) in rows:
            print(json.dumps(row, ensure_ascii=False))
        return 0
    print(table(columns, [[json.dumps(row.get(c), ensure_ascii=False) for c in columns] for (row,) in rows]), end="")
    return 0
