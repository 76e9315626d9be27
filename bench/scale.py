"""History at scale (issue 15): a large event table, unpartitioned and partitioned side by side.

    ./tests/run --bench is bench/run.py; this one runs by itself:
    .venv/bin/python bench/scale.py [--events 10000000] [--major 15]

For each kind (plain: track('item'); partitioned: the same, converted with
partition_by => interval '1 month'), on its own database: ``item`` with
--events / 10 rows (at most 1,000,000), tracked, and a history spread over
the last 365 days written straight into the event table (as a long-lived
table's would be). Measured with 100,000 events and again with --events:

    bulk       a tracked UPDATE of 10,000 rows, one statement (seconds)
    single     300 transactions, each a new context and a one-row UPDATE (tps)
    events     pghistory.events('item', id) of 200 random objects: median, p99 (ms)
    bytes      bytes per event of the event table (heap, indexes, TOAST; all partitions)

then, once, on the large history: prune of the older half (keep_latest),
its time and the events removed. Prints one markdown table.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent / "tests"))

import harness  # noqa: E402
import targets as tg  # noqa: E402

SETTINGS = {"shared_buffers": "1GB", "max_wal_size": "16GB", "checkpoint_timeout": "1h", "autovacuum": "off"}


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
    c.execute("ANALYZE item_event")


def measure(c: Any, objects: int) -> dict[str, float]:
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
    out["bytes"] = c.execute("""
        SELECT sum(pg_total_relation_size(relid)) / (SELECT count(*) FROM item_event)
          FROM (SELECT relid FROM pg_partition_tree('item_event')
                UNION SELECT 'item_event'::regclass) AS t""").fetchone()[0]
    return out


def run_kind(pg: Any, kind: str, events: int) -> dict[str, Any]:
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
        fill(c, objects, 100_000)
        if kind == "partitioned":
            t0 = time.perf_counter()
            c.execute("SELECT pghistory.track('item', partition_by => interval '1 month')")
            result["convert 100k"] = time.perf_counter() - t0
        result["small"] = measure(c, objects)
        t0 = time.perf_counter()
        fill(c, objects, events)
        result["fill"] = time.perf_counter() - t0
        result["large"] = measure(c, objects)
        total = c.execute("SELECT count(*) FROM item_event").fetchone()[0]
        t0 = time.perf_counter()
        removed = c.execute("SELECT pghistory.prune('item', interval '182 days')").fetchone()[0]
        result["prune"] = (time.perf_counter() - t0, removed, total)
    with pg.connect() as c:
        c.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--major", type=int, default=15)
    args = parser.parse_args(argv)
    random.seed(15)
    build = harness.prepare(args.major)
    results = {}
    with harness.Server(build, settings=SETTINGS) as pg:
        for kind in ["plain", "partitioned"]:
            t0 = time.perf_counter()
            results[kind] = run_kind(pg, kind, args.events)
            print(f"bench/scale: {kind} done in {time.perf_counter() - t0:.0f}s", flush=True)
    big = f"{args.events:,}"
    print(f"\n{build.describe()}, {big} events\n")
    print(f"| measure | plain, 100k | plain, {big} | partitioned, 100k | partitioned, {big} |")
    print("|---|---|---|---|---|")
    rows = [("bulk UPDATE of 10,000 rows (s)", "bulk", "{:.2f}"), ("one-row transactions (tps)", "single", "{:.0f}"),
            ("events(obj) median (ms)", "events_median", "{:.2f}"), ("events(obj) p99 (ms)", "events_p99", "{:.2f}"),
            ("bytes per event", "bytes", "{:.0f}")]
    for label, key, fmt in rows:
        cells = [fmt.format(results[k][size][key]) for k in ["plain", "partitioned"] for size in ["small", "large"]]
        print(f"| {label} | " + " | ".join(cells) + " |")
    for kind in ["plain", "partitioned"]:
        seconds, removed, total = results[kind]["prune"]
        print(f"\n{kind}: prune of the older half: {seconds:.1f}s, {removed:,} of {total:,} events removed"
              + (f"; conversion of 100,000 events: {results[kind]['convert 100k']:.2f}s" if kind == "partitioned" else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
