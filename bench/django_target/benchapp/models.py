"""The bench table as a Django model, tracked by django-pghistory 3.9.

The table is the one every bench target has (bench/run.py: ``item``, five
columns, integer primary key).  django-pghistory generates the event table
``item_event`` and its triggers; migrate installs them.  Its default trackers
are insert and update only; the bench adds ``DeleteEvent`` so that every
workload is recorded, as pghistory records it.  The trigger level comes from
``$BENCH_DJANGO_LEVEL``: ``row`` (django-pghistory's default) or ``statement``
(``level=pghistory.Statement``, django-pghistory's statement-level triggers).
"""

from __future__ import annotations

import os

import pghistory
from django.db import models

LEVEL = {"row": pghistory.Row, "statement": pghistory.Statement}[os.environ.get("BENCH_DJANGO_LEVEL", "row")]


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(),
    pghistory.DeleteEvent(),
    level=LEVEL,
    model_name="ItemEvent",
    meta={"db_table": "item_event"},
)
class Item(models.Model):
    id = models.IntegerField(primary_key=True)
    name = models.TextField()
    status = models.TextField()
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    updated_at = models.DateTimeField()

    class Meta:
        app_label = "benchapp"
        db_table = "item"
