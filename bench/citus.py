"""What tracking a distributed table costs on a Citus cluster: rough figures.

    PYTHONPATH=tests .venv/bin/python bench/citus.py [--major 17] [--rows 20000] [--singles 1000] [--repeat 5]

Starts a coordinator and two workers on localhost (tests/harness, Citus built
from ../shared/vendor), and three tables distributed by ``id`` in 4 shards:
untracked, tracked at statement level, tracked at row level (json context,
the only kind a distributed table takes). Workloads, interleaved, each
repetition rotating the order of the tables:

    bulk_insert   INSERT ... SELECT of --rows rows from generate_series, one transaction
    bulk_update   UPDATE of those rows, one transaction, under a context (set_context)
    single        --singles transactions, each an UPDATE of one row by id (autocommit)

Prints medians, in ms (single: per transaction), and the ratio to untracked.
Everything runs on one machine shared with the client, so the figures say
how the levels compare, not what a real cluster does; README "Distributed
tables (Citus)" quotes them as such.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import harness  # noqa: E402

TABLES = {"untracked": None, "statement": "statement", "row": "row"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--major", type=int, default=17)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--singles", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    build = harness.citus_build(args.major)
    harness.install_extension(build)
    timings: dict[tuple[str, str], list[float]] = {}
    with harness.CitusCluster(build) as cluster:
        with cluster.coordinator.connect() as conn:
            conn.execute("CREATE EXTENSION pghistory")
            for name, level in TABLES.items():
                conn.execute(f"CREATE TABLE bench_{name} (id int PRIMARY KEY, status text, amount int)")
                conn.execute("SELECT create_distributed_table(%s, 'id', shard_count => 4)", (f"bench_{name}",))
                if level:
                    conn.execute("SELECT pghistory.track(%s, context => 'json', level => %s)",
                                 (f"bench_{name}", level))
            names = list(TABLES)
            for rep in range(args.repeat):
                order = names[rep % len(names):] + names[:rep % len(names)]
                for name in order:
                    table = f"bench_{name}"
                    conn.execute(f"TRUNCATE {table}")
                    start = time.perf_counter()
                    conn.execute(f"INSERT INTO {table} SELECT g, 'new', g FROM generate_series(1, %s) AS g",
                                 (args.rows,))
                    timings.setdefault(("bulk_insert", name), []).append(time.perf_counter() - start)
                for name in order:
                    table = f"bench_{name}"
                    start = time.perf_counter()
                    with conn.transaction():
                        conn.execute("""SELECT pghistory.set_context('{"job": "bench"}')""")
                        conn.execute(f"UPDATE {table} SET amount = amount + 1")
                    timings.setdefault(("bulk_update", name), []).append(time.perf_counter() - start)
                for name in order:
                    table = f"bench_{name}"
                    start = time.perf_counter()
                    for i in range(args.singles):
                        conn.execute(f"UPDATE {table} SET status = 'paid' WHERE id = %s",
                                     (1 + i * 7919 % args.rows,))
                    timings.setdefault(("single", name), []).append((time.perf_counter() - start) / args.singles)

    print(f"Citus {harness.citus.CITUS_VERSION} on PostgreSQL {build.version.split()[-1]}, coordinator + 2 workers "
          f"on one machine, 4 shards; --rows {args.rows}, --singles {args.singles}, median of {args.repeat}\n")
    print("| workload | untracked | statement | row |")
    print("|---|---|---|---|")
    for workload in ("bulk_insert", "bulk_update", "single"):
        base = statistics.median(timings[(workload, "untracked")])
        cells = []
        for name in names:
            median = statistics.median(timings[(workload, name)])
            cells.append(f"{median * 1000:.2f} ms" + ("" if name == "untracked" else f" (x{median / base:.1f})"))
        what = f"{workload} (per transaction)" if workload == "single" else f"{workload} ({args.rows} rows)"
        print(f"| {what} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
