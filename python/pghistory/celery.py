"""Celery: a task continues the context of the code that sent it.

``pghistory.celery.propagate()`` (once, where both the senders and the
workers import it) connects three Celery signals: ``before_task_publish``
puts `pghistory.current_context()` into the message's headers (as
``pghistory_context``, JSON types only), ``task_prerun`` continues it in the
worker (``pghistory.context(id=..., **metadata, task=<task name>)``) and
``task_postrun`` ends it. The task's writes through integrated connections
then share the request's context id. A task sent outside any context runs
outside any.

Install with ``pip install pghistory[celery]``.
"""

from __future__ import annotations

import threading
from typing import Any

try:
    from celery import signals
except ImportError as ex:  # pragma: no cover - exercised by a subprocess test
    raise ImportError("pghistory.celery needs Celery: pip install 'pghistory[celery]'") from ex

from ._ambient import AmbientContext, CurrentContext, current_context

__all__ = ["HEADER", "propagate"]

#: The message header that carries the context.
HEADER = "pghistory_context"

_open: dict[str, AmbientContext] = {}
_lock = threading.Lock()


def _publish(headers: dict[str, Any] | None = None, **_: Any) -> None:
    ctx = current_context()
    if ctx is not None and headers is not None:
        headers[HEADER] = ctx.as_dict()


def _prerun(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    data = getattr(getattr(task, "request", None), HEADER, None)
    if not data or task_id is None:
        return
    ctx = CurrentContext.from_dict(data)
    block = AmbientContext({**ctx.metadata, "task": task.name}, ctx.id, fresh=True)
    block.__enter__()
    with _lock:
        _open[task_id] = block


def _postrun(task_id: str | None = None, **_: Any) -> None:
    with _lock:
        block = _open.pop(task_id, None) if task_id is not None else None
    if block is not None:
        block.__exit__(None, None, None)


def propagate() -> None:
    """Carry the ambient context from where a task is sent to where it runs.

    Connects the three signals (for every Celery app of the process); calling
    it again does nothing more.
    """
    signals.before_task_publish.connect(_publish, weak=False, dispatch_uid="pghistory.publish")
    signals.task_prerun.connect(_prerun, weak=False, dispatch_uid="pghistory.prerun")
    signals.task_postrun.connect(_postrun, weak=False, dispatch_uid="pghistory.postrun")
