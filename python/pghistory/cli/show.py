"""``pghistory show SLUG``: one event in full (its header, snapshot and diff)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .. import _browse
from . import add_parser
from .log import CliError, add_output_arguments, connect, emit, render


def register(subparsers: Any) -> None:
    """Adds ``pghistory show``."""
    parser = add_parser(subparsers, "show", help="one event in full, by its slug (public.orders_event:3)")
    parser.add_argument("slug", help="the event's pgh_slug: <event table>:<pgh_id>, as pghistory log prints it")
    add_output_arguments(parser)
    parser.set_defaults(run=run)


def parse_slug(slug: str) -> tuple[str, int]:
    """(event table, pgh_id) of a slug; CliError when it is not one."""
    table, sep, pgh_id = slug.rpartition(":")
    if not sep or not table or not pgh_id.isdigit():
        raise CliError(f"{slug!r} is not an event's slug", "a slug is <event table>:<pgh_id>, e.g. public.orders_event:3")
    return table, int(pgh_id)


def run(args: argparse.Namespace) -> int:
    """Prints the event, with its whole snapshot after the diff."""
    table, pgh_id = parse_slug(args.slug)
    with connect(args) as conn:
        try:
            found = list(_browse.newest_first(conn, _browse.Filters(table=table, pgh_id=pgh_id), 1))
        except _browse.HistoryError as exc:
            raise CliError(exc.message, exc.hint) from exc
    if not found:
        raise CliError(f"no event {args.slug}", "pghistory log lists the events and their slugs")
    if args.format == "json":
        return emit(found, args)
    event = found[0]
    if event.pgh_diff:  # the full snapshot too: log shows only what changed
        snapshot = "\n".join(f"    {column} = {value}" for column, value in _snapshot(event.pgh_data))
        text = render(event, args.color == "always") + "\nSnapshot:\n" + snapshot + "\n"
    else:
        text = render(event, args.color == "always")
    print(text, end="")
    return 0


def _snapshot(data: dict[str, object]) -> list[tuple[str, str]]:
    return [(column, json.dumps(value, ensure_ascii=False)) for column, value in sorted(data.items())]
