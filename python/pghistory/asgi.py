"""ASGI middleware: one ambient pghistory context per request.

``app.add_middleware(pghistory.asgi.HistoryMiddleware)`` (Starlette,
FastAPI, Litestar, any ASGI 3 application) opens ``pghistory.context()`` for
each HTTP request and WebSocket: every instrumented engine or connection
(`pghistory.sqlalchemy.instrument`, `pghistory.HistoryConnection`) writes
the request's events under one context id. The block lasts as long as the
application's call, so a streaming response and the background tasks
Starlette runs after the response keep the context; so do asyncio tasks the
request creates (they copy the context when created).

Default metadata: ``method``, ``path``, ``user`` when an authentication
middleware that runs before this one put an authenticated user in
``scope["user"]``, and ``request_id`` from the ``X-Request-ID`` header (see
*request_id_header*). ``metadata=`` replaces them: a callable given the
ASGI scope returning a mapping. Code inside the request adds to it with
``pghistory.context(key=value)``.

Imports no framework: a plain ``async __call__(scope, receive, send)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from ._ambient import AmbientContext

__all__ = ["HistoryMiddleware", "default_metadata"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def user_name(user: object) -> str | None:
    """A readable name for an authenticated user object, or None.

    A user whose ``is_authenticated`` is false gives None; then the first of
    ``display_name``, ``username``, ``identity`` that is a non-empty string.
    """
    if user is None or getattr(user, "is_authenticated", True) is False:
        return None
    if isinstance(user, str):
        return user or None
    for attr in ("display_name", "username", "identity"):
        try:
            value = getattr(user, attr, None)
        except NotImplementedError:  # Starlette's BaseUser.identity
            continue
        if isinstance(value, str) and value:
            return value
    return None


def default_metadata(scope: Mapping[str, Any], request_id_header: str = "x-request-id") -> dict[str, Any]:
    """The metadata `HistoryMiddleware` records when not given ``metadata=``."""
    metadata: dict[str, Any] = {"path": scope.get("root_path", "") + scope.get("path", "")}
    if scope["type"] == "http":
        metadata = {"method": scope.get("method"), **metadata}
    user = user_name(scope.get("user"))
    if user is not None:
        metadata["user"] = user
    wanted = request_id_header.lower().encode("latin-1")
    for name, value in scope.get("headers", ()):
        if name.lower() == wanted:
            metadata["request_id"] = value.decode("latin-1")
            break
    return metadata


class HistoryMiddleware:
    """ASGI 3 middleware: each HTTP request and WebSocket in its own context."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metadata: Callable[[Scope], Mapping[str, Any]] | None = None,
        request_id_header: str = "x-request-id",
    ) -> None:
        self.app = app
        self.metadata = metadata
        self.request_id_header = request_id_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)  # lifespan
            return
        if self.metadata is not None:
            metadata = self.metadata(scope)
        else:
            metadata = default_metadata(scope, self.request_id_header)
        async with AmbientContext(metadata, fresh=True):
            await self.app(scope, receive, send)
