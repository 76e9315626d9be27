"""The bench's time-travel workload: backfill, as_of, blame, changes and "who changed X", on a large history.

Run by bench/run.py (workload ``time_travel``) once per run, on its own
database: ``item`` with ``rows`` rows (100,000; --smoke 1,000) loaded before
track(), backfilled (the baseline), then every row updated nine times, one
statement a round: 10 x rows events in all (1,000,000).  Then, timed:

    backfill     pghistory.backfill() of a second table of 10 x rows rows (1,000,000), one statement
    as_of now    pghistory.as_of(NULL::item, now()): every row, no event since
    as_of mid    ... at the moment between rounds 5 and 6: every row changed since
    as_of start  ... just after the backfill: every event but the baseline came later
    as_of one    one object at the middle moment (median of 50)
    blame        pghistory.blame('item', id) (median of 50)
    changes      pghistory.changes() over one round (every row updated once)
    who changed  events of the table whose diff names a column (events('item', changed => ...)):
                 status (9 of 10 events), name (none: the scan alone), status over one
                 round (since/until), status of one object (median of 50)

Each is one run (medians where stated); the numbers go to the report's notes.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

import targets as tg

ROUNDS = 9


def _timed(conn: Any, query: str, params: tuple[Any, ...] = ()) -> tuple[float, list[tuple[Any, ...]]]:
    start = time.perf_counter()
    result = conn.execute(query, params).fetchall()
    return time.perf_counter() - start, result


def run(pg: Any, rows: int) -> list[str]:
    """Sets up the history, measures, and returns one line per measurement."""
    dbname = "bench_time_travel"
    with pg.connect() as c:
        c.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        c.execute(f'CREATE DATABASE "{dbname}"')
    lines = []
    with pg.connect(dbname) as c:
        c.autocommit = True
        c.execute("CREATE EXTENSION pghistory")
        c.execute(tg.TABLE_DDL)
        c.execute(f"INSERT INTO item ({tg.COLUMNS}) {tg.rows_select(1, rows)}")
        c.execute("SELECT pghistory.track('item')")
        c.execute("SELECT pghistory.backfill('item')")
        start = c.execute("SELECT clock_timestamp()").fetchone()[0]
        middle = None
        for round_ in range(ROUNDS):
            with c.transaction():
                c.execute(tg.SET_CONTEXT)
                c.execute("UPDATE item SET status = %s, amount = amount + 1", (f"s{round_}",))
            if round_ == 4:
                middle = c.execute("SELECT clock_timestamp()").fetchone()[0]
            if round_ == 5:
                window_end = c.execute("SELECT clock_timestamp()").fetchone()[0]
        c.execute("VACUUM ANALYZE")
        events = c.execute("SELECT count(*) FROM item_event").fetchone()[0]

        c.execute("CREATE TABLE big (LIKE item INCLUDING ALL)")
        c.execute(f"INSERT INTO big ({tg.COLUMNS}) {tg.rows_select(1, 10 * rows)}")
        c.execute("SELECT pghistory.track('big')")
        c.execute("VACUUM ANALYZE big")
        seconds, result = _timed(c, "SELECT pghistory.backfill('big')")
        lines.append(f"time travel: backfill of {result[0][0]:,} rows in one statement: {seconds:.2f} s")

        lines.append(f"time travel: history of {rows:,} rows and {events:,} events")
        for name, at in (("now", None), ("mid", middle), ("start", start)):
            c.execute("SELECT count(*) FROM pghistory.as_of(NULL::item, coalesce(%s, now()))", (at,))  # warm
            seconds, result = _timed(c, "SELECT count(*) FROM pghistory.as_of(NULL::item, coalesce(%s, now()))", (at,))
            lines.append(f"time travel: as_of {name}: {result[0][0]:,} rows in {seconds * 1000:.0f} ms")
        rng = random.Random(14)
        for name, query, at in (("as_of one object", "SELECT * FROM pghistory.as_of(NULL::item, %s, %s)", middle),
                                ("blame", "SELECT * FROM pghistory.blame('item', %s)", None)):
            times = []
            for _ in range(50):
                obj_id = rng.randint(1, rows)
                times.append(_timed(c, query, (at, obj_id) if at else (obj_id,))[0] * 1000)
            lines.append(f"time travel: {name}: median {statistics.median(times):.1f} ms of 50")
        seconds, result = _timed(c, "SELECT count(*) FROM pghistory.changes('item', %s, %s)", (middle, window_end))
        lines.append(f"time travel: changes over one round: {result[0][0]:,} objects in {seconds * 1000:.0f} ms")
        for name, query, params in (
                ("status", "SELECT count(*) FROM pghistory.events('item', changed => '{status}')", ()),
                ("name", "SELECT count(*) FROM pghistory.events('item', changed => '{name}')", ()),
                ("status over one round", "SELECT count(*) FROM pghistory.events('item', changed => '{status}',"
                                          " since => %s, until => %s)", (middle, window_end))):
            seconds, result = _timed(c, query, params)
            lines.append(f"time travel: who changed {name} (events('item', changed => ...)): "
                         f"{result[0][0]:,} events in {seconds:.2f} s")
        times = [_timed(c, "SELECT * FROM pghistory.events('item', %s, changed => '{status}')",
                        (rng.randint(1, rows),))[0] * 1000 for _ in range(50)]
        lines.append(f"time travel: who changed status of one object: median {statistics.median(times):.1f} ms of 50")
    with pg.connect() as c:
        c.execute(f'DROP DATABASE "{dbname}" WITH (FORCE)')
    return lines
