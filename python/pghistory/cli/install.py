"""``pghistory install [--dsn DSN] [--method M]``: install pghistory into a
database, or upgrade it to this package's version (see `pghistory.install`)."""

from __future__ import annotations

import argparse
from typing import Any

from .. import _install
from . import add_parser, connect


def register(subparsers: Any) -> None:
    parser = add_parser(
        subparsers,
        "install",
        help="install pghistory into the database, or upgrade it to this package's version",
        description="Install pghistory into the database, or upgrade it to this package's version. "
        "--method auto uses the extension files on the server if present, else pg_tle, else the plain script.",
    )
    parser.add_argument("--method", choices=_install.METHODS, default="auto", help="way in (default: auto)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        version = _install.install(conn, method=args.method)
    print(f"pghistory {version} installed")
    return 0
