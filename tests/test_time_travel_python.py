"""The Python wrappers of time travel and undo: pgh.backfill, as_of, changes, blame, revert_context,
events(changed=), sync and async."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

import psycopg
import pytest

import pghistory as pgh
import pghistory.aio
from python_twins import twin, twin_connect  # noqa: F401 (fixtures)
from sqlhelpers import rows, value


@dataclass(frozen=True)
class Order:
    id: int
    status: str
    amount: Decimal


@pytest.fixture
def history(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL, amount numeric)")
    conn.execute("INSERT INTO orders VALUES (1, 'old', 1)")
    conn.execute("SELECT pghistory.track('orders')")
    out: dict[str, Any] = {"backfilled": pgh.backfill(conn, "orders")}
    out["t1"] = value(conn, "SELECT clock_timestamp()")
    with pgh.context(conn, user="alice") as ctx:
        conn.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
        conn.execute("INSERT INTO orders VALUES (2, 'new', 2)")
    out["ctx"] = ctx.id
    out["t2"] = value(conn, "SELECT clock_timestamp()")
    return out


def test_sync_wrappers(conn, history):
    assert history["backfilled"] == 1
    assert pgh.backfill(conn, "orders", label="again") == 0
    assert pgh.as_of(conn, "orders", history["t1"]) == [{"id": 1, "status": "old", "amount": Decimal(1)}]
    # as_of() is a set: no order is promised, so compare in key order
    assert sorted(pgh.as_of(conn, "orders", history["t2"], row=Order), key=lambda o: o.id) == [
        Order(1, "paid", Decimal(1)), Order(2, "new", Decimal(2))]
    assert pgh.as_of(conn, "orders", history["t1"], 2) == []
    assert pgh.changes(conn, "orders", history["t1"]) == [
        pgh.Change("1", "updated", {"status": ["old", "paid"]}),
        pgh.Change("2", "created", {"id": [None, 2], "status": [None, "new"], "amount": [None, 2]})]
    blame = pgh.blame(conn, "orders", 1)
    assert [(b.column, b.value, b.pgh_label, b.pgh_context) for b in blame] == [
        ("id", 1, "backfill", None), ("status", "paid", "update", {"user": "alice"}),
        ("amount", 1, "backfill", None)]
    assert isinstance(blame[1].pgh_created_at, dt.datetime) and blame[1].pgh_context_id == history["ctx"]
    assert pgh.revert_context(conn, history["ctx"], dry_run=True) == [
        pgh.RevertStep("orders_event", "2", "delete"), pgh.RevertStep("orders_event", "1", "update")]
    assert len(pgh.revert_context(conn, str(history["ctx"]))) == 2
    assert rows(conn, "SELECT * FROM orders") == [(1, "old", 1)]
    with pytest.raises(psycopg.errors.SerializationFailure):
        pgh.revert_context(conn, history["ctx"])


def test_async_wrappers(conn, dsn, history):
    async def main() -> list[Any]:
        async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as aconn:
            return [
                await pgh.aio.backfill(aconn, "orders"),
                await pgh.aio.as_of(aconn, "orders", history["t1"]),
                await pgh.aio.as_of(aconn, "orders", history["t2"], 2, row=Order),
                await pgh.aio.changes(aconn, "orders", history["t1"], history["t2"]),
                [b.column for b in await pgh.aio.blame(aconn, "orders", "1")],
                await pgh.aio.revert_context(aconn, history["ctx"]),
            ]

    assert asyncio.run(main()) == [
        0,
        [{"id": 1, "status": "old", "amount": Decimal(1)}],
        [Order(2, "new", Decimal(2))],
        [pgh.Change("1", "updated", {"status": ["old", "paid"]}),
         pgh.Change("2", "created", {"id": [None, 2], "status": [None, "new"], "amount": [None, 2]})],
        ["id", "status", "amount"],
        [pgh.RevertStep("orders_event", "2", "delete"), pgh.RevertStep("orders_event", "1", "update")],
    ]
    assert rows(conn, "SELECT * FROM orders") == [(1, "old", 1)]


def test_wrappers_check_their_arguments(conn, history):
    with pytest.raises(TypeError, match="at must be a datetime, not str"):
        pgh.as_of(conn, "orders", "2026-01-01")  # type: ignore[call-overload]
    with pytest.raises(ValueError):
        pgh.revert_context(conn, "not a uuid")
    with pytest.raises(TypeError, match="obj_id must be an int, str or UUID"):
        pgh.blame(conn, "orders", 1.5)  # type: ignore[arg-type]
    assert isinstance(history["ctx"], UUID)


def test_events_changed_keeps_who_changed_a_column(conn, twin, history):
    conn.execute("UPDATE orders SET amount = 5 WHERE id = 2")
    assert [(ev.pgh_obj_id, ev.pgh_diff) for ev in twin.events("orders", changed=["status"])] == [
        ("1", {"status": ["old", "paid"]})]
    assert [ev.pgh_obj_id for ev in twin.events("orders", changed=["status", "amount"])] == ["1", "2"]
    assert [ev.pgh_obj_id for ev in twin.events(changed=["amount"], since=history["t2"])] == ["2"]
    assert twin.events("orders", 1, changed=["amount"]) == []
    assert len(twin.events("orders")) == 4  # changed=None: no filter
    with pytest.raises(TypeError, match=r"changed must be a list, such as \['status'\], not a str"):
        twin.events("orders", changed="status")
