"""Command line: ``python -m harness prepare [MAJOR...]`` | ``python -m harness server [MAJOR]`` | ``psql [MAJOR]``.

prepare: find or fetch a build of each major ($PGH_MAJORS by default) and
         `make install` this checkout into it; one line per major.
server:  start a throwaway server with pghistory installed, print how to
         connect, and keep it until Ctrl-C (handy while writing tests).
psql:    the same, with psql on it; quitting psql stops the server (make psql).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys

from .builds import BuildError, majors_from_env, prepare
from .servers import Server


def _prepare(majors: list[int]) -> int:
    failed = 0
    for major in majors:
        notes: list[str] = []
        try:
            build = prepare(major, notes=notes)
        except BuildError as exc:
            failed += 1
            for note in notes:
                print(f"pg{major}: {note}", file=sys.stderr)
            print(f"pg{major}: FAILED: {exc}", file=sys.stderr)
            continue
        for note in notes:
            print(f"pg{major}: note: {note}")
        print(f"pg{major}: pghistory installed into {build.describe()}")
    sys.stdout.flush()
    return 1 if failed else 0


def _server(major: int) -> int:
    build = prepare(major)
    with Server(build) as pg:
        print(f"PostgreSQL {pg.major} is running ({pg.build.home}, log {pg.logfile})")
        print(f"  dsn:  {pg.dsn()}")
        print(f"  psql: {pg.bin('psql')} '{pg.dsn()}'")
        print("Ctrl-C stops it and removes its data.", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
    return 0


def _psql(major: int) -> int:
    build = prepare(major)
    with Server(build) as pg:
        pg.psql("-c", "CREATE EXTENSION pghistory", capture=True)
        print(f"PostgreSQL {pg.major} with pghistory ({pg.dsn()}); \\q stops the server and removes its data.",
              flush=True)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is psql's
        result = subprocess.run([str(pg.bin("psql")), "-X", pg.dsn()], env=pg.env())
    return result.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="fetch builds and make install into each")
    p.add_argument("majors", nargs="*", type=int)
    s = sub.add_parser("server", help="run a throwaway server until Ctrl-C")
    s.add_argument("major", nargs="?", type=int)
    q = sub.add_parser("psql", help="psql on a throwaway server with pghistory, until \\q")
    q.add_argument("major", nargs="?", type=int)
    args = parser.parse_args(argv)
    if args.command == "prepare":
        return _prepare(args.majors or majors_from_env())
    majors = majors_from_env()
    major = args.major or (15 if 15 in majors else majors[0])
    return _psql(major) if args.command == "psql" else _server(major)


if __name__ == "__main__":
    sys.exit(main())
