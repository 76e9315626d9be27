"""WSGI middleware: one ambient pghistory context per request.

``app.wsgi_app = pghistory.wsgi.HistoryMiddleware(app.wsgi_app)`` (Flask,
any WSGI application) opens ``pghistory.context()`` for each request: every
instrumented engine or connection writes the request's events under one
context id. The context lasts until the server closes the response, so a
streamed body keeps it.

Default metadata: ``method``, ``path``, ``user`` from ``REMOTE_USER`` when
the server or an outer middleware authenticated the request, and
``request_id`` from the ``X-Request-ID`` header (see *request_id_header*).
``metadata=`` replaces them: a callable given the WSGI environ returning a
mapping. The application adds to it with ``pghistory.context(key=value)``
(in Flask, from a ``before_request`` hook once the user is known).

Imports no framework.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from ._ambient import AmbientContext

__all__ = ["HistoryMiddleware", "default_metadata"]

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


def default_metadata(environ: Mapping[str, Any], request_id_header: str = "X-Request-ID") -> dict[str, Any]:
    """The metadata `HistoryMiddleware` records when not given ``metadata=``."""
    metadata: dict[str, Any] = {
        "method": environ.get("REQUEST_METHOD"),
        "path": environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", ""),
    }
    if environ.get("REMOTE_USER"):
        metadata["user"] = environ["REMOTE_USER"]
    key = "HTTP_" + request_id_header.upper().replace("-", "_")
    if environ.get(key):
        metadata["request_id"] = environ[key]
    return metadata


class _Response:
    """The application's response; ends the context when the server closes it."""

    def __init__(self, body: Iterable[bytes], context: AmbientContext) -> None:
        self._body = body
        self._context = context

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._body)

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._context.__exit__(None, None, None)


class HistoryMiddleware:
    """WSGI middleware: each request in its own ambient context."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        metadata: Callable[[Environ], Mapping[str, Any]] | None = None,
        request_id_header: str = "X-Request-ID",
    ) -> None:
        self.app = app
        self.metadata = metadata
        self.request_id_header = request_id_header

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self.metadata is not None:
            metadata = self.metadata(environ)
        else:
            metadata = default_metadata(environ, self.request_id_header)
        context = AmbientContext(metadata, fresh=True)
        context.__enter__()
        try:
            body = self.app(environ, start_response)
        except BaseException as ex:
            context.__exit__(type(ex), ex, ex.__traceback__)
            raise
        return _Response(body, context)
