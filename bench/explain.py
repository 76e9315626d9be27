"""Where a tracked write spends its time: EXPLAIN ANALYZE of it and of every statement its triggers run.

    .venv/bin/python bench/explain.py [--target pghistory] [--workload update] [--rows 100000]
                                      [--variant NAME=FILE.sql] [--major 15]

Starts a throwaway server, makes one bench target (bench/targets.py) with
--rows rows, and runs one workload of bench/run.py in a transaction with
auto_explain on (log_analyze, log_nested_statements, reported to the client
as NOTICEs), so the plans of the generated INSERT ... SELECT, of the context
upsert and of the write itself are printed with their actual times.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent / "tests"))

import harness  # noqa: E402
import targets as tg  # noqa: E402
from run import SERVER_SETTINGS  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/explain.py")
    p.add_argument("--major", type=int, default=15)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--target", default="pghistory")
    p.add_argument("--workload", default="update", choices=("update", "insert", "delete", "update_one"))
    p.add_argument("--no-context", action="store_true")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=FILE.sql")
    args = p.parse_args(argv)

    everything = tg.default_targets(django=True) + [tg.variant_target(v) for v in args.variant]
    target = next((t for t in everything if t.name == args.target), None)
    if target is None:
        p.error(f"unknown target {args.target}; one of {', '.join(t.name for t in everything)}")
    build = harness.prepare(args.major)
    with harness.Server(build, settings=SERVER_SETTINGS) as pg:
        tg.create(pg, target, args.rows)
        with pg.connect(target.dbname) as c:
            notices: list[str] = []
            c.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
            statement = target.statement(args.rows, args.workload, not args.no_context)
            statement = statement.replace(":id", str(args.rows // 2))
            for setting in ("LOAD 'auto_explain'", "SET auto_explain.log_min_duration = 0",
                            "SET auto_explain.log_analyze = on", "SET auto_explain.log_nested_statements = on",
                            "SET auto_explain.log_level = notice", "SET client_min_messages = notice"):
                c.execute(setting)
            start = time.perf_counter()
            with c.transaction():
                if not args.no_context:
                    c.execute(tg.SET_CONTEXT)
                c.execute(statement)
            elapsed = time.perf_counter() - start
        print(f"-- {target.name} ({target.description}), {args.workload} of {args.rows} rows: "
              f"{elapsed * 1000:.1f} ms in all (with auto_explain's own overhead)\n")
        for message in notices:
            print(message.strip() + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
