"""The package is typed: ``mypy --strict`` passes on it, and callers get
exact types on both connection kinds: ``pghistory.x`` takes a Connection and
returns the result, ``pghistory.aio.x`` takes an AsyncConnection and returns
a coroutine, so a wrong connection or a forgotten ``await`` is a type error. Runs once, not per
PostgreSQL major (it needs no server)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

USAGE = '''
from __future__ import annotations

import uuid

import psycopg
import psycopg_pool
from psycopg import sql

import pghistory as pgh


def sync(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    version: str = pgh.install(conn)
    table: str = pgh.track(conn, "public.orders", trackers=[pgh.InsertEvent(), pgh.UpdateEvent("s", changed=["status"])],
                           fields=["id"], event_table=sql.Identifier("audit", "h"), context="json", level="row",
                           append_only=False)
    with pgh.context(conn, user="alice") as ctx:
        ident: uuid.UUID | None = ctx.id
        pgh.context(conn, reason="x")
        pgh_id: int = pgh.create_event(conn, "orders", 1, "seen")
    with pgh.ignore(conn, local=False):
        pass
    events: list[pgh.Event] = pgh.events(conn, "orders", obj_id=1, labels=["update"], context_id=ident)
    label: str = events[0].pgh_label
    page: list[pgh.Event] = pgh.events(conn, order="desc", limit=10, before=events[-1], after=events[0])
    reverted: int | None = pgh.revert(conn, "orders_event", pgh_id)
    nothing: None = pgh.untrack(conn, "orders", drop_events=True)
    pgh.reset(conn)
    pool = psycopg_pool.ConnectionPool("", reset=pgh.reset, open=False)
    hpool = psycopg_pool.ConnectionPool("", connection_class=pgh.HistoryConnection, open=False)
    with pgh.context(user="alice") as ambient:
        ambient_id: uuid.UUID | None = ambient.id
        pgh.context(reason="x")
        current: pgh.CurrentContext | None = pgh.current_context()
        if current is not None:
            with pgh.context(id=current.id, **current.metadata):
                wire: dict[str, object] = current.as_dict()


async def asynchronous(aconn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    version: str = await pgh.aio.install(aconn)
    table: str = await pgh.aio.track(aconn, "orders", trackers=[pgh.InsertEvent()], context="json")
    async with pgh.context(aconn, user="alice") as ctx:
        ident: uuid.UUID | None = ctx.id
        await pgh.context(aconn, reason="x")
        pgh_id: int = await pgh.aio.create_event(aconn, "orders", 1, "seen")
    async with pgh.ignore(aconn):
        pass
    events: list[pgh.Event] = await pgh.aio.events(aconn)
    page: list[pgh.Event] = await pgh.aio.events(aconn, "orders", order="desc", limit=10, before=events[-1])
    reverted: int | None = await pgh.aio.revert(aconn, "orders_event", pgh_id)
    await pgh.aio.untrack(aconn, "orders")
    await pgh.aio.reset(aconn)
    pool = psycopg_pool.AsyncConnectionPool("", reset=pgh.aio.reset, open=False)
'''

MISUSE = '''
import psycopg
import pghistory as pgh


async def wrong(conn: psycopg.Connection[tuple[object, ...]], aconn: psycopg.AsyncConnection[tuple[object, ...]]) -> None:
    pgh.track(conn, "orders", context="sideways")
    n: int = pgh.track(conn, "orders")
    s: str = pgh.track(aconn, "orders")
    pgh.aio.track(aconn, "orders")
    t: str = pgh.aio.track(aconn, "orders")
    r: int = pgh.revert(conn, "orders_event", 1)
    pgh.events(conn, order="newest")
    pgh.UpdateEvent(snapshot="middle")
    pgh.install(aconn)
    pgh.aio.install(aconn)
'''


def mypy(*args: str) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mypy")
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "MYPYPATH": str(ROOT / "python")},  # also without `pip install -e .`
    )


def test_package_passes_mypy_strict():
    result = mypy("python/pghistory")
    assert result.returncode == 0, result.stdout + result.stderr


def test_callers_get_precise_types_on_both_connection_kinds(tmp_path):
    (tmp_path / "usage.py").write_text(textwrap.dedent(USAGE))
    (tmp_path / "misuse.py").write_text(textwrap.dedent(MISUSE))
    ok = mypy(str(tmp_path / "usage.py"))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = mypy(str(tmp_path / "misuse.py"))
    lines = [line.split(": error: ")[1] for line in bad.stdout.splitlines() if ": error: " in line]
    assert bad.returncode == 1
    assert lines == [
        'Argument "context" has incompatible type "Literal[\'sideways\']"; '
        'expected "Literal[\'fk\', \'json\', \'none\'] | None"  [arg-type]',
        'Incompatible types in assignment (expression has type "str", variable has type "int")  [assignment]',
        'Argument 1 has incompatible type "AsyncConnection[tuple[object, ...]]"; '
        'expected "Connection[Any]"  [arg-type]',
        'Value of type "Coroutine[Any, Any, str]" must be used  [unused-coroutine]',
        'Incompatible types in assignment (expression has type "Coroutine[Any, Any, str]", '
        'variable has type "str")  [assignment]',
        'Incompatible types in assignment (expression has type "int | None", variable has type "int")  [assignment]',
        'Argument "order" has incompatible type "Literal[\'newest\']"; '
        'expected "Literal[\'asc\', \'desc\']"  [arg-type]',
        'Argument "snapshot" to "UpdateEvent" has incompatible type "Literal[\'middle\']"; '
        'expected "Literal[\'new\', \'old\']"  [arg-type]',
        'Argument 1 has incompatible type "AsyncConnection[tuple[object, ...]]"; '
        'expected "Connection[Any]"  [arg-type]',
        'Value of type "Coroutine[Any, Any, str]" must be used  [unused-coroutine]',
    ], bad.stdout
