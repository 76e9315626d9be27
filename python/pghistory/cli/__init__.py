"""The ``pghistory`` console script: ``pghistory COMMAND [options]``.

Each command lives in its own module of this package, named in `COMMANDS`;
the module exposes ``register(subparsers)``, which adds its subparser (made
with `add_parser`, so that it takes ``--dsn``) and sets ``run`` to a function
``run(args) -> int``. This module resolves the DSN, connects, and turns every
error a user can cause into one line on stderr and a non-zero exit, never a
traceback.

The DSN comes from ``--dsn``, else ``DATABASE_URL``, else libpq's own
environment (``PGHOST``, ``PGDATABASE``, ``PGUSER``, ``~/.pgpass``, ...), as
psql users expect.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from typing import Any, Callable, TextIO

import psycopg

#: The command modules of this package, in the order ``pghistory --help`` lists them.
COMMANDS = ("install", "status", "log", "show", "context", "blame", "as-of", "serve")

#: Exit status of a command that failed (a user mistake, a server error).
FAILED = 1
#: Exit status of an interrupted command (as a shell reports SIGINT).
INTERRUPTED = 130


class CommandError(Exception):
    """A failure a command reports as one line: the message says what is
    wrong and what to do."""


def add_parser(subparsers: Any, name: str, **kwargs: Any) -> argparse.ArgumentParser:
    """Add the subparser of command `name`, with the ``--dsn`` option every
    command takes."""
    parser: argparse.ArgumentParser = subparsers.add_parser(name, **kwargs)
    parser.add_argument(
        "--dsn",
        help="libpq connection string or URI (default: $DATABASE_URL, else the PG* environment)",
    )
    return parser


def resolve_dsn(dsn: str | None) -> str:
    """The connection string to use: `dsn`, else ``$DATABASE_URL``, else ""
    (libpq then reads ``PGHOST``, ``PGDATABASE`` and the rest itself)."""
    if dsn:
        return dsn
    return os.environ.get("DATABASE_URL", "")


def connect(args: argparse.Namespace, *, autocommit: bool = True) -> psycopg.Connection[Any]:
    """A connection to the database `args` names (see `resolve_dsn`)."""
    return psycopg.connect(resolve_dsn(getattr(args, "dsn", None)), autocommit=autocommit)


def one_line(ex: BaseException) -> str:
    """`ex` as one line: the server's message and hint for a database error,
    the first line of its text otherwise."""
    if isinstance(ex, psycopg.Error) and ex.diag.message_primary:
        text = ex.diag.message_primary
        if ex.diag.message_hint:
            text += f" (hint: {ex.diag.message_hint})"
    else:
        text = str(ex) or type(ex).__name__
    return " ".join(text.split())


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command in `COMMANDS`."""
    parser = argparse.ArgumentParser(
        prog="pghistory",
        description="History tracking for PostgreSQL tables: install the extension, check it, read history.",
    )
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND", dest="command")
    subparsers.required = True
    for name in COMMANDS:
        module = importlib.import_module(f"{__name__}.{name.replace('-', '_')}")
        module.register(subparsers)
    return parser


def _warn_in_one_line(stderr: TextIO) -> Callable[..., None]:
    def show(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> None:
        print(f"pghistory: warning: {message}", file=stderr)

    return show


def main(argv: list[str] | None = None) -> int:
    """Run ``pghistory`` with `argv` (default: the process's arguments);
    return the exit status."""
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = _warn_in_one_line(sys.stderr)
        try:
            return run(args)
        except KeyboardInterrupt:
            return INTERRUPTED
        except BrokenPipeError:
            # the reader (head, a pager) went away: nothing left to say
            sys.stderr.close()
            return FAILED
        except (CommandError, psycopg.Error, OSError, ValueError) as ex:
            print(f"pghistory: error: {one_line(ex)}", file=sys.stderr)
            return FAILED
