"""The sync and async adapters of the ``with`` blocks (`pghistory.context()`
on a connection, `pghistory.ignore()`).

A block is written once, as two generators of the I/O-free core (see
`._ops`): ``_enter_gen()`` and ``_exit_gen(raised)``. `SyncBlock` runs them
for ``with`` on a `psycopg.Connection`, `AsyncBlock` for ``async with`` on a
`psycopg.AsyncConnection`; neither holds any logic of its own.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any, TypeVar

import psycopg

from ._ops import Gen, arun, run

logger = logging.getLogger("pghistory")

#: The connection kind a block's core is written for.
ConnT = TypeVar("ConnT", psycopg.Connection[Any], psycopg.AsyncConnection[Any])

SyncBlockT = TypeVar("SyncBlockT", bound="SyncBlock")
AsyncBlockT = TypeVar("AsyncBlockT", bound="AsyncBlock")


def exit_failed(what: str, exc: BaseException | None) -> bool:
    """After cleanup failed: True to swallow that failure (the block's own
    exception is already on its way and matters more), after logging it."""
    if exc is None:
        return False
    logger.warning("could not %s after %r", what, exc, exc_info=True)
    return True


class Block:
    """A block's core, which `SyncBlock` and `AsyncBlock` drive."""

    #: What the exit does, for the log line when it fails after an exception.
    _exit_what: str

    def _enter_gen(self) -> Gen[None]:
        raise NotImplementedError

    def _exit_gen(self, raised: bool) -> Gen[None]:
        raise NotImplementedError


class SyncBlock(Block):
    """``with`` for a block on a `psycopg.Connection`."""

    _conn: psycopg.Connection[Any]

    def __enter__(self: SyncBlockT) -> SyncBlockT:
        run(self._conn, self._enter_gen())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            run(self._conn, self._exit_gen(exc is not None))
        except psycopg.Error:
            if not exit_failed(self._exit_what, exc):
                raise


class AsyncBlock(Block):
    """``async with`` for a block on a `psycopg.AsyncConnection`."""

    _conn: psycopg.AsyncConnection[Any]

    async def __aenter__(self: AsyncBlockT) -> AsyncBlockT:
        await arun(self._conn, self._enter_gen())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await arun(self._conn, self._exit_gen(exc is not None))
        except psycopg.Error:
            if not exit_failed(self._exit_what, exc):
                raise
