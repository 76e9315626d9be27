"""The exceptions pghistory raises itself.

Errors raised by the database (an unknown table, a label that does not exist,
...) reach the caller unchanged, as psycopg's own exceptions, carrying the
extension's message and hint. Bad Python arguments raise `TypeError` or
`ValueError`.
"""

from __future__ import annotations

import psycopg


class ExtensionNotAvailable(psycopg.OperationalError):
    """The server has no pghistory extension files to ``CREATE EXTENSION`` from.

    Raised by `pghistory.install()`; the original psycopg error is its
    ``__cause__``.
    """


class ContextError(psycopg.ProgrammingError):
    """A context or ignore block was used where it cannot work.

    For example ``local=True`` on an autocommit connection outside a
    transaction, where a transaction-local setting would end with the very
    statement that sets it.
    """


class NoEventTriggersWarning(UserWarning):
    """`pghistory.install()` left out the event triggers that follow
    ``ALTER TABLE``: the installing role may not create them. Until a role
    that may runs ``SELECT pghistory.install_event_triggers()``, call
    ``pghistory.refresh()`` after altering a tracked table."""
