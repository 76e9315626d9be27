"""The one core shared by the sync and async APIs.

Every operation of this package is written once, as a generator that yields
the database steps it needs (`Execute`, `Commit`, `Rollback`) and receives
their results; it never touches the network itself. Two thin drivers run
such a generator: `run()` on a `psycopg.Connection` and `arun()` on a
`psycopg.AsyncConnection`. This is how psycopg shares its own logic between
`Connection` and `AsyncConnection` (its ``*_gen`` generators), and it is why
the sync and async halves of pghistory cannot drift apart.

`run_any()` picks the driver from the connection's type, so a public function
returns its result for a `Connection` and an awaitable for an
`AsyncConnection`.
"""

from __future__ import annotations

from collections.abc import Coroutine, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, Union

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

T = TypeVar("T")

#: A row as the drivers return it: always a tuple, whatever row factory the
#: caller's connection uses.
Row = tuple[Any, ...]


@dataclass(frozen=True)
class Execute:
    """Run one statement; the driver sends back its rows (``[]`` if none)."""

    query: sql.SQL | sql.Composed
    params: Sequence[Any] = field(default_factory=tuple)


@dataclass(frozen=True)
class Commit:
    """Commit the current transaction (``conn.commit()``)."""


@dataclass(frozen=True)
class Rollback:
    """Roll back the current transaction (``conn.rollback()``).

    psycopg refuses it inside a ``conn.transaction()`` block: the driver then
    throws that `psycopg.ProgrammingError` into the generator, which decides.
    """


Step = Union[Execute, Commit, Rollback]

#: An operation: yields steps, is sent each step's result, returns a T.
Gen = Generator[Step, Any, T]

AnyConnection = Union["psycopg.Connection[Any]", "psycopg.AsyncConnection[Any]"]


def run(conn: psycopg.Connection[Any], gen: Gen[T]) -> T:
    """Drive *gen* on a sync connection and return its result."""
    try:
        step = next(gen)
        while True:
            try:
                result = _perform(conn, step)
            except psycopg.Error as ex:
                step = gen.throw(ex)
            else:
                step = gen.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


async def arun(conn: psycopg.AsyncConnection[Any], gen: Gen[T]) -> T:
    """Drive *gen* on an async connection and return its result."""
    try:
        step = next(gen)
        while True:
            try:
                result = await _aperform(conn, step)
            except psycopg.Error as ex:
                step = gen.throw(ex)
            else:
                step = gen.send(result)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def run_any(conn: object, gen: Gen[T]) -> T | Coroutine[Any, Any, T]:
    """Run *gen* with the driver for *conn*'s type (a coroutine for async)."""
    if isinstance(conn, psycopg.AsyncConnection):
        return arun(conn, gen)
    if isinstance(conn, psycopg.Connection):
        return run(conn, gen)
    gen.close()
    raise TypeError(check_connection_message(conn))


def check_connection_message(conn: object) -> str:
    return (
        "pghistory needs a psycopg.Connection or psycopg.AsyncConnection, "
        f"not {type(conn).__module__}.{type(conn).__qualname__}"
    )


def _perform(conn: psycopg.Connection[Any], step: Step) -> list[Row]:
    if isinstance(step, Execute):
        with conn.cursor(row_factory=tuple_row) as cur:
            cur.execute(step.query, step.params)
            return cur.fetchall() if cur.description is not None else []
    if isinstance(step, Commit):
        conn.commit()
    else:
        conn.rollback()
    return []


async def _aperform(conn: psycopg.AsyncConnection[Any], step: Step) -> list[Row]:
    if isinstance(step, Execute):
        async with conn.cursor(row_factory=tuple_row) as cur:
            await cur.execute(step.query, step.params)
            return await cur.fetchall() if cur.description is not None else []
    if isinstance(step, Commit):
        await conn.commit()
    else:
        await conn.rollback()
    return []
