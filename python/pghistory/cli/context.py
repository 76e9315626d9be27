"""``pghistory context CONTEXT_ID``: everything one context (one request, one job) did, across tables, in order."""

from __future__ import annotations

import argparse
from typing import Any
import uuid

from .. import _browse
from . import add_parser
from .log import CliError, add_output_arguments, connect, emit


def register(subparsers: Any) -> None:
    """Adds ``pghistory context``."""
    parser = add_parser(subparsers, "context", help="every event of one context, oldest first, across tables")
    parser.add_argument("context_id", help="the context's uuid (pgh_context_id)")
    add_output_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Prints the context's events in the order they were written."""
    try:
        context_id = uuid.UUID(args.context_id)
    except ValueError:
        raise CliError(f"{args.context_id!r} is not a context id (a uuid)",
                       "pghistory log prints each event's context id") from None
    with connect(args) as conn:
        try:
            events = list(_browse.newest_first(conn, _browse.Filters(context_id=context_id)))
        except _browse.HistoryError as exc:
            raise CliError(exc.message, exc.hint) from exc
    if not events:
        raise CliError(f"no events of context {context_id} that you may read",
                       "check the id; events of tables you cannot SELECT from are not shown")
    events.reverse()
    return emit(events, args)
