"""The binding on psycopg.AsyncConnection: ``async with pgh.context(...)``,
``await pgh.context(...)``, ``async with pgh.ignore(...)``, pools with
``reset=pgh.aio.reset``. (The wrappers' tests run on both connection kinds:
see python_twins and test_python_wrappers.py.) Each test runs its coroutine
with asyncio.run (no plugin needed); ``conn`` (sync, autocommit) observes."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus

import pghistory as pgh
from python_helpers import SETTINGS_SQL, contexts, history, make_orders

CLEARED = ("", "")


async def asettings(aconn: psycopg.AsyncConnection[Any]) -> tuple[Any, ...]:
    idle = aconn.info.transaction_status == TransactionStatus.IDLE
    cur = await aconn.execute(SETTINGS_SQL)
    row = await cur.fetchone()
    if idle and not aconn.autocommit:
        await aconn.rollback()
    assert row is not None
    return tuple(row)


@pytest.fixture
def orders(conn: psycopg.Connection[Any]) -> None:
    make_orders(conn)


def test_async_context_block_nesting_and_call_form(conn, dsn, orders):
    async def main() -> Any:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as aconn:
            async with pgh.context(aconn, user="alice") as ctx:
                assert isinstance(ctx, pgh.AsyncContext)
                await aconn.execute("INSERT INTO orders VALUES (1, 'new')")
                async with pgh.context(aconn, step=2) as inner:
                    assert inner.id == ctx.id
                    await aconn.execute("UPDATE orders SET status = 'paid'")
                await pgh.context(aconn, reason="refund")
                assert await asettings(aconn) == (str(ctx.id), '{"user":"alice","step":2,"reason":"refund"}')
                await aconn.execute("UPDATE orders SET status = 'refunded'")
            assert await asettings(aconn) == CLEARED
            await pgh.context(aconn, ignored=True)  # call form outside a context: nothing
            assert await asettings(aconn) == CLEARED
            await aconn.execute("DELETE FROM orders")
            return ctx.id

    ctx_id = asyncio.run(main())
    assert history(conn) == [
        ("insert", 1, "new", ctx_id),
        ("update", 1, "paid", ctx_id),
        ("update", 1, "refunded", ctx_id),
        ("delete", 1, "refunded", None),
    ]
    assert contexts(conn) == {ctx_id: {"user": "alice", "step": 2, "reason": "refund"}}


def test_async_context_across_commits_and_rollbacks(conn, dsn, orders):
    async def main() -> Any:
        async with await psycopg.AsyncConnection.connect(dsn) as aconn:
            async with pgh.context(aconn, user="alice") as ctx:
                await aconn.execute("INSERT INTO orders VALUES (1, 'new')")
                await aconn.commit()
                await aconn.execute("INSERT INTO orders VALUES (2, 'lost')")
                await aconn.rollback()
                await aconn.execute("UPDATE orders SET status = 'paid'")
                await aconn.commit()
            assert aconn.info.transaction_status == TransactionStatus.IDLE
            assert await asettings(aconn) == CLEARED
            return ctx.id

    ctx_id = asyncio.run(main())
    assert history(conn) == [("insert", 1, "new", ctx_id), ("update", 1, "paid", ctx_id)]


def test_async_errors_leave_no_context_and_a_usable_connection(conn, dsn, orders):
    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(dsn) as aconn:
            with pytest.raises(psycopg.errors.UniqueViolation):
                async with pgh.context(aconn, user="alice"):
                    await aconn.execute("INSERT INTO orders VALUES (1, 'a'), (1, 'b')")
            assert aconn.info.transaction_status == TransactionStatus.IDLE
            with pytest.raises(LookupError):
                async with pgh.context(aconn, user="bob"):
                    await aconn.execute("INSERT INTO orders VALUES (2, 'rolled back')")
                    raise LookupError
            await aconn.execute("INSERT INTO orders VALUES (3, 'after')")
            await aconn.commit()
            assert await asettings(aconn) == CLEARED

    asyncio.run(main())
    assert history(conn) == [("insert", 3, "after", None)]
    assert contexts(conn) == {}


def test_async_tasks_on_their_own_connections_keep_their_own_contexts(conn, dsn, orders):
    conn.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'new')")

    async def worker(n: int) -> Any:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as aconn:
            async with pgh.context(aconn, worker=n) as ctx:
                for i in range(5):
                    await asyncio.sleep(0)  # let the other task run inside its own context
                    await aconn.execute("UPDATE orders SET status = %s WHERE id = %s", [f"s{i}", n])
            return ctx.id

    async def main() -> list[Any]:
        return list(await asyncio.gather(worker(1), worker(2)))

    id1, id2 = asyncio.run(main())
    assert conn.execute(
        "SELECT id, pgh_context_id, count(*) FROM orders_event WHERE pgh_label = 'update' GROUP BY 1, 2 ORDER BY 1"
    ).fetchall() == [(1, id1, 5), (2, id2, 5)]
    assert contexts(conn) == {id1: {"worker": 1}, id2: {"worker": 2}}


def test_async_local_context_and_ignore(conn, dsn, orders):
    async def main() -> Any:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as aconn:
            with pytest.raises(pgh.ContextError):
                async with pgh.context(aconn, local=True, user="alice"):
                    pass
            async with aconn.transaction():
                async with pgh.context(aconn, local=True, user="alice") as ctx:
                    await aconn.execute("INSERT INTO orders VALUES (1, 'new')")
                    async with pgh.ignore(aconn) as ign:
                        assert isinstance(ign, pgh.AsyncIgnore)
                        await aconn.execute("INSERT INTO orders VALUES (2, 'ignored')")
                    await aconn.execute("INSERT INTO orders VALUES (3, 'recorded')")
            assert await asettings(aconn) == CLEARED
            cur = await aconn.execute("SELECT current_setting('pghistory.enabled')")
            assert await cur.fetchone() == ("",)
            return ctx.id

    ctx_id = asyncio.run(main())
    assert history(conn) == [("insert", 1, "new", ctx_id), ("insert", 3, "recorded", ctx_id)]


def test_async_install_is_its_own_twin(conn, dsn):
    # the other wrappers run on both connection kinds in test_python_wrappers.py
    async def main() -> str:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as aconn:
            with pytest.raises(TypeError) as info:
                pgh.install(aconn)  # type: ignore[arg-type]
            assert str(info.value) == ("pghistory.install() takes a psycopg.Connection; "
                                       "for an AsyncConnection, use await pghistory.aio.install()")
            return await pgh.aio.install(aconn)

    assert asyncio.run(main()) == pgh.__version__
    with pytest.raises(TypeError) as info:
        asyncio.run(pgh.aio.install(conn))  # type: ignore[arg-type]
    assert str(info.value) == ("pghistory.aio.install() takes a psycopg.AsyncConnection; "
                               "for a Connection, use pghistory.install()")


def test_async_pool_with_reset_hands_back_clean_connections(conn, dsn, orders):
    psycopg_pool = pytest.importorskip("psycopg_pool")

    async def main() -> Any:
        async with psycopg_pool.AsyncConnectionPool(
            dsn, min_size=1, max_size=1, reset=pgh.aio.reset, open=False
        ) as pool:
            with pytest.raises(ValueError):
                async with pool.connection() as aconn:
                    async with pgh.context(aconn, user="alice"):
                        await aconn.execute("INSERT INTO orders VALUES (1, 'new')")
                    raise ValueError  # after the block: only the reset callback can clear
            async with pool.connection() as aconn:
                assert await asettings(aconn) == CLEARED
                await aconn.execute("INSERT INTO orders VALUES (2, 'next borrower')")

    asyncio.run(main())
    assert history(conn) == [("insert", 2, "next borrower", None)]


def test_async_call_form_that_is_not_awaited_warns(conn, dsn, orders):
    async def main() -> None:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as aconn:
            async with pgh.context(aconn, user="alice"):
                with pytest.warns(RuntimeWarning, match="neither awaited nor entered, so it did nothing"):
                    pgh.context(aconn, forgotten=True)
                    gc.collect()
                await aconn.execute("INSERT INTO orders VALUES (1, 'new')")

    asyncio.run(main())
    assert list(contexts(conn).values()) == [{"user": "alice"}]
