"""`make bench`: what tracking a table costs, next to the same write by hand and django-pghistory.

    make bench  (= ./tests/run --bench)       # the full bench (PostgreSQL 15, ~16 min), checks the
                                              # bars, rewrites bench/RESULTS.md and bench/runs.json
    ./tests/run --bench --smoke               # tiny sizes, no bars, no django-pghistory, writes
                                              # nothing: ~25 s (CI)
    ./tests/run --bench --instructions        # instructions per one-row transaction, counted by
                                              # valgrind (bench/instructions.py)

Starts its own throwaway server (tests/harness), makes one database per target
(bench/targets.py: plain, dual = the floor by hand, pghistory in three
configurations, django-pghistory 3.9 at row and statement level), loads the
same ``--rows`` rows into each, then runs every workload against every target
in the same run, interleaved: each repetition runs one workload on all
targets before the next workload, in an order rotated every repetition.
Reports medians, ratios to the floor, and the bars of issue 5.

Workloads
    update        bulk UPDATE of every row, under a new context (one transaction)
    insert        bulk INSERT of --rows new rows, under a new context
    delete        bulk DELETE of those rows, under a new context
    one_ctx       pgbench, --clients clients, --duration s: transactions that each
                  start a new context and UPDATE one random row (tps)
    one_noctx     the same without a context
    lookup        pghistory.events('item', id) on a table with 2 x --rows events (ms)
    ambient       a request's write through SQLAlchemy with and without the ambient
                  context (bench/ambient.py; on the pghistory target)
    storage       bytes per event of each target's event table, after the run
    time_travel   backfill, as_of, blame, changes on a history of 10 x --rows events, once
                  per run, on a database of its own (bench/time_travel.py)
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent / "tests"))

import harness  # noqa: E402
import report  # noqa: E402
import targets as tg  # noqa: E402
import time_travel  # noqa: E402

BULK = ("update", "insert", "delete")
PGBENCH = ("one_ctx", "one_noctx")
WORKLOADS = (*BULK, *PGBENCH, "lookup", "time_travel", "ambient")

# Settings of the bench's server, on top of the harness's (fsync, synchronous_commit
# and full_page_writes off): room for every target's data in memory, no
# checkpoint or autovacuum in the middle of a measurement (the bench runs
# CHECKPOINT and VACUUM itself, untimed, between measurements).
SERVER_SETTINGS = {
    "shared_buffers": "1GB",
    "max_wal_size": "16GB",
    "checkpoint_timeout": "1h",
    "autovacuum": "off",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--major", type=int, default=15, help="PostgreSQL major (default 15)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny sizes (1k rows, 1 rep, 1 s pgbench), no bars, no django-pghistory unless --django")
    p.add_argument("--django", action="store_true", help="with --smoke: include django-pghistory too")
    p.add_argument("--no-django", action="store_true", help="leave django-pghistory out")
    p.add_argument("--rows", type=int, help="rows per table (default 100000; smoke 1000)")
    p.add_argument("--reps", type=int, help="repetitions (default 5; smoke 1)")
    p.add_argument("--duration", type=float, help="seconds per pgbench run (default 10; smoke 1)")
    p.add_argument("--clients", type=int, default=2, help="pgbench clients (default 2)")
    p.add_argument("--protocol", default="prepared", choices=("simple", "extended", "prepared"),
                   help="pgbench query mode (default prepared)")
    p.add_argument("--lookups", type=int, help="object-history lookups in all (default 500; smoke 20)")
    p.add_argument("--targets", help="comma-separated target names to run (default all)")
    p.add_argument("--workloads", help=f"comma-separated subset of {','.join(WORKLOADS)}")
    p.add_argument("--variant", action="append", default=[], metavar="NAME=FILE.sql",
                   help="extra target pghistory_NAME: pghistory defaults with FILE.sql run after CREATE EXTENSION")
    p.add_argument("--results", type=Path,
                   help="write the results here (default bench/RESULTS.md for a full run; smoke writes none)")
    p.add_argument("--ambient-requests", type=int,
                   help="requests per batch of the ambient workload (default 500; smoke 50)")
    p.add_argument("--no-record", action="store_true", help="write no results file and no runs.json entry")
    p.add_argument("--verbose", "-v", action="store_true", help="print every measurement")
    args = p.parse_args(argv)
    smoke = args.smoke
    args.rows = args.rows or (1000 if smoke else 100_000)
    args.reps = args.reps or (1 if smoke else 5)
    args.duration = args.duration or (1.0 if smoke else 10.0)
    args.lookups = args.lookups or (20 if smoke else 500)
    args.ambient_requests = args.ambient_requests or (50 if smoke else 500)
    args.with_django = (args.django or not smoke) and not args.no_django
    args.workload_list = args.workloads.split(",") if args.workloads else list(WORKLOADS)
    unknown = set(args.workload_list) - set(WORKLOADS)
    if unknown:
        p.error(f"unknown workloads: {', '.join(sorted(unknown))}")
    if args.results is None and not smoke and not args.no_record:
        args.results = HERE / "RESULTS.md"
    if args.no_record:
        args.results = None
    return args


class ServerCPU:
    """CPU seconds the server has used: the postmaster, its live children, and its reaped ones.

    Wall-clock times on a shared 2-core machine move with whatever else runs
    there; the server's own CPU time per measurement hardly does.  Read from
    /proc (clock ticks): the postmaster's utime+stime+cutime+cstime (children
    it has reaped, i.e. backends that have exited) plus utime+stime of every
    live child (backends, walwriter, checkpointer, ...).
    """

    def __init__(self, pg) -> None:
        self.postmaster = int((pg.datadir / "postmaster.pid").read_text().split()[0])
        self.tick = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _stat(pid: int | str) -> list[str] | None:
        try:
            raw = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return None
        return raw[raw.rindex(")") + 2:].split()  # fields from 3 (state) on

    def children(self) -> set[int]:
        pids = set()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                fields = self._stat(entry)
                if fields and int(fields[1]) == self.postmaster:
                    pids.add(int(entry))
        return pids

    def seconds(self) -> float:
        pm = self._stat(self.postmaster)
        if pm is None:
            return float("nan")
        ticks = sum(int(v) for v in pm[11:15])  # utime stime cutime cstime
        for pid in self.children():
            fields = self._stat(pid)
            if fields:
                ticks += int(fields[11]) + int(fields[12])
        return ticks / self.tick

    def settle(self, before: set[int], timeout: float = 10.0) -> None:
        """Wait until the children that came after ``before`` (pgbench's backends) are reaped."""
        deadline = time.monotonic() + timeout
        while self.children() - before and time.monotonic() < deadline:
            time.sleep(0.02)


def rotated(items: list, rep: int) -> list:
    k = rep % len(items) if items else 0
    return items[k:] + items[:k]


# -- one measurement ------------------------------------------------------------

def bulk(conn, target: tg.Target, n: int, workload: str, cpu: ServerCPU) -> tuple[float, float]:
    """Seconds (wall, server CPU) of one bulk transaction (a new context, then the write)."""
    conn.execute("CHECKPOINT")
    statement = target.statement(n, workload)
    cpu0 = cpu.seconds()
    start = time.perf_counter()
    with conn.transaction():
        conn.execute(tg.SET_CONTEXT)
        conn.execute(statement)
    elapsed = time.perf_counter() - start
    used = cpu.seconds() - cpu0
    conn.execute("VACUUM ANALYZE item")
    return elapsed, used


_TPS = re.compile(r"tps = ([0-9.]+) \((?:without initial connection time|excluding connections establishing)\)")


def pgbench(pg, target: tg.Target, args, with_context: bool, scripts: Path, cpu: ServerCPU) -> tuple[float, float]:
    """Transactions per second of ``--clients`` clients updating one row per transaction,
    measured (wall clock) and as the server's CPU allows (transactions per server-CPU second)."""
    lines = [f"\\set id random(1, {args.rows})", "BEGIN;"]
    if with_context:
        lines.append(tg.SET_CONTEXT + ";")
    lines += [target.statement(args.rows, "update_one", with_context) + ";", "END;"]
    script = scripts / f"{target.name}_{'ctx' if with_context else 'noctx'}.sql"
    script.write_text("\n".join(lines) + "\n")
    with pg.connect(target.dbname) as c:
        c.execute("CHECKPOINT")
    cmd = [str(pg.bin("pgbench")), "-n", "-c", str(args.clients), "-j", str(args.clients),
           "-T", f"{args.duration:g}", "-M", args.protocol, "-f", str(script), target.dbname]
    before = cpu.children()
    cpu0 = cpu.seconds()
    result = subprocess.run(cmd, env=pg.env(), capture_output=True, text=True, timeout=args.duration + 120)
    cpu.settle(before)
    used = cpu.seconds() - cpu0
    match = _TPS.search(result.stdout)
    count = re.search(r"number of transactions actually processed: (\d+)", result.stdout)
    if result.returncode != 0 or not match or not count:
        raise RuntimeError(f"pgbench on {target.name} failed (exit {result.returncode}):\n"
                           f"{result.stdout}{result.stderr}")
    with pg.connect(target.dbname) as c:
        c.execute("VACUUM ANALYZE item")
    return float(match.group(1)), int(count.group(1)) / used if used > 0 else float("nan")


def setup_lookup(pg, n: int) -> str | None:
    """A database whose item table has 2 x n events (n inserts, then n updates); None if events() is missing."""
    target = tg.Target("lookup", "pghistory")
    with pg.connect() as c:
        c.execute(f'DROP DATABASE IF EXISTS "{target.dbname}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{target.dbname}"')
    with pg.connect(target.dbname) as c:
        c.execute("CREATE EXTENSION pghistory")
        has_events = c.execute(
            "SELECT EXISTS (SELECT FROM pg_proc WHERE proname = 'events'"
            " AND pronamespace = 'pghistory'::regnamespace)").fetchone()[0]
        if not has_events:
            return None
        c.execute(tg.TABLE_DDL)
        c.execute("SELECT pghistory.track('item')")
        for statement in (f"INSERT INTO item ({tg.COLUMNS}) {tg.rows_select(1, n)}", tg.write_statements(n)["update"]):
            with c.transaction():
                c.execute(tg.SET_CONTEXT)
                c.execute(statement)
        c.execute("VACUUM ANALYZE")
    return target.dbname


def lookups(conn, n: int, count: int, rng: random.Random) -> list[float]:
    """Milliseconds of ``count`` calls of pghistory.events('item', id) for random ids."""
    times = []
    for _ in range(count):
        obj_id = str(rng.randint(1, n))
        start = time.perf_counter()
        rows = conn.execute("SELECT * FROM pghistory.events('item', %s)", (obj_id,)).fetchall()
        times.append((time.perf_counter() - start) * 1000)
        if len(rows) != 2:
            raise RuntimeError(f"pghistory.events('item', {obj_id}) returned {len(rows)} events, expected 2")
    return times


def storage(conn) -> dict[str, float]:
    conn.execute("VACUUM ANALYZE item_event")
    total, heap, indexes, events = conn.execute(
        "SELECT pg_total_relation_size('item_event'), pg_relation_size('item_event'),"
        " pg_indexes_size('item_event'), (SELECT count(*) FROM item_event)").fetchone()
    per = (lambda v: v / events if events else float("nan"))
    return {"events": events, "bytes": per(total), "heap": per(heap), "indexes": per(indexes)}


# -- the run ---------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    # a --variant named like a default target (floor_pairing) replaces it rather than running twice
    variants = [tg.variant_target(v) for v in args.variant]
    given = {t.name for t in variants}
    targets = [t for t in tg.default_targets(args.with_django) if t.name not in given] + variants
    if args.targets:
        wanted = args.targets.split(",")
        unknown = set(wanted) - {t.name for t in targets}
        if unknown:
            raise SystemExit(f"bench: unknown targets {', '.join(sorted(unknown))}")
        targets = [t for t in targets if t.name in wanted]

    build = harness.prepare(args.major)
    info = report.environment(build, args)
    print(f"bench: {build.describe()}; {len(targets)} targets, {args.rows} rows, {args.reps} reps, "
          f"pgbench {args.duration:g} s x {args.clients} clients ({args.protocol})", flush=True)

    samples: dict[tuple[str, str], list[float]] = {}  # wall clock: seconds, or tps
    cpu_samples: dict[tuple[str, str], list[float]] = {}  # server CPU: seconds, or tps per CPU second
    lookup_ms: list[float] = []
    notes: list[str] = []
    sizes: dict[str, dict[str, float]] = {}
    shapes: dict[str, str] = {}
    with harness.Server(build, settings=SERVER_SETTINGS) as pg, \
            tempfile.TemporaryDirectory(prefix="pgh-bench-") as tmp:
        scripts = Path(tmp)
        for target in targets:
            t0 = time.perf_counter()
            note = tg.create(pg, target, args.rows)
            print(f"  {target.name}: ready in {time.perf_counter() - t0:.1f}s{'  ' + note if note else ''}",
                  flush=True)
        conns = {t.name: pg.connect(t.dbname) for t in targets}
        info["server"] = conns[targets[0].name].execute("SHOW server_version").fetchone()[0]
        for t in targets:
            if t.kind == "pghistory" and "pghistory" not in info:
                info["pghistory"] = conns[t.name].execute(
                    "SELECT extversion FROM pg_extension WHERE extname = 'pghistory'").fetchone()[0]
            if t.tracked:
                shapes[t.name] = tg.describe_event_table(conns[t.name])

        lookup_db = None
        if "lookup" in args.workload_list:
            lookup_db = setup_lookup(pg, args.rows)
            if lookup_db is None:
                notes.append("lookup skipped: pghistory.events() does not exist in this build of the extension")
                print(f"bench: {notes[-1]}", flush=True)
        lookup_conn = pg.connect(lookup_db) if lookup_db else None
        rng = random.Random(5)
        cpu = ServerCPU(pg)

        def record(workload: str, target: tg.Target, wall: float, used: float) -> None:
            samples.setdefault((workload, target.name), []).append(wall)
            cpu_samples.setdefault((workload, target.name), []).append(used)
            if args.verbose:
                print(f"    {workload:10s} {target.name:20s} wall {wall:10.3f}  cpu {used:10.3f}", flush=True)

        # one short untimed pgbench run per target first: new backends of a freshly
        # tracked database pay for catalog caches the later runs find warm
        warm = argparse.Namespace(**{**vars(args), "duration": min(1.0, args.duration)})
        for t in targets:
            if any(w in PGBENCH for w in args.workload_list):
                pgbench(pg, t, warm, True, scripts, cpu)

        for rep in range(args.reps):
            order = rotated(targets, rep)
            rep_start = time.perf_counter()
            for workload in args.workload_list:
                if workload in BULK:
                    for t in order:
                        record(workload, t, *bulk(conns[t.name], t, args.rows, workload, cpu))
                elif workload in PGBENCH:
                    for t in order:
                        record(workload, t, *pgbench(pg, t, args, workload == "one_ctx", scripts, cpu))
                elif workload == "lookup" and lookup_conn is not None:
                    if rep == 0:
                        lookups(lookup_conn, args.rows, 5, rng)  # warm the caches and plans
                    lookup_ms += lookups(lookup_conn, args.rows, max(1, args.lookups // args.reps), rng)
            print(f"  rep {rep + 1}/{args.reps} done in {time.perf_counter() - rep_start:.0f}s", flush=True)

        if "time_travel" in args.workload_list:
            for line in time_travel.run(pg, args.rows):
                notes.append(line)
                print(f"  {line}", flush=True)

        if "ambient" in args.workload_list and "pghistory" in conns:
            import ambient  # SQLAlchemy is imported only for this workload

            dbname = next(t.dbname for t in targets if t.name == "pghistory")
            lines = ambient.run(pg.url(dbname), args.rows, args.ambient_requests, max(3, args.reps))
            print("\n".join(lines), flush=True)
            notes.append(lines[0] + ": " + "; ".join(line.strip() for line in lines[1:]))

        for t in targets:
            if t.tracked:
                sizes[t.name] = storage(conns[t.name])
        for c in [*conns.values(), *([lookup_conn] if lookup_conn else [])]:
            c.close()

    results = report.Results(
        args=args, info=info, targets=targets, samples=samples, cpu_samples=cpu_samples, lookup_ms=lookup_ms,
        sizes=sizes, shapes=shapes, notes=notes, seconds=time.time() - started)
    print()
    print(results.text())
    if args.results is not None:
        results.record(args.results)
        print(f"\nbench: wrote {args.results}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--instructions"]:  # bench/instructions.py: counted, not timed
        import instructions

        sys.exit(instructions.main(sys.argv[2:]))
    sys.exit(main())
