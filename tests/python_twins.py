"""One test, both connection kinds: the ``twin`` fixtures.

A test written against a `Twin` runs once on a `psycopg.Connection` through
``pghistory.<name>`` and once on a `psycopg.AsyncConnection` through
``pghistory.aio.<name>`` (driven to completion on an event loop of its own),
so the async API is held to every assertion the sync one is::

    def test_x(conn, twin):
        make_orders(conn)                      # setup and observation: the sync ``conn``
        with twin.context(user="alice") as ctx:
            twin.execute("INSERT INTO orders VALUES (1, 'new')")
            twin.create_event("orders", 1, "insert")

``twin.<wrapper>(...)`` calls the wrapper on the twin's connection;
``twin.context(...)`` and ``twin.ignore(...)`` are ``with`` blocks (``async
with`` underneath for async); ``twin.context_call(...)`` is the call form
(awaited for async); ``twin.execute()``, ``commit()``, ``rollback()``,
``transaction()``, ``close()`` and ``twin.conn`` reach the connection itself;
``twin.settings()`` and ``twin.enabled()`` read pghistory's settings as the
connection sees them (its transaction state left as found).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus

import pghistory as pgh
from python_helpers import SETTINGS_SQL, enabled, settings

#: The wrappers with a twin in pghistory.aio (install is dual: awaited as it is).
WRAPPERS = ("track", "untrack", "create_event", "events", "revert", "reset")


class SyncTwin:
    """The sync API on a `psycopg.Connection`."""

    kind = "sync"

    def __init__(self, conn: psycopg.Connection[Any]):
        self.conn = conn

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in (*WRAPPERS, "install"):
            raise AttributeError(name)
        function = getattr(pgh, name)
        return lambda *args, **kwargs: function(self.conn, *args, **kwargs)

    def execute(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        cur = self.conn.execute(query, params)
        return cur.fetchall() if cur.description is not None else []

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def transaction(self) -> Any:
        return self.conn.transaction()

    def close(self) -> None:
        self.conn.close()

    def settings(self) -> tuple[str | None, str | None]:
        return settings(self.conn)

    def enabled(self) -> str | None:
        return enabled(self.conn)

    def context(self, **metadata: Any) -> Any:
        return pgh.context(self.conn, **metadata)

    def context_call(self, **metadata: Any) -> Any:
        return pgh.context(self.conn, **metadata)

    def ignore(self, **kwargs: Any) -> Any:
        return pgh.ignore(self.conn, **kwargs)


class AsyncTwin:
    """The async API on a `psycopg.AsyncConnection`, each call run to completion."""

    kind = "async"

    def __init__(self, loop: asyncio.AbstractEventLoop, aconn: psycopg.AsyncConnection[Any]):
        self.loop = loop
        self.conn = aconn

    def run(self, awaitable: Any) -> Any:
        return self.loop.run_until_complete(awaitable)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name not in (*WRAPPERS, "install"):
            raise AttributeError(name)
        function = getattr(pgh.aio, name) if name in WRAPPERS else getattr(pgh, name)
        return lambda *args, **kwargs: self.run(function(self.conn, *args, **kwargs))

    def execute(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        async def execute() -> list[tuple[Any, ...]]:
            cur = await self.conn.execute(query, params)
            return await cur.fetchall() if cur.description is not None else []

        return self.run(execute())  # type: ignore[no-any-return]

    def commit(self) -> None:
        self.run(self.conn.commit())

    def rollback(self) -> None:
        self.run(self.conn.rollback())

    @contextmanager
    def _block(self, block: Any) -> Iterator[Any]:
        entered = self.run(block.__aenter__())
        try:
            yield entered
        except BaseException as ex:
            if not self.run(block.__aexit__(type(ex), ex, ex.__traceback__)):
                raise
        else:
            self.run(block.__aexit__(None, None, None))

    def transaction(self) -> Any:
        return self._block(self.conn.transaction())

    def close(self) -> None:
        self.run(self.conn.close())

    def _read(self, query: str) -> Any:
        # as python_helpers.settings(): the connection's state left as found
        idle = self.conn.info.transaction_status == TransactionStatus.IDLE
        row = self.execute(query)[0]
        if idle and not self.conn.autocommit:
            self.rollback()
        return row

    def settings(self) -> tuple[str | None, str | None]:
        return tuple(self._read(SETTINGS_SQL))  # type: ignore[return-value]

    def enabled(self) -> str | None:
        return self._read("SELECT current_setting('pghistory.enabled', true)")[0]  # type: ignore[no-any-return]

    def context(self, **metadata: Any) -> Any:
        return self._block(pgh.context(self.conn, **metadata))

    def context_call(self, **metadata: Any) -> Any:
        call = pgh.context(self.conn, **metadata)
        self.run(_awaited(call))
        return call

    def ignore(self, **kwargs: Any) -> Any:
        return self._block(pgh.ignore(self.conn, **kwargs))


async def _awaited(awaitable: Any) -> None:
    await awaitable


Twin = Any  # SyncTwin | AsyncTwin: one interface


@pytest.fixture(params=["sync", "async"])
def twin_connect(request: pytest.FixtureRequest, dsn: str) -> Iterator[Callable[..., Twin]]:
    """Factory of twins on new connections (``autocommit=`` as for psycopg)."""
    made: list[Any] = []
    loop = asyncio.new_event_loop() if request.param == "async" else None

    def connect(*, autocommit: bool = True) -> Twin:
        if loop is None:
            conn = psycopg.connect(dsn, autocommit=autocommit)
            made.append(conn.close)
            return SyncTwin(conn)
        aconn = loop.run_until_complete(psycopg.AsyncConnection.connect(dsn, autocommit=autocommit))
        made.append(lambda: loop.run_until_complete(aconn.close()))
        return AsyncTwin(loop, aconn)

    yield connect
    for close in made:
        close()
    if loop is not None:
        loop.close()


@pytest.fixture
def twin(twin_connect: Callable[..., Twin]) -> Twin:
    """A twin on an autocommit connection to the test database."""
    return twin_connect()
