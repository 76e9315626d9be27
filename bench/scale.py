"""History at scale (issue 15): a large event table, unpartitioned and partitioned side by side.

    ./tests/run --bench is bench/run.py; this one runs by itself:
    PYTHONPATH=tests .venv/bin/python bench/scale.py [--events 10000000] [--small 100000] [--runs 3]
    PYTHONPATH=tests .venv/bin/python bench/scale.py --smoke      # 20,000 events, a minute

For each kind (plain: track('item'); partitioned: the same, converted with
partition_by => interval '1 month'), on its own database: ``item`` with
--events / 10 rows (at most 1,000,000), tracked, and a history spread over
the last 365 days written straight into the event table (as a long-lived
table's would be). Measured with --small events and again with --events,
each measure the median of --runs runs:

    bulk       a tracked UPDATE of 10,000 rows, one statement (seconds)
    single     300 transactions, each a new context and a one-row UPDATE (tps)
    events     pghistory.events('item', id) of 200 random objects: median, p99 (ms)
    as_of      count(*) of pghistory.as_of(NULL::item, now() - 30 days): the whole table (s)
    bytes      bytes per event of the event table (heap, indexes, TOAST; all partitions)

then, once, on the large history, two prunes that together remove about half
of it: the oldest quarter without keep_latest (whole partitions go on the
partitioned table), then the rest of the older half with keep_latest (no
partition can go: every month holds some object's latest event; rows are
deleted in pgh_id windows). During each, a writer runs one-row tracked
UPDATEs (its longest wait is the longest a writer was held up), and pg_locks
is sampled every 10 ms (the longest the prune held ACCESS EXCLUSIVE on the
event table). Prints markdown tables.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any


HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent / "tests"))

import harness  # noqa: E402
import targets as tg  # noqa: E402

SETTINGS = {"shared_buffers": "1GB", "max_wal_size": "16GB", "checkpoint_timeout": "1h", "autovacuum": "off"}
AS_OF = "SELECT count(*) FROM pghistory.as_of(NULL::item, now() - interval '30 days')"


def fill(c: Any, objects: int, upto: int) -> None:
    """Adds events (spread over the last 365 days) until the event table holds ``upto``."""
    have = c.execute("SELECT count(*) FROM item_event").fetchone()[0]
    step = 1_000_000
    while have < upto:
        n = min(step, upto - have)
        c.execute(f"""
            INSERT INTO item_event (pgh_created_at, pgh_label, pgh_obj_id, {tg.COLUMNS})
            SELECT now() - random() * interval '365 days', 'update', o, o, 'item ' || o, 'hist', 1, now()
              FROM (SELECT 1 + (random() * ({objects} - 1))::int AS o FROM generate_series(1, {n})) AS g""")
        have += n
    c.execute("VACUUM ANALYZE item_event")


def measure_once(c: Any, objects: int) -> dict[str, float]:
    out: dict[str, float] = {}
    lo = random.randint(1, max(1, objects - 10_000))
    t0 = time.perf_counter()
    with c.transaction():
        c.execute(tg.SET_CONTEXT)
        c.execute("UPDATE item SET amount = amount + 1 WHERE id BETWEEN %s AND %s", (lo, lo + 9_999))
    out["bulk"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(300):
        with c.transaction():
            c.execute(tg.SET_CONTEXT)
            c.execute("UPDATE item SET amount = amount + 1 WHERE id = %s", (random.randint(1, objects),))
    out["single"] = 300 / (time.perf_counter() - t0)
    times = []
    for _ in range(200):
        t0 = time.perf_counter()
        c.execute("SELECT * FROM pghistory.events('item', %s)", (random.randint(1, objects),)).fetchall()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    out["events_median"] = statistics.median(times)
    out["events_p99"] = times[int(len(times) * 0.99) - 1]
    t0 = time.perf_counter()
    c.execute(AS_OF).fetchone()
    out["as_of"] = time.perf_counter() - t0
    return out


def measure(c: Any, objects: int, runs: int) -> dict[str, float]:
    """Each measure's median over ``runs`` runs, and bytes per event."""
    each = [measure_once(c, objects) for _ in range(runs)]
    out = {key: statistics.median(r[key] for r in each) for key in each[0]}
    out["bytes"] = float(c.execute("""
        SELECT sum(pg_total_relation_size(relid)) / (SELECT count(*) FROM item_event)
          FROM (SELECT relid FROM pg_partition_tree('item_event')
                UNION SELECT 'item_event'::regclass) AS t""").fetchone()[0])
    return out


def watched_prune(pg: Any, db: str, objects: int, call: str) -> dict[str, Any]:
    """Runs ``call`` (a prune) with a one-row writer going on and pg_locks sampled."""
    stop = threading.Event()
    waits: list[float] = []
    strongest: dict[str, float] = {"held": 0.0, "longest": 0.0}
    with pg.connect(db) as p, pg.connect(db) as w, pg.connect(db) as s:
        for conn in (p, w, s):
            conn.autocommit = True
        pid = p.info.backend_pid

        def write() -> None:
            while not stop.is_set():
                t0 = time.perf_counter()
                with w.transaction():
                    w.execute(tg.SET_CONTEXT)
                    w.execute("UPDATE item SET amount = amount + 1 WHERE id = %s", (random.randint(1, objects),))
                waits.append(time.perf_counter() - t0)

        def sample() -> None:
            since: float | None = None
            while not stop.is_set():
                held = s.execute("""SELECT EXISTS (SELECT FROM pg_locks WHERE pid = %s AND granted
                                      AND mode = 'AccessExclusiveLock' AND relation = 'item_event'::regclass)""",
                                 (pid,)).fetchone()[0]
                now = time.perf_counter()
                if held and since is None:
                    since = now
                if since is not None:
                    strongest["longest"] = max(strongest["longest"], now - since)
                if not held:
                    since = None
                time.sleep(0.01)

        threads = [threading.Thread(target=write), threading.Thread(target=sample)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        before = len(waits)
        total = p.execute("SELECT count(*) FROM item_event").fetchone()[0]
        t0 = time.perf_counter()
        removed = p.execute(call).fetchone()[0]
        seconds = time.perf_counter() - t0
        during = waits[before:]
        stop.set()
        for t in threads:
            t.join()
    return {"seconds": seconds, "removed": removed, "total": total, "writes": len(during),
            "writer_max": max(during, default=0.0), "writer_median": statistics.median(during) if during else 0.0,
            "exclusive": strongest["longest"]}


def run_kind(pg: Any, kind: str, small: int, events: int, runs: int) -> dict[str, Any]:
    db = f"bench_scale_{kind}"
    with pg.connect() as c:
        c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{db}"')
    objects = min(events // 10, 1_000_000)
    result: dict[str, Any] = {}
    with pg.connect(db) as c:
        c.autocommit = True
        c.execute("CREATE EXTENSION pghistory")
        c.execute(tg.TABLE_DDL)
        c.execute(f"INSERT INTO item ({tg.COLUMNS}) {tg.rows_select(1, objects)}")
        c.execute("SELECT pghistory.track('item')")
        fill(c, objects, small)
        if kind == "partitioned":
            t0 = time.perf_counter()
            c.execute("SELECT pghistory.track('item', partition_by => interval '1 month')")
            result["convert"] = time.perf_counter() - t0
        result["small"] = measure(c, objects, runs)
        t0 = time.perf_counter()
        fill(c, objects, events)
        result["fill"] = time.perf_counter() - t0
        result["large"] = measure(c, objects, runs)
    result["prune_quarter"] = watched_prune(
        pg, db, objects, "SELECT pghistory.prune('item', interval '274 days', keep_latest => false)")
    result["prune_half"] = watched_prune(pg, db, objects, "SELECT pghistory.prune('item', interval '182 days')")
    with pg.connect() as c:
        c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, help="the large history (default 10,000,000; smoke 20,000)")
    parser.add_argument("--small", type=int, help="the small history (default 100,000; smoke 5,000)")
    parser.add_argument("--runs", type=int, help="runs per measure, the median reported (default 3; smoke 1)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: that it runs, not what it measures")
    parser.add_argument("--major", type=int, default=15)
    args = parser.parse_args(argv)
    events = args.events or (20_000 if args.smoke else 10_000_000)
    small = args.small or (5_000 if args.smoke else 100_000)
    runs = args.runs or (1 if args.smoke else 3)
    random.seed(15)
    build = harness.prepare(args.major)
    results = {}
    with harness.Server(build, settings=SETTINGS) as pg:
        for kind in ["plain", "partitioned"]:
            t0 = time.perf_counter()
            results[kind] = run_kind(pg, kind, small, events, runs)
            print(f"bench/scale: {kind} done in {time.perf_counter() - t0:.0f}s", flush=True)
    big, little = f"{events:,}", f"{small:,}"
    print(f"\n{build.describe()}, {little} and {big} events, medians of {runs} run(s)\n")
    print(f"| measure | plain, {little} | plain, {big} | growth | partitioned, {little} | partitioned, {big} | growth |")
    print("|---|---|---|---|---|---|---|")
    table = [("bulk UPDATE of 10,000 rows (s)", "bulk", "{:.2f}"), ("one-row transactions (tps)", "single", "{:.0f}"),
             ("events(obj) median (ms)", "events_median", "{:.2f}"), ("events(obj) p99 (ms)", "events_p99", "{:.2f}"),
             ("as_of, whole table (s)", "as_of", "{:.2f}"), ("bytes per event", "bytes", "{:.0f}")]
    for label, key, fmt in table:
        cells = []
        for kind in ["plain", "partitioned"]:
            lo, hi = results[kind]["small"][key], results[kind]["large"][key]
            cells += [fmt.format(lo), fmt.format(hi), f"{hi / lo:.2f}x" if lo else "-"]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\n| prune | kind | time (s) | events removed | of | writer's longest wait (ms) | writer median (ms) "
          "| writes during | longest ACCESS EXCLUSIVE held (ms) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for step, label in [("prune_quarter", "oldest quarter, keep_latest => false"),
                        ("prune_half", "rest of the older half, keep_latest")]:
        for kind in ["plain", "partitioned"]:
            r = results[kind][step]
            print(f"| {label} | {kind} | {r['seconds']:.1f} | {r['removed']:,} | {r['total']:,} | "
                  f"{r['writer_max'] * 1000:.0f} | {r['writer_median'] * 1000:.1f} | {r['writes']:,} | "
                  f"{r['exclusive'] * 1000:.0f} |")
    print(f"\nconversion of {little} events to partitions: {results['partitioned']['convert']:.2f}s; "
          f"filling to {big}: plain {results['plain']['fill']:.0f}s, partitioned {results['partitioned']['fill']:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
