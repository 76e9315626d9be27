"""`pghistory.aio`: the wrappers for a `psycopg.AsyncConnection`.

Each is the ``async def`` twin of the function of the same name in
`pghistory`, made from the same core (see `._ops`), with the same arguments
and result::

    import pghistory as pgh   # pgh.aio comes with it

    await pgh.aio.install(aconn)
    await pgh.aio.track(aconn, "orders")
    async with pgh.context(aconn, user="alice"):
        await aconn.execute("UPDATE orders SET status = 'paid' WHERE id = 1")
    for ev in await pgh.aio.events(aconn, "orders", obj_id=1):
        print(ev.pgh_label, ev.pgh_diff)

Given a `psycopg.Connection` they raise `TypeError` (and ``pghistory.track``
refuses an `AsyncConnection` the same way). ``pgh.context()`` and
``pgh.ignore()`` take either kind: use ``async with`` on an
`AsyncConnection`.
"""

from __future__ import annotations

from ._browsing import events_gen, revert_gen
from ._install import install_gen
from ._ops import async_twin
from ._reset import reset_gen
from ._time_travel import as_of_gen, backfill_gen, blame_gen, changes_gen, revert_context_gen
from ._tracking import create_event_gen, track_gen, untrack_gen

install = async_twin(install_gen)
track = async_twin(track_gen)
untrack = async_twin(untrack_gen)
create_event = async_twin(create_event_gen)
events = async_twin(events_gen)
revert = async_twin(revert_gen)
reset = async_twin(reset_gen)
backfill = async_twin(backfill_gen)
as_of = async_twin(as_of_gen)
changes = async_twin(changes_gen)
blame = async_twin(blame_gen)
revert_context = async_twin(revert_context_gen)

__all__ = [
    "as_of", "backfill", "blame", "changes", "create_event", "events", "install", "reset", "revert", "revert_context", "track",
    "untrack",
]
