"""Instructions per one-row UPDATE transaction, counted by valgrind: a measure a busy machine cannot move.

    ./tests/run --bench --instructions [--variant NAME=FILE.sql ...] [--transactions N]

pgbench's transactions per second swing by a third when other work shares the
machine's two cores; the instructions a backend executes for the same
statements on the same data do not. This counts them with ``valgrind
--tool=callgrind`` for the bench's ``one_ctx`` transaction (a new context,
then an UPDATE of one row) on ``pghistory`` and ``floor_pairing``
(bench/variants/floor.sql) and on any ``--variant``, and prints each
target's instructions per transaction and its ratio to ``floor_pairing``
(higher is better, like tps).

How: one cluster holds a database per target, each loaded and tracked like the
bench's (bench/targets.py). Each target's run starts from a copy of that
cluster as it was after loading, in single-user mode (no client, no
network), and only the statements' execution is counted
(``--toggle-collect=exec_simple_query``): start-up and shutdown are not.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent / "tests"))

import harness  # noqa: E402
import targets as tg  # noqa: E402
from harness.servers import _switch_user_argv, os_user  # noqa: E402

BUILTIN = {"pghistory": None, "floor_pairing": HERE / "variants" / "floor.sql"}


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--major", type=int, default=15)
    p.add_argument("--rows", type=int, default=100_000, help="rows in item (default 100000)")
    p.add_argument("--transactions", type=int, default=1000, help="counted transactions (default 1000)")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=FILE.sql",
                   help="another pghistory target, as bench/run.py's --variant")
    args = p.parse_args(argv)
    if not shutil.which("valgrind"):
        print("bench/instructions.py: valgrind is not installed (Debian package valgrind)", file=sys.stderr)
        return 2
    variants = dict(BUILTIN)
    for spec in args.variant:
        name, _, path = spec.partition("=")
        if not re.fullmatch(r"[a-z0-9_]+", name) or not Path(path).is_file():
            p.error(f"--variant {spec!r}: give NAME=FILE.sql, NAME in [a-z0-9_], FILE an existing file")
        variants[name] = Path(path).resolve()

    build = harness.prepare(args.major)
    user = os_user()
    as_user = _switch_user_argv(user) if user else []
    with tempfile.TemporaryDirectory(prefix="pgh-instructions-") as tmp:
        work = Path(tmp)
        if user:
            shutil.chown(work, user)
        data, pristine = work / "data", work / "pristine"

        def single(database: str, script: str, *valgrind: str) -> str:
            """Runs ``script`` in a single-user backend on ``database``; returns its output."""
            (work / "script.sql").write_text(script)
            (work / "script.sql").chmod(0o644)
            cmd = [*as_user, *valgrind, str(build.bindir / "postgres"), "--single", "-j", "-D", str(data),
                   "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "checkpoint_timeout=1d",
                   database]
            with open(work / "script.sql") as stdin:
                done = subprocess.run(cmd, stdin=stdin, capture_output=True, text=True)
            if done.returncode != 0 or re.search(r"\b(ERROR|FATAL):", done.stdout + done.stderr):
                raise SystemExit(f"bench/instructions.py: {database}: {(done.stdout + done.stderr)[-2000:]}")
            return done.stderr

        subprocess.run([*as_user, str(build.bindir / "initdb"), "-D", str(data), "-U", "postgres",
                        "-A", "trust", "--no-sync"], check=True, capture_output=True)
        for name, path in variants.items():
            database = f"bench_pghistory_{name}"
            single("postgres", f"CREATE DATABASE {database};\n\n")
            variant = path.read_text() if path else ""
            after = variant.startswith(tg.AFTER_TRACK)
            # single-user -j mode: a statement ends at a semicolon and an empty line
            single(database, "\n\n".join([
                "CREATE EXTENSION pghistory;",
                "" if after else variant,
                tg.TABLE_DDL + ";",
                f"INSERT INTO item {tg.rows_select(1, args.rows)};",
                "SELECT pghistory.track('item');",
                variant if after else "",
                "VACUUM ANALYZE item;", "CHECKPOINT;", ""]))
        subprocess.run([*as_user, "cp", "-a", str(data), str(pristine)], check=True)

        # the same transactions for every target: a new context, one row updated
        steps = []
        for i in range(args.transactions):
            steps += ["BEGIN;",
                      tg.SET_CONTEXT.replace("gen_random_uuid()::text", f"'{uuid.UUID(int=i + 1)}'") + ";",
                      f"UPDATE item SET status = 's{i}' WHERE id = {1 + (i * 7919) % args.rows};",
                      "COMMIT;"]
        script = "\n\n".join(steps) + "\n\n"

        counts = {}
        for name in variants:
            subprocess.run([*as_user, "rm", "-rf", str(data)], check=True)
            subprocess.run([*as_user, "cp", "-a", str(pristine), str(data)], check=True)
            log = single(f"bench_pghistory_{name}", script, "valgrind", "--tool=callgrind",
                         "--toggle-collect=exec_simple_query", f"--callgrind-out-file={work}/callgrind.out")
            found = re.search(r"Collected : (\d+)", log)
            if not found:
                raise SystemExit(f"bench/instructions.py: no instruction count from valgrind for {name}:\n{log[-2000:]}")
            if int(found.group(1)) == 0:
                raise SystemExit(f"bench/instructions.py: valgrind counted nothing for {name}: this postgres has no "
                                 "symbols for exec_simple_query (a stripped build, e.g. Debian's); "
                                 "run with PGH_SYSTEM_PG=off for a build that has them")
            counts[name] = int(found.group(1)) / args.transactions

    floor = counts["floor_pairing"]
    print(f"\ninstructions per one-row UPDATE transaction with a new context "
          f"({build.version}, {args.rows} rows, {args.transactions} transactions):")
    print("| target | instructions | floor_pairing / target |\n|---|---:|---:|")
    for name, n in counts.items():
        print(f"| {name} | {n:,.0f} | {floor / n:.3f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
