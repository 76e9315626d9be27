"""``pghistory serve [--dsn] [--host 127.0.0.1] [--port 8000] [--allow-writes]``: the history browser, on uvicorn."""

from __future__ import annotations

import argparse
from typing import Any

from . import add_parser, resolve_dsn
from .log import CliError


def register(subparsers: Any) -> None:
    """Adds ``pghistory serve``."""
    parser = add_parser(subparsers, "serve", help="the history browser: a web application for this database")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    parser.add_argument("--allow-writes", action="store_true",
                        help="offer reverting an event (a confirmed POST through pghistory.revert); read-only without it")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Serves until interrupted."""
    try:
        import uvicorn

        from ..web import create_app
    except ImportError as exc:
        raise CliError(f"pghistory serve needs the web extra ({exc})", "pip install 'pghistory[web]'") from exc
    loopback = ["127.0.0.1", "localhost", "[::1]", "::1"]
    # On loopback only this machine's names are answered (no DNS-rebinding site can read the pages);
    # listening on another address is a choice to be reached by whatever name leads there.
    hosts = loopback if args.host in loopback else ["*"]
    app = create_app(resolve_dsn(args.dsn), allow_writes=args.allow_writes, allowed_hosts=hosts)
    print(f"pghistory: serving the history browser on http://{args.host}:{args.port}/"
          f"{' (writes allowed)' if args.allow_writes else ' (read-only)'}", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
