"""``pghistory status [--dsn DSN]``: the install's health and each tracked
table's, from ``pghistory.status()``, with the command to run for each
problem. Exits 0 when every check passes, 3 when some need action."""

from __future__ import annotations

import argparse
from typing import Any

from . import CommandError, add_parser, connect

#: Exit status when some check failed (the report says what to run).
NEEDS_ACTION = 3


def register(subparsers: Any) -> None:
    parser = add_parser(
        subparsers,
        "status",
        help="version, install method, event triggers and each tracked table's health",
        description="Report pghistory's version and install method, whether ALTER TABLE is followed, and each "
        "tracked table's health, with the command to run for each problem. Exit status 3 when some check failed.",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        if conn.execute("SELECT to_regprocedure('pghistory.status()')").fetchone() == (None,):
            raise CommandError("pghistory is not installed in this database (run: pghistory install)")
        rows = conn.execute("SELECT object, aspect, ok, detail, action FROM pghistory.status()").fetchall()
    width = max(len(f"{obj} {aspect}") for obj, aspect, *_ in rows)
    for obj, aspect, ok, detail, _ in rows:
        print(f"{'ok  ' if ok else 'FAIL'}  {f'{obj} {aspect}':<{width}}  {detail}")
    actions = [f"{obj} {aspect}: {action}" for obj, aspect, ok, _, action in rows if not ok and action]
    if actions:
        print("\nTo do:")
        for line in actions:
            print(f"  {line}")
    return 0 if all(ok for _, _, ok, _, _ in rows) else NEEDS_ACTION
