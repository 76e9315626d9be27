"""Every snippet of the README's "Python integrations" section, run in order
against a real server (so the recipes cannot drift), then its history checked.

The snippets define apps; this test sends them one request each, as a client
would: the FastAPI app through httpx's ASGITransport, the Flask app through
its test client."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from python_helpers import make_orders

pytest.importorskip("fastapi")
pytest.importorskip("flask")
httpx = pytest.importorskip("httpx")
pytest.importorskip("celery")

README = Path(__file__).resolve().parent.parent / "README.md"


def section_snippets() -> list[str]:
    text = README.read_text()
    start = text.index("\n## Python integrations\n")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


def test_the_section_has_a_snippet_per_recipe():
    snippets = section_snippets()
    assert len(snippets) == 6
    assert [s.count("import pghistory as pgh") for s in snippets] == [1] * 6


def test_every_snippet_runs_and_records_what_it_says(conn, pg, db, monkeypatch):
    make_orders(conn)
    monkeypatch.setenv("DATABASE_URL", pg.url(db))
    sqlalchemy_, fastapi_, flask_, pools, jobs, celery_ = section_snippets()
    exec(compile(sqlalchemy_, "README:sqlalchemy", "exec"), {"__name__": "readme_sqlalchemy"})

    ns: dict[str, Any] = {"__name__": "readme_fastapi"}
    exec(compile(fastapi_, "README:fastapi", "exec"), ns)

    async def pay() -> Any:
        transport = httpx.ASGITransport(app=ns["app"])
        async with httpx.AsyncClient(transport=transport, base_url="http://shop") as client:
            response = await client.post("/orders/1/pay", headers={"X-Request-ID": "req-7"})
        await ns["engine"].dispose()
        return response

    assert asyncio.run(pay()).json() == {"status": "paid"}

    ns = {"__name__": "readme_flask"}
    exec(compile(flask_, "README:flask", "exec"), ns)
    with ns["app"].test_client() as client:
        response = client.post("/orders/1/ship", headers={"X-User": "bob"})
        assert response.get_json() == {"status": "shipped"}
        response.close()  # as a WSGI server does once it sent the response: the context ends
    ns["pool"].close()

    exec(compile(pools, "README:pools", "exec"), {"__name__": "readme_pools"})
    exec(compile(jobs, "README:jobs", "exec"), {"__name__": "readme_jobs"})

    import pghistory as pgh
    from celery.contrib.testing.worker import start_worker

    # Celery keeps task names per process: a module name of its own for each major's run
    module = f"readme_celery_{uuid.uuid4().hex[:8]}"
    ns = {"__name__": module}
    exec(compile(celery_, "README:celery", "exec"), ns)
    with start_worker(ns["jobs"], perform_ping_check=False, pool="solo"):
        with pgh.context(user="dave"):
            ns["archive"].delay(1)
        for _ in range(300):  # no result backend in the recipe: wait for its event
            if conn.execute("SELECT count(*) FROM orders_event WHERE status = 'archived'").fetchone()[0]:
                break
            time.sleep(0.1)

    rows = conn.execute(
        "SELECT e.pgh_label, e.status, c.metadata FROM orders_event e"
        " JOIN pghistory.context c ON c.id = e.pgh_context_id ORDER BY e.pgh_id"
    ).fetchall()
    assert rows == [
        ("insert", "new", {"user": "alice", "reason": "import"}),
        ("update", "paid", {"method": "POST", "path": "/orders/1/pay", "request_id": "req-7", "reason": "payment"}),
        ("update", "shipped", {"method": "POST", "path": "/orders/1/ship", "user": "bob"}),
        ("update", "checked", {"job": "nightly-check"}),
        ("update", "delivered", {"user": "carol", "task": "deliver"}),
        ("update", "archived", {"user": "dave", "task": f"{module}.archive"}),
    ]
