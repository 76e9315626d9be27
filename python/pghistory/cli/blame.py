"""``pghistory blame TABLE OBJ_ID``: for each column of one row, its value and the event that last changed it
(``pghistory.blame``)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from psycopg import sql

from .. import _browse
from . import add_parser
from .log import CliError, connect


def register(subparsers: Any) -> None:
    """Adds ``pghistory blame``."""
    parser = add_parser(subparsers, "blame", help="each column of one row, with the event that last changed it")
    parser.add_argument("table", help="a tracked table")
    parser.add_argument("obj_id", help="the row's primary key value")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or JSON lines")
    parser.set_defaults(run=run)


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Rows as aligned text columns under their headers."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in [headers, *rows]]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> int:
    """Prints one line per tracked column."""
    with connect(args) as conn:
        try:
            _browse.sources(conn, args.table)  # the one-line errors for unknown, untracked, unreadable tables
        except _browse.HistoryError as exc:
            raise CliError(exc.message, exc.hint) from exc
        rows = conn.execute(sql.SQL(
            'SELECT b."column", b.value, b.pgh_id, b.pgh_created_at, b.pgh_label, b.pgh_context_id, b.pgh_context '
            "FROM pghistory.blame({}::regclass, {}::text) AS b").format(
                sql.Literal(args.table), sql.Literal(args.obj_id))).fetchall()
    if args.format == "json":
        for column, value, pgh_id, at, label, context_id, context in rows:
            print(json.dumps({"column": column, "value": value, "pgh_id": pgh_id,
                              "pgh_created_at": at.isoformat() if at else None, "pgh_label": label,
                              "pgh_context_id": str(context_id) if context_id else None, "pgh_context": context},
                             ensure_ascii=False))
        return 0
    lines = [[column, json.dumps(value, ensure_ascii=False), str(pgh_id) if pgh_id is not None else "",
              at.isoformat(sep=" ") if at else "", label or "",
              " ".join(f"{k}={v}" for k, v in sorted((context or {}).items()))]
             for column, value, pgh_id, at, label, context_id, context in rows]
    print(table(["column", "value", "pgh_id", "date", "label", "context"], lines), end="")
    return 0
