"""The ambient context (``pgh.context(**metadata)`` without a connection) and
the psycopg connection classes that apply it: `pgh.HistoryConnection`,
`pgh.AsyncHistoryConnection`, in pools too; `pgh.current_context()` and
continuing a context elsewhere."""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import threading
import uuid
from typing import Any

import psycopg
import psycopg_pool
import pytest

import pghistory as pgh
from python_helpers import SETTINGS_SQL, contexts, history, make_orders


@pytest.fixture
def orders(conn: psycopg.Connection[Any]) -> None:
    make_orders(conn)


def test_ambient_blocks_nest_merge_and_end_without_a_connection():
    assert pgh.current_context() is None
    pgh.context(ignored="outside")  # the call form outside any context does nothing
    assert pgh.current_context() is None
    with pgh.context(user="alice", url="/a") as outer:
        first = pgh.current_context()
        assert first == pgh.CurrentContext(outer.id, {"user": "alice", "url": "/a"})
        with pgh.context(url="/b", step=1) as inner:
            assert inner.id == outer.id
            pgh.context(reason="call form")
            assert pgh.current_context() == pgh.CurrentContext(
                outer.id, {"user": "alice", "url": "/b", "step": 1, "reason": "call form"}
            )
        # merged keys stay until the outermost block ends, as with a connection
        assert pgh.current_context().metadata == {
            "user": "alice", "url": "/b", "step": 1, "reason": "call form"
        }
        assert outer.metadata == {"user": "alice", "url": "/b", "step": 1, "reason": "call form"}
    assert pgh.current_context() is None
    with pgh.context(user="bob") as again:
        assert again.id != outer.id
    assert pgh.current_context() is None


def test_ambient_context_follows_tasks_and_copied_threads_but_not_other_tasks():
    seen: dict[str, Any] = {}

    async def request(name: str) -> None:
        async with pgh.context(user=name) as ctx:
            await asyncio.sleep(0.01)
            child = asyncio.create_task(asyncio.sleep(0, result=pgh.current_context()))
            in_thread = await asyncio.to_thread(pgh.current_context)
            seen[name] = (ctx.id, pgh.current_context(), await child, in_thread)

    async def main() -> None:
        await asyncio.gather(*(request(f"user{i}") for i in range(10)))

    asyncio.run(main())
    assert len({v[0] for v in seen.values()}) == 10
    for name, (ident, mine, child, in_thread) in seen.items():
        assert mine == child == in_thread == pgh.CurrentContext(ident, {"user": name})
    plain = threading.Thread(target=lambda: seen.update(plain=pgh.current_context()))
    with pgh.context(user="x"):
        plain.start()
        plain.join()
    assert seen["plain"] is None  # a new thread starts with an empty contextvars.Context


def test_bad_arguments_are_refused_before_anything_happens(conn):
    with pytest.raises(TypeError, match=r"local= applies to a connection's context; the ambient"):
        pgh.context(local=True, user="a")
    with pytest.raises(TypeError, match=r"id= continues a context in the ambient form"):
        pgh.context(conn, id=uuid.uuid4())
    with pytest.raises(ValueError, match=r"a pghistory context id is a UUID \(or its text\), not 'nope'"):
        pgh.context(id="nope")
    with pytest.raises(TypeError, match=r"metadata\['when'\] is a object"):
        pgh.context(when=object())
    with pgh.context(user="a") as ctx:
        other = uuid.uuid4()
        with pytest.raises(pgh.ContextError) as err:
            pgh.context(id=other)
        assert str(err.value) == (
            f"pghistory.context(id={str(other)!r}) continues a context, but context "
            f"{str(ctx.id)!r} is already active here; continue a context outside any other "
            "(at the start of the job or request)"
        )
        with pgh.context(id=str(ctx.id), more=1):  # the same id is fine: it merges
            assert pgh.current_context().metadata == {"user": "a", "more": 1}
        block = pgh.context(b=1)
        with block:
            with pytest.raises(pgh.ContextError, match="already entered"):
                block.__enter__()


def test_history_connection_applies_the_context_to_each_transaction(conn, dsn, orders):
    with pgh.HistoryConnection.connect(dsn) as hconn:
        hconn.execute("INSERT INTO orders VALUES (1, 'new')")
        hconn.commit()
        with pgh.context(user="alice") as ctx:
            hconn.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
            hconn.commit()
            pgh.context(reason="refund")  # between transactions: the next one carries it
            hconn.execute("UPDATE orders SET status = 'refunded' WHERE id = 1")
            assert hconn.execute(SETTINGS_SQL).fetchone() == (
                str(ctx.id), '{"user":"alice","reason":"refund"}'
            )
            hconn.rollback()  # a rolled-back transaction: its event is gone, the context stays
            with hconn.transaction():
                hconn.execute("UPDATE orders SET status = 'shipped' WHERE id = 1")
        hconn.execute("DELETE FROM orders")
        hconn.commit()
        # nothing stays on the connection after a transaction
        assert hconn.execute(SETTINGS_SQL).fetchone() in ((None, None), ("", ""))
        hconn.rollback()
    assert history(conn) == [
        ("insert", 1, "new", None),
        ("update", 1, "paid", ctx.id),
        ("update", 1, "shipped", ctx.id),
        ("delete", 1, "shipped", None),
    ]
    assert contexts(conn) == {ctx.id: {"user": "alice", "reason": "refund"}}


def test_metadata_added_inside_a_transaction_applies_to_its_next_statement(conn, dsn, orders):
    with pgh.HistoryConnection.connect(dsn) as hconn:
        with pgh.context(user="alice") as ctx:
            hconn.execute("SELECT 1")  # e.g. the query that authenticates the user
            pgh.context(role="admin")
            hconn.execute("INSERT INTO orders VALUES (1, 'new')")
            hconn.commit()
    assert history(conn) == [("insert", 1, "new", ctx.id)]
    assert contexts(conn) == {ctx.id: {"user": "alice", "role": "admin"}}


def test_autocommit_history_connection_applies_it_to_transaction_blocks_only(conn, dsn, orders):
    with pgh.HistoryConnection.connect(dsn, autocommit=True) as hconn:
        with pgh.context(user="alice") as ctx:
            with hconn.transaction():
                hconn.execute("INSERT INTO orders VALUES (1, 'new')")
            # a statement in a transaction of its own cannot carry a transaction-scoped setting
            hconn.execute("INSERT INTO orders VALUES (2, 'new')")
    assert history(conn) == [("insert", 1, "new", ctx.id), ("insert", 2, "new", None)]


def round_trips(hconn: psycopg.Connection[Any], tmp_path: Any, work: Any) -> list[str]:
    """What *hconn* sends while ``work()`` runs (libpq's protocol trace): one
    entry per round trip, each simple Query or each Sync of the extended protocol."""
    trace = tmp_path / "trace.txt"
    with open(trace, "w") as f:
        hconn.pgconn.trace(os.dup(f.fileno()))  # libpq's FILE gets an fd of its own
        try:
            work()
        finally:
            hconn.pgconn.untrace()
    sent = []
    for line in trace.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) > 3 and parts[1] == "F" and parts[3] in ("Query", "Sync"):
            sent.append("Sync" if parts[3] == "Sync" else "Query " + parts[4].strip()[:28])
    return sent


def test_one_round_trip_per_transaction_and_none_without_a_context(conn, dsn, orders, tmp_path):
    with pgh.HistoryConnection.connect(dsn) as hconn:
        def write(i: int) -> None:
            hconn.execute("INSERT INTO orders VALUES (%s, 'new')", [i])
            hconn.execute("UPDATE orders SET status = 'paid' WHERE id = %s", [i])
            hconn.commit()

        without = round_trips(hconn, tmp_path, lambda: write(1))
        with pgh.context(user="alice"):
            with_context = round_trips(hconn, tmp_path, lambda: write(2))
    assert without == ['Query "BEGIN"', "Sync", "Sync", 'Query "COMMIT"']
    assert with_context == [
        'Query "BEGIN"', 'Query "SET LOCAL citus.propagate_s', "Sync", "Sync", 'Query "COMMIT"'
    ]


def test_a_block_on_a_connection_joins_the_ambient_context(conn, dsn, orders):
    with pgh.context(request="r1") as ambient:
        with pgh.context(conn, reason="import") as block:
            assert block.id == ambient.id
            conn.execute("INSERT INTO orders VALUES (1, 'new')")
        assert pgh.current_context().metadata == {"request": "r1", "reason": "import"}
    conn.execute("INSERT INTO orders VALUES (2, 'new')")
    assert history(conn) == [("insert", 1, "new", ambient.id), ("insert", 2, "new", None)]
    assert contexts(conn) == {ambient.id: {"request": "r1", "reason": "import"}}


def test_current_context_serialises_and_continues_elsewhere(conn, dsn, orders):
    with pgh.context(user="alice", when=uuid.UUID(int=7)):
        ctx = pgh.current_context()
    assert ctx is not None
    wire = json.dumps(ctx.as_dict())
    assert json.loads(wire) == {
        "id": str(ctx.id), "metadata": {"user": "alice", "when": str(uuid.UUID(int=7))}
    }
    assert pgh.CurrentContext.from_dict(json.loads(wire)) == ctx
    assert pickle.loads(pickle.dumps(ctx)) == ctx
    with pytest.raises(ValueError, match="exactly the keys 'id' and 'metadata'"):
        pgh.CurrentContext.from_dict({"id": str(ctx.id)})

    def worker(payload: str) -> None:  # elsewhere: another thread, process or service
        job = pgh.CurrentContext.from_dict(json.loads(payload))
        with pgh.context(id=job.id, **job.metadata, job="mail"):
            with pgh.HistoryConnection.connect(dsn) as hconn:
                hconn.execute("INSERT INTO orders VALUES (1, 'new')")
                hconn.commit()

    t = threading.Thread(target=worker, args=(wire,))
    t.start()
    t.join()
    assert history(conn) == [("insert", 1, "new", ctx.id)]
    assert contexts(conn) == {ctx.id: {"user": "alice", "when": str(uuid.UUID(int=7)), "job": "mail"}}


def test_pools_of_history_connections_keep_concurrent_contexts_apart(conn, dsn, orders):
    async def request(pool: psycopg_pool.AsyncConnectionPool[Any], i: int) -> uuid.UUID:
        async with pgh.context(user=f"user{i}") as ctx:
            async with pool.connection() as aconn:
                await aconn.execute("INSERT INTO orders VALUES (%s, 'new')", [i])
            await asyncio.sleep(0)
            async with pool.connection() as aconn:  # a second transaction, maybe another connection
                await aconn.execute("UPDATE orders SET status = 'paid' WHERE id = %s", [i])
        assert ctx.id is not None
        return ctx.id

    async def main() -> tuple[list[uuid.UUID], list[Any]]:
        async with psycopg_pool.AsyncConnectionPool(
            dsn, min_size=4, max_size=4, connection_class=pgh.AsyncHistoryConnection,
            reset=pgh.aio.reset, open=False,
        ) as pool:
            ids = await asyncio.gather(*(request(pool, i) for i in range(40)))
            left = []
            for _ in range(4):
                async with pool.connection() as aconn:
                    left.append(await (await aconn.execute(SETTINGS_SQL)).fetchone())
            return ids, left

    ids, left = asyncio.run(main())
    got = conn.execute(
        "SELECT id, array_agg(pgh_label ORDER BY pgh_id), array_agg(DISTINCT pgh_context_id)"
        " FROM orders_event GROUP BY id ORDER BY id"
    ).fetchall()
    assert got == [(i, ["insert", "update"], [ids[i]]) for i in range(40)]
    assert contexts(conn) == {ids[i]: {"user": f"user{i}"} for i in range(40)}
    assert all(row in ((None, None), ("", "")) for row in left), left

    with psycopg_pool.ConnectionPool(
        dsn, min_size=2, max_size=2, connection_class=pgh.HistoryConnection, open=True
    ) as spool:
        with pgh.context(user="sync") as ctx, spool.connection() as sconn:
            sconn.execute("INSERT INTO orders VALUES (100, 'new')")
    assert history(conn)[-1] == ("insert", 100, "new", ctx.id)
