"""The one core shared by the sync and async APIs.

Every operation of this package is written once, as a generator that yields
the database steps it needs (`Execute`, `Commit`, `Rollback`) and receives
their results; it never touches the network itself. Two thin drivers run
such a generator: `run()` on a `psycopg.Connection` and `arun()` on a
`psycopg.AsyncConnection`. This is how psycopg shares its own logic between
`Connection` and `AsyncConnection` (its ``*_gen`` generators), and it is why
the sync and async halves of pghistory cannot drift apart.

Each public operation is one core function ``<name>_gen(conn, ...)``;
`sync_twin()` makes ``pghistory.<name>`` of it (a `Connection` in, the
result out) and `async_twin()` ``pghistory.aio.<name>`` (an ``async def``
taking an `AsyncConnection`). Neither twin holds logic, and each refuses the
other connection kind with a `TypeError` naming the right twin, so a
forgotten ``await`` or a wrong connection fails at once, in mypy and at run
time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Generator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, Union

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

if TYPE_CHECKING:
    from typing_extensions import Concatenate, ParamSpec

    P = ParamSpec("P")

T = TypeVar("T")

#: A row as the drivers return it: always a tuple, whatever row factory the
#: caller's connection uses.
Row = tuple[Any, ...]


@dataclass(frozen=True)
class Execute:
    """Run one statement; the driver sends back its rows (``[]`` if none).

    With ``params=None`` the query goes as it is, by the simple protocol: a
    script of several statements (`._install` runs the built SQL scripts so).
    """

    query: sql.SQL | sql.Composed
    params: Sequence[Any] | None = field(default_factory=tuple)


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


def sync_twin(
    core: Callable[Concatenate[psycopg.Connection[Any], P], Gen[T]],
) -> Callable[Concatenate[psycopg.Connection[Any], P], T]:
    """``pghistory.<name>``: run *core* (``<name>_gen``) on a `psycopg.Connection`."""
    name = core.__name__.removesuffix("_gen")

    def twin(conn: psycopg.Connection[Any], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if not isinstance(conn, psycopg.Connection):
            raise TypeError(_wrong_kind(conn, f"pghistory.{name}()", f"await pghistory.aio.{name}()"))
        return run(conn, core(conn, *args, **kwargs))

    return _named(twin, core, "pghistory", name)


def async_twin(
    core: Callable[Concatenate[psycopg.AsyncConnection[Any], P], Gen[T]],
) -> Callable[Concatenate[psycopg.AsyncConnection[Any], P], Coroutine[Any, Any, T]]:
    """``pghistory.aio.<name>``: run *core* (``<name>_gen``) on a `psycopg.AsyncConnection`."""
    name = core.__name__.removesuffix("_gen")

    async def twin(conn: psycopg.AsyncConnection[Any], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if not isinstance(conn, psycopg.AsyncConnection):
            raise TypeError(_wrong_kind(conn, f"pghistory.aio.{name}()", f"pghistory.{name}()"))
        return await arun(conn, core(conn, *args, **kwargs))

    return _named(twin, core, "pghistory.aio", name)


F = TypeVar("F", bound=Callable[..., Any])


def _named(twin: F, core: Callable[..., Any], module: str, name: str) -> F:
    functools.update_wrapper(twin, core)  # the core's docstring and signature
    twin.__module__, twin.__name__, twin.__qualname__ = module, name, name
    return twin


def _wrong_kind(conn: object, function: str, twin: str) -> str:
    """The message for *conn* given to *function*, whose *twin* takes it."""
    if isinstance(conn, psycopg.AsyncConnection):
        return f"{function} takes a psycopg.Connection; for an AsyncConnection, use {twin}"
    if isinstance(conn, psycopg.Connection):
        return f"{function} takes a psycopg.AsyncConnection; for a Connection, use {twin}"
    return check_connection_message(conn)


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
