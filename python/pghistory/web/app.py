"""The history browser's Starlette application: `create_app(dsn, allow_writes=False)`.

Each request opens its own connection with the DSN it was given, so every
page shows what that role may read. Request parameters reach SQL only as
values bound by psycopg (the filters of `pghistory._browse`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import jinja2
import psycopg
from psycopg import sql
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from .. import _browse
from .._rows import Event

HERE = Path(__file__).resolve().parent
#: Events per page unless ?n= says otherwise (at most MAX_PAGE).
PAGE, MAX_PAGE = 50, 500
#: Sent with every response: no scripts at all, nothing framed, nothing leaked to other sites.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class PageError(Exception):
    """A request that cannot be answered: shown as a page with its status."""

    def __init__(self, status: int, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.hint = status, message, hint


def _value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _time(value: dt.datetime) -> str:
    return value.isoformat(sep=" ", timespec="microseconds" if value.microsecond else "seconds")


class Browser:
    """The pages; one instance per application (holds the DSN, the write switch and the CSRF secret)."""

    def __init__(self, dsn: str, allow_writes: bool) -> None:
        self.dsn, self.allow_writes = dsn, allow_writes
        self.secret = secrets.token_bytes(32)
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self.templates.filters["value"] = _value
        self.templates.filters["time"] = _time
        self.templates.globals["link"] = self.link

    @staticmethod
    def link(path: str, **params: Any) -> str:
        """A URL of this application with the parameters that are set."""
        query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
        return path + ("?" + query if query else "")

    def connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            raise PageError(503, "cannot connect to the database",
                            "check that the server is up and the DSN pghistory serve was given") from exc

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        html = self.templates.get_template(template).render(allow_writes=self.allow_writes, **context)
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def token(self, slug: str) -> str:
        """The CSRF token of a revert of `slug`: only pages of this server can know it."""
        return hmac.new(self.secret, f"revert:{slug}".encode(), hashlib.sha256).hexdigest()

    def page(self, conn: psycopg.Connection[Any], filters: _browse.Filters, request: Request
             ) -> tuple[list[Event], str | None]:
        """One page of events newest first, and the position of the next one (None on the last page)."""
        n = _int(request.query_params.get("n"), PAGE, "n")
        n = max(1, min(n, MAX_PAGE))
        before = request.query_params.get("before")
        position = _browse.Position.parse(before) if before else None
        events = list(_browse.newest_first(conn, filters, n + 1, position))
        if len(events) <= n:
            return events, None
        events = events[:n]
        below = dict(position.below) if position else {}
        for event in events:
            below[event.pgh_model] = min(below.get(event.pgh_model, event.pgh_id), event.pgh_id)
        return events, _browse.Position(below).token()

    # -- pages ---------------------------------------------------------------

    def timeline(self, request: Request) -> Response:
        q = request.query_params
        with self.connect() as conn:
            tables = _browse.sources(conn)
            key, value = q.get("key", ""), q.get("value", "")
            filters = _browse.Filters(
                table=q.get("table") or None,
                since=_browse.parse_time(conn, q["since"], "since") if q.get("since") else None,
                until=_browse.parse_time(conn, q["until"], "until") if q.get("until") else None,
                labels=[q["label"]] if q.get("label") else None,
                context={key: value} if key else {},
            )
            events, after = self.page(conn, filters, request)
        params = {k: q.get(k, "") for k in ("table", "label", "since", "until", "key", "value", "n")}
        return self.render("timeline.html", title="Timeline", events=events, tables=tables, params=params,
                           next=self.link("/", **params, before=after) if after else None,
                           first=self.link("/", **params) if q.get("before") else None)

    def object(self, request: Request) -> Response:
        table, obj_id = request.query_params.get("table"), request.query_params.get("id")
        if not table or obj_id is None:
            raise PageError(400, "an object page needs ?table= and &id=", "follow a link from the timeline")
        with self.connect() as conn:
            events, after = self.page(conn, _browse.Filters(table=table, obj_id=obj_id), request)
        if not events and not request.query_params.get("before"):
            raise PageError(404, f"no history of {table} {obj_id}", "check the table and the key")
        return self.render("object.html", title=f"{events[0].pgh_obj_model if events else table} {obj_id}",
                           table=table, obj_id=obj_id, events=events,
                           next=self.link("/object", table=table, id=obj_id, before=after) if after else None)

    def context(self, request: Request) -> Response:
        try:
            context_id = uuid.UUID(request.path_params["context_id"])
        except ValueError:
            raise PageError(404, "not a context id", "a context id is a uuid") from None
        with self.connect() as conn:
            events = list(_browse.newest_first(conn, _browse.Filters(context_id=context_id), MAX_PAGE))
        if not events:
            raise PageError(404, f"no events of context {context_id} that you may read", "check the id")
        events.reverse()
        metadata = next((e.pgh_context for e in reversed(events) if e.pgh_context), None)
        return self.render("context.html", title=f"Context {context_id}", context_id=context_id,
                           metadata=metadata, events=events)

    def event(self, request: Request) -> Response:
        slug = request.query_params.get("slug", "")
        with self.connect() as conn:
            event = self._event(conn, slug)
        return self.render("event.html", title=event.pgh_slug, event=event, confirm=request.query_params.get("revert"),
                           token=self.token(event.pgh_slug))

    def _event(self, conn: psycopg.Connection[Any], slug: str) -> Event:
        table, sep, pgh_id = slug.rpartition(":")
        if not sep or not table or not pgh_id.isdigit():
            raise PageError(404, f"no event {slug}", "a slug is <event table>:<pgh_id>")
        found = list(_browse.newest_first(conn, _browse.Filters(table=table, pgh_id=int(pgh_id)), 1))
        if not found:
            raise PageError(404, f"no event {slug}", "follow a link from the timeline")
        return found[0]

    def tables(self, request: Request) -> Response:
        with self.connect() as conn:
            rows = conn.execute("""
                SELECT pghistory._qualified_name(t.tracked_table), pghistory._qualified_name(t.event_table), t.labels, t.fields, t.context, t.level,
                       t.append_only, t.event_table::oid::bigint,
                       has_table_privilege(t.event_table, 'SELECT')
                  FROM pghistory.tracking AS t ORDER BY 1""").fetchall()
            # the health `pghistory status` reports: each table's failing checks, with what to run
            health: dict[str, list[str]] = {}
            for obj, aspect, ok, detail, action in conn.execute(
                    "SELECT object, aspect, ok, detail, action FROM pghistory.status()").fetchall():
                failing = health.setdefault(obj, [])
                if not ok:
                    failing.append(f"{aspect}: {detail}" + (f" ({action})" if action else ""))
            tables = []
            for tracked, events, labels, fields, context, level, append_only, oid, readable in rows:
                count = None
                if readable:
                    counted = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(_relation(conn, oid))).fetchone()
                    count = counted[0] if counted else None
                tables.append({"tracked": tracked, "events": events, "labels": labels, "fields": fields,
                               "context": context, "level": level, "append_only": append_only, "count": count,
                               "health": health.get(tracked, [])})
        return self.render("tables.html", title="Tracked tables", tables=tables)

    async def revert(self, request: Request) -> Response:
        if not self.allow_writes:
            raise PageError(403, "this history browser is read-only",
                            "start it with pghistory serve --allow-writes to offer reverts")
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
            raise PageError(403, "refused: the request came from another site", "revert from this browser's own pages")
        form = await request.form()
        slug, token = str(form.get("slug", "")), str(form.get("token", ""))
        if not hmac.compare_digest(token, self.token(slug)):
            raise PageError(403, "refused: the form's token is missing or wrong",
                            "revert from the event's page of this browser (reload it first)")
        table, _, pgh_id = slug.rpartition(":")
        with self.connect() as conn:
            event = self._event(conn, slug)
            row = conn.execute("SELECT pghistory.revert(%s::regclass, %s)", (table, int(pgh_id))).fetchone()
        new = row[0] if row else None
        return RedirectResponse(self.link("/object", table=event.pgh_obj_model, id=event.pgh_obj_id,
                                          reverted=new if new is not None else "none"), status_code=303)

    def stylesheet(self, request: Request) -> Response:
        return FileResponse(HERE / "static" / "style.css", media_type="text/css", headers=HEADERS)


def _relation(conn: psycopg.Connection[Any], oid: int) -> sql.Composable:
    row = conn.execute("SELECT n.nspname::text, c.relname::text FROM pg_catalog.pg_class AS c "
                       "JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace WHERE c.oid = %s", (oid,)).fetchone()
    assert row is not None
    return sql.Identifier(str(row[0]), str(row[1]))


def _int(text: str | None, default: int, name: str) -> int:
    if text is None or text == "":
        return default
    if not text.isdigit():
        raise PageError(400, f"{name} must be a number", None)
    return int(text)


def create_app(dsn: str, *, allow_writes: bool = False,
               allowed_hosts: Sequence[str] = ("127.0.0.1", "localhost", "[::1]")) -> Starlette:
    """The history browser for the database `dsn` (read-only unless `allow_writes`).

    `allowed_hosts` are the Host headers it answers (the others get 400: no
    DNS-rebinding site can read it through a visitor's browser).
    """
    browser = Browser(dsn, allow_writes)

    def guarded(endpoint: Any) -> Any:
        async def handle(request: Request) -> Response:
            try:
                if request.method == "POST":
                    return await endpoint(request)  # type: ignore[no-any-return]
                from starlette.concurrency import run_in_threadpool

                return await run_in_threadpool(endpoint, request)
            except PageError as exc:
                return browser.render("error.html", exc.status, title="Error", message=exc.message, hint=exc.hint)
            except _browse.HistoryError as exc:
                return browser.render("error.html", 400, title="Error", message=exc.message, hint=exc.hint)
            except psycopg.Error as exc:
                message = exc.diag.message_primary or str(exc).splitlines()[0]
                return browser.render("error.html", 400 if isinstance(exc, psycopg.errors.DataError) else 500,
                                      title="Error", message=message.removeprefix("pghistory: "),
                                      hint=exc.diag.message_hint)
        return handle

    routes = [
        Route("/", guarded(browser.timeline)),
        Route("/object", guarded(browser.object)),
        Route("/context/{context_id}", guarded(browser.context)),
        Route("/event", guarded(browser.event)),
        Route("/tables", guarded(browser.tables)),
        Route("/revert", guarded(browser.revert), methods=["POST"]),
        Route("/static/style.css", guarded(browser.stylesheet)),
    ]
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))])
