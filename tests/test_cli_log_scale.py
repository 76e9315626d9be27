"""``pghistory log`` and the browser's timeline start at once on a long history: the
first page of a table with PGH_LOG_SCALE_EVENTS events (default 1,000,000; the
README's number is from a run with 10,000,000) arrives well under a second.

The events are written straight into the event table (as the triggers would,
ten per object), which takes seconds where writing them through the triggers
would take minutes.
"""

from __future__ import annotations

import os
import time

import pytest

from pghistory.cli import main

EVENTS = int(os.environ.get("PGH_LOG_SCALE_EVENTS", "1000000"))


@pytest.fixture
def big(conn, dsn):
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text, amount numeric)")
    conn.execute("SELECT pghistory.track('orders')")
    objects = max(EVENTS // 10, 1)
    conn.execute("""
        INSERT INTO orders_event (pgh_created_at, pgh_label, pgh_obj_id, id, status, amount)
        SELECT timestamptz '2026-01-01 00:00+00' + g * interval '1 second',
               CASE WHEN g <= %(objects)s THEN 'insert' ELSE 'update' END,
               (g - 1) %% %(objects)s + 1, (g - 1) %% %(objects)s + 1, 'status ' || g, g
          FROM generate_series(1, %(events)s) AS g""", {"objects": objects, "events": EVENTS})
    conn.execute("VACUUM ANALYZE orders_event")
    return dsn


def best_of(runs: int, fn) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def test_first_page_of_a_long_history_is_fast(big, capsys, monkeypatch):
    monkeypatch.setenv("PGTZ", "UTC")
    elapsed = best_of(3, lambda: main(["log", "orders", "-n", "50", "--dsn", big]))
    out = capsys.readouterr().out
    first = out.splitlines()[:4]
    assert first == [f"event public.orders_event:{EVENTS} (update)", f"Object:  public.orders {(EVENTS - 1) % (EVENTS // 10) + 1}",
                     f"Date:    {_time(EVENTS)}", ""]
    assert out.count("\nevent ") == 3 * 50 - 1
    every_table = best_of(3, lambda: main(["log", "-n", "50", "--format", "json", "--dsn", big]))
    capsys.readouterr()
    print(f"\npghistory log, first 50 of {EVENTS:,} events: {elapsed * 1000:.0f} ms (one table), "
          f"{every_table * 1000:.0f} ms (every table, JSON)")
    assert elapsed < 1.0 and every_table < 1.0


def test_timeline_first_page_of_a_long_history_is_fast(big):
    starlette = pytest.importorskip("starlette.testclient")
    from pghistory.web import create_app

    client = starlette.TestClient(create_app(big, allowed_hosts=["testserver"]))
    elapsed = best_of(3, lambda: client.get("/").raise_for_status())
    later = client.get("/?before=public.orders_event:5000").text
    assert f'href="/event?slug=public.orders_event%3A{EVENTS}"' in client.get("/").text
    assert 'href="/event?slug=public.orders_event%3A4999"' in later
    print(f"\ntimeline, first page of {EVENTS:,} events: {elapsed * 1000:.0f} ms")
    assert elapsed < 1.0


def _time(g: int) -> str:
    import datetime as dt

    return (dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=g)).isoformat(sep=" ")
