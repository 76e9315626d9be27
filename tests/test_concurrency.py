"""Concurrency and faults: concurrent writers lose no event and never deadlock on pghistory.context;
a server killed in the middle of a bulk tracked update comes back with history matching the data."""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
import uuid
from typing import Any

import psycopg
import pytest

import harness
from sqlhelpers import rows, value

THREADS = 6
TRANSACTIONS = 40
HOT = [1, 2, 3, 4]          # rows every thread updates
OWN = 5                     # rows each thread has to itself (multi-row statements)
SHARED_CONTEXT = uuid.UUID("00000000-0000-4000-8000-000000000001")


@pytest.fixture(params=["statement", "row"])
def level(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def writer(dsn: str, thread: int, outcome: dict[str, Any]) -> None:
    """One connection's transactions: hot rows (always in key order, so only pghistory could add
    a lock cycle), its own rows several at a time, an insert and a delete; under no context, a
    fresh context per transaction, the thread's session-long context (its metadata changing now
    and then), or a context id every thread shares. Some roll back."""
    rng = random.Random(thread)
    committed: dict[str, Any] = {}
    own = [1000 + thread * OWN + i for i in range(OWN)]
    try:
        with psycopg.connect(dsn, autocommit=False) as conn:
            conn.execute("SET deadlock_timeout = '100ms'")  # report a deadlock fast, should there be one
            conn.commit()
            session_context = None
            for n in range(TRANSACTIONS):
                tag = f"{thread}-{n}"
                mode = n % 4
                context_id = None
                if mode != 3:  # the session context is for its own kind of transaction only
                    conn.execute("SELECT pghistory.clear_context()")
                if mode == 1:
                    context_id = conn.execute(
                        "SELECT pghistory.set_context(%s::jsonb)", (f'{{"tag": "{tag}"}}',)).fetchone()[0]
                elif mode == 3:
                    conn.execute("SELECT set_config('pghistory.context_id', %s, false), "
                                 "set_config('pghistory.context_metadata', %s, false)",
                                 (str(session_context or uuid.uuid4()), f'{{"thread": {thread}, "step": {n // 12}}}'))
                    context_id = session_context = uuid.UUID(conn.execute(
                        "SELECT current_setting('pghistory.context_id')").fetchone()[0])
                elif mode == 2:
                    conn.execute("SELECT set_config('pghistory.context_id', %s, true), "
                                 "set_config('pghistory.context_metadata', '{\"shared\": true}', true)",
                                 (str(SHARED_CONTEXT),))
                    context_id = SHARED_CONTEXT
                first, second = sorted(rng.sample(HOT, 2))
                for key in (first, second):
                    conn.execute("UPDATE accounts SET balance = balance + 1, tag = %s WHERE id = %s", (tag, key))
                conn.execute("UPDATE accounts SET balance = balance + 1, tag = %s WHERE id = ANY(%s)", (tag, own))
                extra = 100000 + thread * 1000 + n
                conn.execute("INSERT INTO accounts VALUES (%s, 0, %s)", (extra, tag))
                if n % 2:
                    conn.execute("DELETE FROM accounts WHERE id = %s", (extra,))
                if n % 7 == 6:
                    conn.rollback()
                else:
                    conn.commit()
                    committed[tag] = context_id
    except Exception as exc:  # noqa: BLE001 - reported by the test
        outcome[f"thread {thread}"] = repr(exc)
    outcome.setdefault("committed", {}).update(committed)


def test_concurrent_writers_lose_no_event_and_never_deadlock(conn, dsn, level):
    conn.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL, tag text)")
    conn.execute("SELECT pghistory.track('accounts', level => %s)", (level,))
    conn.execute("INSERT INTO accounts SELECT unnest(%s::int[]), 0, 'init'",
                 (HOT + [1000 + t * OWN + i for t in range(THREADS) for i in range(OWN)],))
    # the shared context exists before the writers start: transactions that create the same
    # context id at the same moment queue on its row like any insert of one key
    conn.execute("INSERT INTO pghistory.context (id, metadata) VALUES (%s, '{\"shared\": true}')",
                 (SHARED_CONTEXT,))
    outcome: dict[str, Any] = {}
    threads = [threading.Thread(target=writer, args=(dsn, t, outcome)) for t in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    errors = {k: v for k, v in outcome.items() if k != "committed"}
    assert errors == {}, "\n".join(errors.values())
    committed: dict[str, uuid.UUID | None] = outcome["committed"]
    assert len(committed) == THREADS * (TRANSACTIONS - TRANSACTIONS // 7)

    # every committed change has its event, and nothing else does
    assert rows(conn, """
        SELECT a.id FROM accounts AS a
         WHERE a.balance <> (SELECT count(*) FROM accounts_event AS e
                              WHERE e.pgh_obj_id = a.id AND e.pgh_label = 'update')""") == []
    assert value(conn, "SELECT count(*) FROM accounts_event WHERE pgh_label = 'update'") == \
        value(conn, "SELECT sum(balance) FROM accounts")
    # the latest snapshot of every row is the row
    assert rows(conn, """
        SELECT a.id FROM accounts AS a
          LEFT JOIN LATERAL (SELECT e.id, e.balance, e.tag FROM accounts_event AS e WHERE e.pgh_obj_id = a.id
                              ORDER BY e.pgh_id DESC LIMIT 1) AS last ON true
         WHERE (last.id, last.balance, last.tag) IS DISTINCT FROM (a.id, a.balance, a.tag)""") == []
    # events of rolled-back transactions are gone with them; committed ones carry their context
    tags = dict(rows(conn, """SELECT tag, array_agg(DISTINCT pgh_context_id) FROM accounts_event
                               WHERE tag <> 'init' GROUP BY tag"""))
    assert sorted(tags) == sorted(committed)
    assert {tag: ids for tag, ids in tags.items() if ids != [committed[tag]]} == {}
    # inserts and deletes: every extra row inserted once, odd ones deleted
    assert value(conn, "SELECT count(*) FROM accounts_event WHERE pgh_label = 'insert' AND id >= 100000") == \
        len(committed)
    assert value(conn, "SELECT count(*) FROM accounts_event WHERE pgh_label = 'delete'") == \
        sum(1 for tag in committed if int(tag.split("-")[1]) % 2)
    # one context row per context, with its metadata
    contexts = dict(rows(conn, "SELECT id, metadata FROM pghistory.context"))
    used = {c for c in committed.values() if c is not None}
    assert set(contexts) == used
    assert contexts[SHARED_CONTEXT] == {"shared": True}
    for tag, context_id in committed.items():
        thread, n = map(int, tag.split("-"))
        if n % 4 == 1:
            assert contexts[context_id] == {"tag": tag}
        elif n % 4 == 3:  # the last metadata written under the thread's session context
            last = max(m for m in range(n % 4, TRANSACTIONS, 4) if f"{thread}-{m}" in committed)
            assert contexts[context_id] == {"thread": thread, "step": last // 12}


# -- a server killed in the middle of a bulk update --------------------------------------------


def restart_after_immediate_stop(server: harness.Server) -> None:
    """pg_ctl stop -m immediate (a crash, as far as the data is concerned), then start the same
    data directory again, on the same port, the way the harness first started it."""
    executor = server._executor  # noqa: SLF001 - the harness keeps the start command there
    subprocess.run([str(executor.executable), "stop", "-D", str(server.datadir), "-m", "immediate"],
                   check=True, capture_output=True, timeout=120)
    subprocess.run(executor.command_parts, check=True, capture_output=True, timeout=300,
                   env={**os.environ, **executor.envvars})


def test_crash_during_bulk_update_leaves_history_matching_the_data(pg, level):
    rows_count = 60000
    # a server of its own: the session's server is shared by every other test
    with harness.Server(pg.build, settings={"synchronous_commit": "on"}) as server:
        with server.connect() as c:
            c.execute("CREATE EXTENSION pghistory")
            c.execute("CREATE TABLE big (id int PRIMARY KEY, v int NOT NULL, pad text)")
            c.execute("SELECT pghistory.track('big', level => %s)", (level,))
            c.execute("INSERT INTO big SELECT g, 0, repeat('x', 50) FROM generate_series(1, %s) AS g",
                      (rows_count,))
            started = time.monotonic()
            c.execute("UPDATE big SET v = v + 1")  # committed: every row has v = 1 and two events
            duration = time.monotonic() - started

        acknowledged: list[int] = []
        stop = threading.Event()

        def small_writer() -> None:
            """Commits single-row updates until the server goes away; remembers the acknowledged ones."""
            try:
                with server.connect() as w:
                    n = 0
                    while not stop.is_set():
                        n += 1
                        w.execute("UPDATE big SET v = v + 1 WHERE id = %s", (n % 10 + 1,))
                        acknowledged.append(n % 10 + 1)
            except psycopg.Error:
                pass

        bulk_error: list[BaseException] = []

        def bulk_update() -> None:
            try:
                with server.connect() as b:
                    b.execute("SELECT pghistory.set_context('{\"job\": \"bulk\"}', false)")
                    b.execute("UPDATE big SET v = v + 1")
            except psycopg.Error as exc:
                bulk_error.append(exc)

        threads = [threading.Thread(target=small_writer), threading.Thread(target=bulk_update)]
        for t in threads:
            t.start()
        with server.connect() as watcher:  # wait until the bulk update is well under way
            deadline = time.monotonic() + 60
            while not value(watcher, """SELECT count(*) FROM pg_stat_activity
                                         WHERE query = 'UPDATE big SET v = v + 1' AND state = 'active'
                                           AND now() - query_start > %s * interval '1 second'""",
                            max(duration * 0.4, 0.05)):
                assert time.monotonic() < deadline, "the bulk update did not start"
                time.sleep(0.01)
        restart_after_immediate_stop(server)
        stop.set()
        for t in threads:
            t.join(timeout=120)
        assert bulk_error, "the bulk update finished before the server was stopped"

        with server.connect() as c:
            # the bulk update is gone, data and history alike
            assert value(c, "SELECT count(*) FROM big WHERE id > 10 AND v <> 1") == 0
            # acknowledged commits survived
            for key in set(acknowledged):
                assert value(c, "SELECT v FROM big WHERE id = %s", key) >= 1 + acknowledged.count(key)
            # history matches the data: one update event per increment, latest snapshot = row
            assert rows(c, """
                SELECT b.id FROM big AS b
                 WHERE b.v <> (SELECT count(*) FROM big_event AS e
                                WHERE e.pgh_obj_id = b.id AND e.pgh_label = 'update')""") == []
            assert rows(c, """
                SELECT b.id FROM big AS b
                  LEFT JOIN LATERAL (SELECT e.id, e.v, e.pad FROM big_event AS e WHERE e.pgh_obj_id = b.id
                                      ORDER BY e.pgh_id DESC LIMIT 1) AS last ON true
                 WHERE (last.id, last.v, last.pad) IS DISTINCT FROM (b.id, b.v, b.pad)""") == []
            assert value(c, "SELECT count(*) FROM big_event WHERE pgh_label = 'insert'") == rows_count
            assert value(c, "SELECT count(*) FROM big_event WHERE pgh_context_id IS NOT NULL") == 0
            assert value(c, "SELECT count(*) FROM pghistory.context") == 0
            # and tracking goes on
            c.execute("UPDATE big SET v = v + 1 WHERE id = 500")
            assert rows(c, "SELECT pgh_label, v FROM big_event ORDER BY pgh_id DESC LIMIT 1") == [("update", 2)]
