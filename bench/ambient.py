"""The ``ambient`` workload: what the ambient context costs a request's write
through SQLAlchemy (pghistory.sqlalchemy.instrument), one transaction, one row.

Three ways to send the same request (``UPDATE item ... WHERE id = :id`` in a
``Session``, then commit), on the ``pghistory`` target's database:

    plain       an engine that is not instrumented, no context: the floor
    instrumented   the instrumented engine outside any context (should cost nothing)
    ambient     the instrumented engine inside ``pgh.context(user=..., url=...)``,
                a new context per request, as HistoryMiddleware opens one
                (one set_config round trip, and the context row the trigger writes)

Batches of ``--ambient-requests`` requests of each kind alternate
(``--reps`` rounds); reported are the medians of the time per request and
their ratios to ``plain``.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

import pghistory as pgh
import pghistory.sqlalchemy
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

UPDATE = text("UPDATE item SET amount = amount + 1, updated_at = now() WHERE id = :id")


def _batch(engine: Any, rows: int, n: int, rng: random.Random, ambient: bool) -> float:
    ids = [rng.randint(1, rows) for _ in range(n)]
    started = time.perf_counter()
    for i in ids:
        if ambient:
            with pgh.context(user="bench", url="/bench"), Session(engine) as session:
                session.execute(UPDATE, {"id": i})
                session.commit()
        else:
            with Session(engine) as session:
                session.execute(UPDATE, {"id": i})
                session.commit()
    return (time.perf_counter() - started) / n


def run(url: str, rows: int, requests: int, reps: int) -> list[str]:
    """Measure; return the lines of the report."""
    url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    plain = create_engine(url, pool_size=1)
    instrumented = pghistory.sqlalchemy.instrument(create_engine(url, pool_size=1))
    rng = random.Random(13)
    kinds = {"plain": (plain, False), "instrumented": (instrumented, False), "ambient": (instrumented, True)}
    for engine, ambient in kinds.values():  # warm the pools, caches and plans
        _batch(engine, rows, min(20, requests), rng, ambient)
    per_request: dict[str, list[float]] = {k: [] for k in kinds}
    for rep in range(reps):
        order = list(kinds)[rep % 3:] + list(kinds)[: rep % 3]
        for kind in order:
            engine, ambient = kinds[kind]
            per_request[kind].append(_batch(engine, rows, requests, rng, ambient))
    plain.dispose()
    instrumented.dispose()
    floor = statistics.median(per_request["plain"])
    lines = [f"ambient: a request's write through SQLAlchemy (one transaction, one row), "
             f"{requests} requests x {reps} rounds"]
    for kind, times in per_request.items():
        median = statistics.median(times)
        lines.append(f"  {kind:13s} {median * 1e6:9.1f} us/request  x{median / floor:.2f} of plain")
    ratio = statistics.median(per_request["ambient"]) / statistics.median(per_request["instrumented"])
    lines.append(f"  ambient context / none: x{ratio:.2f}")
    return lines
