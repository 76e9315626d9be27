"""The bench's Django app: one model, tracked by django-pghistory (see models.py)."""
