"""Celery for real: a worker (in this process, Celery's own test worker)
takes tasks from an in-memory broker; ``pghistory.celery.propagate()`` makes
each task continue the context of the code that sent it, and its writes
share that context id."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

import pghistory as pgh
from python_helpers import contexts, history, make_orders

celery = pytest.importorskip("celery")

import pghistory.celery  # noqa: E402
from celery.contrib.testing.worker import start_worker  # noqa: E402


def test_a_task_continues_the_context_it_was_sent_in(conn, dsn):
    make_orders(conn)
    pghistory.celery.propagate()
    pghistory.celery.propagate()  # twice: connected once
    app = celery.Celery("pghistory_test", broker="memory://", backend="cache+memory://")
    name = f"ship-{uuid.uuid4().hex[:8]}"  # Celery keeps task names per process: one per major

    @app.task(name=name)
    def ship(order_id: int) -> Any:
        with pgh.HistoryConnection.connect(dsn) as hconn:
            hconn.execute("UPDATE orders SET status = 'shipped' WHERE id = %s", [order_id])
            hconn.commit()
        ctx = pgh.current_context()
        return ctx and ctx.as_dict()

    conn.execute("INSERT INTO orders VALUES (1, 'new'), (2, 'new')")
    with start_worker(app, perform_ping_check=False, pool="solo"):
        with pgh.context(user="alice", request_id="r-1") as ctx:
            sent = ship.delay(1)
        inside = sent.get(timeout=30)
        outside = ship.delay(2).get(timeout=30)  # sent outside any context: runs outside any
    assert inside == {"id": str(ctx.id), "metadata": {"user": "alice", "request_id": "r-1", "task": name}}
    assert outside is None
    assert history(conn) == [
        ("insert", 1, "new", None),
        ("insert", 2, "new", None),
        ("update", 1, "shipped", ctx.id),
        ("update", 2, "shipped", None),
    ]
    assert contexts(conn) == {ctx.id: {"user": "alice", "request_id": "r-1", "task": name}}
    assert pgh.current_context() is None


def test_without_celery_the_module_names_the_extra():
    import subprocess
    import sys

    code = "import sys; sys.modules['celery'] = None\nimport pghistory.celery\n"
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert err.returncode == 1
    assert err.stderr.strip().splitlines()[-1] == (
        "ImportError: pghistory.celery needs Celery: pip install 'pghistory[celery]'"
    )
