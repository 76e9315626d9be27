"""The history browser: ``pghistory serve`` (needs the ``pghistory[web]`` extra).

Server-rendered pages on Starlette and Jinja2 (autoescape on), no
JavaScript: a timeline across tracked tables, one object's history, one
context's events, the tracked tables. Every page reads with the connected
role's own rights through the extension's SQL; it is read-only unless
created with ``allow_writes=True``, and then its one write (reverting an
event through ``pghistory.revert``) is a confirmed POST carrying a CSRF token.
"""

from __future__ import annotations

try:
    from .app import create_app
except ImportError as exc:  # pragma: no cover - depends on the extra being installed
    raise ImportError(
        f"the pghistory history browser needs the web extra: pip install 'pghistory[web]' ({exc})"
    ) from exc

__all__ = ["create_app"]
