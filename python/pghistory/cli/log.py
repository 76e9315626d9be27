"""``pghistory log [TABLE [OBJ_ID]]``: history newest first, each event with its diff, as ``git log -p``.

Text on a terminal goes through a pager (``$PAGER``, else ``less`` with
``LESS=FRX`` as git sets it) and is coloured; piped, it is plain.
``--format json`` prints one JSON object per line with the columns of
``pghistory.aggregate_events``. The rendering lives here for ``show`` and
``context`` too.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any

import psycopg

from .. import _browse
from .._rows import EVENT_COLUMNS, Event
from . import CommandError, add_parser
from . import connect as _connect

RESET, BOLD, RED, GREEN, YELLOW, CYAN = "\033[m", "\033[1m", "\033[31m", "\033[32m", "\033[33m", "\033[36m"


def register(subparsers: Any) -> None:
    """Adds ``pghistory log``."""
    parser = add_parser(subparsers, "log", help="history newest first, with each event's diff (like git log -p)")
    parser.add_argument("table", nargs="?", help="a tracked table (or its event table); default: every tracked table")
    parser.add_argument("obj_id", nargs="?", help="one row's primary key value: that object's history")
    parser.add_argument("--since", "--after", metavar="TIME", help="events at or after TIME (2026-11-01, '2 hours ago', yesterday)")
    parser.add_argument("--until", "--before", metavar="TIME", help="events before TIME")
    parser.add_argument("--label", action="append", metavar="LABEL", help="events with this label (repeatable)")
    parser.add_argument("--context", action="append", metavar="KEY=VALUE", default=[],
                        help="events whose context metadata has KEY=VALUE (repeatable: all must hold)")
    parser.add_argument("--context-id", metavar="UUID", help="events of one context")
    parser.add_argument("--changed", action="append", metavar="COLUMN", help="events whose diff changes COLUMN (repeatable: any)")
    parser.add_argument("-n", "--max-count", type=int, metavar="N", help="at most N events")
    add_output_arguments(parser)
    parser.set_defaults(run=run)


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """``--format``, ``--color`` and ``--no-pager``, shared by log, show and context."""
    parser.add_argument("--format", choices=("text", "json"), default="text", help="text (default) or JSON lines")
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                        help="colour the text: on a terminal only (auto, default), always, never")
    parser.add_argument("--no-pager", action="store_true", help="never page the output")


class CliError(CommandError):
    """A mistake the user can fix: what is wrong, and (in parentheses) what to do."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(f"{message} ({hint})" if hint else message)


def connect(args: argparse.Namespace) -> psycopg.Connection[Any]:
    """The database the command line names; a CliError saying how to name it when it cannot be reached."""
    try:
        return _connect(args)
    except psycopg.OperationalError as exc:
        lines = str(exc).strip().splitlines() or ["connection failed"]
        raise CliError(f"cannot connect to the database: {lines[0].removeprefix('connection failed: ').strip()}",
                       "give the database with --dsn, DATABASE_URL or the PG* environment variables") from exc


def filters_from(conn: Any, args: argparse.Namespace) -> _browse.Filters:
    """The Filters the command line asks for; CliError for values that cannot be read."""
    context: dict[str, str] = {}
    for item in args.context:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"--context {item!r} is not KEY=VALUE", "for example --context user=alice")
        context[key] = value
    context_id = None
    if args.context_id is not None:
        try:
            context_id = uuid.UUID(args.context_id)
        except ValueError:
            raise CliError(f"--context-id {args.context_id!r} is not a uuid",
                           "give the id of a context, as pghistory log prints it") from None
    if args.max_count is not None and args.max_count < 0:
        raise CliError(f"-n {args.max_count} is negative", "give the number of events to show")
    return _browse.Filters(
        table=args.table, obj_id=args.obj_id,
        since=_browse.parse_time(conn, args.since, "--since") if args.since else None,
        until=_browse.parse_time(conn, args.until, "--until") if args.until else None,
        labels=args.label, context=context, context_id=context_id, changed=args.changed,
    )


def run(args: argparse.Namespace) -> int:
    """Prints the events the arguments select."""
    with connect(args) as conn:
        try:
            filters = filters_from(conn, args)
            events = _browse.newest_first(conn, filters, args.max_count)
            return emit(events, args)
        except _browse.HistoryError as exc:
            raise CliError(exc.message, exc.hint) from exc
        except psycopg.errors.DataError as exc:
            if args.obj_id is None:
                raise
            raise CliError(f"{args.obj_id!r} is not a key of {args.table}: {exc.diag.message_primary}",
                           "OBJ_ID is the value of the row's primary key") from exc


def emit(events: Iterable[Event], args: argparse.Namespace) -> int:
    """Writes events as the output options say (pager, colour, format); 0."""
    interactive = sys.stdout.isatty()
    colour = args.color == "always" or (args.color == "auto" and interactive and args.format == "text")
    with output(page=interactive and not args.no_pager and args.format == "text") as out:
        for i, event in enumerate(events):
            if args.format == "json":
                out.write(json_line(event) + "\n")
            else:
                out.write(("\n" if i else "") + render(event, colour))
            out.flush()
    return 0


@contextmanager
def output(page: bool) -> Iterator[IO[str]]:
    """stdout, or the pager's stdin: ``$PGHISTORY_PAGER``, ``$PAGER`` or ``less`` (``LESS=FRX`` unless set)."""
    command = os.environ.get("PGHISTORY_PAGER", os.environ.get("PAGER", "less"))
    if not page or command in ("", "cat"):
        yield sys.stdout
        return
    env = {**os.environ, "LESS": os.environ.get("LESS", "FRX"), "LV": os.environ.get("LV", "-c")}
    try:
        pager = subprocess.Popen(shlex.split(command), stdin=subprocess.PIPE, env=env, text=True)
    except OSError:  # no pager installed: print as is
        yield sys.stdout
        return
    assert pager.stdin is not None
    try:
        yield pager.stdin
    except BrokenPipeError:  # the user quit the pager
        pass
    finally:
        try:
            pager.stdin.close()
        except BrokenPipeError:
            pass
        pager.wait()


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _time(value: dt.datetime) -> str:
    return value.isoformat(sep=" ", timespec="microseconds" if value.microsecond else "seconds")


def render(event: Event, colour: bool = False) -> str:
    """One event as text: a header (slug, label, object, date, context) and its diff, column by column."""

    def paint(code: str, text: str) -> str:
        return f"{code}{text}{RESET}" if colour else text

    lines = [paint(YELLOW, f"event {event.pgh_slug}") + f" ({event.pgh_label})",
             f"Object:  {event.pgh_obj_model} {event.pgh_obj_id if event.pgh_obj_id is not None else '(no key)'}",
             f"Date:    {_time(event.pgh_created_at)}"]
    if event.pgh_context_id is not None or event.pgh_context:
        lines.append(f"Context: {event.pgh_context_id if event.pgh_context_id is not None else '(none)'}")
        for key, value in sorted((event.pgh_context or {}).items()):
            lines.append(f"    {key}: {value if isinstance(value, str) else _value(value)}")
    lines.append("")
    if event.pgh_diff:
        width = max(len(column) for column in event.pgh_diff)
        for column, (before, after) in sorted(event.pgh_diff.items()):
            lines.append(f"    {column.ljust(width)}  {paint(RED, _value(before))} → {paint(GREEN, _value(after))}")
    else:  # insert, delete, first seen: nothing changed, the snapshot is the news
        sign, code = ("-", RED) if event.pgh_diff == {} else ("+", GREEN)
        width = max((len(column) for column in event.pgh_data), default=0)
        for column, value in sorted(event.pgh_data.items()):
            lines.append(paint(code, f"  {sign} {column.ljust(width)}  {_value(value)}"))
    return "\n".join(lines) + "\n"


def json_line(event: Event) -> str:
    """One event as a JSON object with the columns of pghistory.aggregate_events."""
    row: dict[str, Any] = {}
    for column in EVENT_COLUMNS:
        value = getattr(event, column)
        if isinstance(value, dt.datetime):
            value = value.isoformat()
        elif isinstance(value, uuid.UUID):
            value = str(value)
        row[column] = value
    return json.dumps(row, ensure_ascii=False, sort_keys=False)
