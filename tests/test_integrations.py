"""The integrations, for real: a FastAPI app (HistoryMiddleware) writing
through SQLAlchemy's AsyncEngine and a psycopg AsyncConnectionPool under 50
concurrent requests; a Flask app (the WSGI HistoryMiddleware) from several
threads through a sync Session and a ConnectionPool; requests that raise,
roll back, stream, or leave a background task."""

from __future__ import annotations

import asyncio
import concurrent.futures
import subprocess
import sys
from typing import Any

import psycopg
import psycopg_pool
import pytest

import pghistory as pgh
from python_helpers import SETTINGS_SQL, contexts, history, make_orders

fastapi = pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
flask = pytest.importorskip("flask")
sqlalchemy = pytest.importorskip("sqlalchemy")

import pghistory.asgi  # noqa: E402
import pghistory.sqlalchemy  # noqa: E402
import pghistory.wsgi  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser  # noqa: E402
from starlette.middleware.authentication import AuthenticationMiddleware  # noqa: E402

CLEAN = ((None, None), ("", ""))


@pytest.fixture
def orders(conn: psycopg.Connection[Any]) -> None:
    make_orders(conn)


@pytest.fixture
def url(pg: Any, db: str) -> str:
    return pg.url(db).replace("postgresql://", "postgresql+psycopg://", 1)


class Route:
    """Where the app's engines and pools connect: the server, or a PgBouncer
    in transaction mode in front of it (fewer server connections than
    clients, so transactions hop between server sessions)."""

    def __init__(self, url: str, dsn: str, bouncer: bool) -> None:
        self.url = url.replace("postgresql://", "postgresql+psycopg://", 1)
        self.dsn = dsn
        # PgBouncer before 1.21 keeps no prepared statements across server connections
        self.connect_args: dict[str, Any] = {"prepare_threshold": None} if bouncer else {}


@pytest.fixture(params=["direct", "pgbouncer"])
def route(request: pytest.FixtureRequest, pg: Any, db: str) -> Any:
    if request.param == "direct":
        yield Route(pg.url(db), pg.dsn(db), False)
        return
    import harness
    from harness.pgbouncer import PgBouncer

    reason = harness.debian_packages("pgbouncer")
    if reason:
        pytest.skip(reason)
    with PgBouncer(pg, pool_size=2) as bouncer:
        yield Route(bouncer.url(db), bouncer.dsn(db), True)


class HeaderAuth(AuthenticationBackend):
    """The user named by the X-User header (stands in for a real authentication)."""

    async def authenticate(self, conn: Any) -> Any:
        name = conn.headers.get("x-user")
        return (AuthCredentials(["authenticated"]), SimpleUser(name)) if name else None


def fastapi_app(engine: Any, pool: psycopg_pool.AsyncConnectionPool[Any]) -> Any:
    app = fastapi.FastAPI()
    app.add_middleware(pghistory.asgi.HistoryMiddleware)
    app.add_middleware(AuthenticationMiddleware, backend=HeaderAuth())  # outer: runs first

    @app.post("/orders/{i}")
    async def create(i: int) -> dict[str, Any]:
        async with AsyncSession(engine) as session:  # the ORM session's transaction
            await session.execute(text("INSERT INTO orders VALUES (:i, 'new')"), {"i": i})
            await asyncio.sleep(0)  # let the other requests interleave
            await session.commit()
        async with pool.connection() as aconn:  # a second transaction, through the pool
            await aconn.execute("UPDATE orders SET status = 'paid' WHERE id = %s", [i])
        return {"context": str(pgh.current_context().id)}

    @app.post("/fail/{i}")
    async def fail(i: int) -> None:
        async with engine.begin() as c:  # committed before the error: kept, with the context
            await c.execute(text("INSERT INTO orders VALUES (:i, 'new')"), {"i": i})
        async with engine.begin() as c:  # rolled back by the error: no event at all
            await c.execute(text("UPDATE orders SET status = 'lost' WHERE id = :i"), {"i": i})
            raise RuntimeError("boom")

    @app.get("/stream/{i}")
    async def stream(i: int) -> Any:
        async def body() -> Any:
            yield b"start\n"
            async with pool.connection() as aconn:  # written while the body streams
                await aconn.execute("INSERT INTO orders VALUES (%s, 'streamed')", [i])
            yield b"done\n"

        return fastapi.responses.StreamingResponse(body())

    @app.post("/later/{i}")
    async def later(i: int, tasks: fastapi.BackgroundTasks) -> dict[str, str]:
        async def task() -> None:
            async with engine.begin() as c:
                await c.execute(text("INSERT INTO orders VALUES (:i, 'background')"), {"i": i})

        tasks.add_task(task)
        return {"context": str(pgh.current_context().id)}

    return app


def test_fastapi_50_concurrent_requests_each_write_under_their_own_context(conn, orders, route):
    async def main() -> tuple[list[Any], list[Any]]:
        engine = pghistory.sqlalchemy.instrument(
            create_async_engine(route.url, pool_size=5, connect_args=route.connect_args)
        )
        async with psycopg_pool.AsyncConnectionPool(
            route.dsn, min_size=5, max_size=5, connection_class=pgh.AsyncHistoryConnection,
            kwargs=route.connect_args, reset=pgh.aio.reset, open=False,
        ) as pool:
            app = fastapi_app(engine, pool)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                responses = await asyncio.gather(*(
                    client.post(f"/orders/{i}", headers={"x-user": f"user{i}", "x-request-id": f"req-{i}"})
                    for i in range(50)
                ))
            left = []
            for _ in range(5):
                async with pool.connection() as aconn:
                    left.append(await (await aconn.execute(SETTINGS_SQL)).fetchone())
        async with engine.connect() as c:
            for _ in range(3):
                left.append(tuple((await c.execute(text(SETTINGS_SQL))).one()))
                await c.rollback()
        await engine.dispose()
        return responses, left

    responses, left = asyncio.run(main())
    assert [r.status_code for r in responses] == [200] * 50
    ids = [__import__("uuid").UUID(r.json()["context"]) for r in responses]
    assert len(set(ids)) == 50
    got = conn.execute(
        "SELECT id, array_agg(pgh_label ORDER BY pgh_id), array_agg(DISTINCT pgh_context_id)"
        " FROM orders_event GROUP BY id ORDER BY id"
    ).fetchall()
    assert got == [(i, ["insert", "update"], [ids[i]]) for i in range(50)]
    assert contexts(conn) == {
        ids[i]: {"method": "POST", "path": f"/orders/{i}", "user": f"user{i}", "request_id": f"req-{i}"}
        for i in range(50)
    }
    assert all(row in CLEAN for row in left), left


def test_fastapi_raising_streaming_and_background_requests(conn, orders, url, dsn):
    async def main() -> dict[str, Any]:
        engine = pghistory.sqlalchemy.instrument(create_async_engine(url))
        async with psycopg_pool.AsyncConnectionPool(
            dsn, min_size=1, max_size=2, connection_class=pgh.AsyncHistoryConnection, open=False
        ) as pool:
            transport = httpx.ASGITransport(app=fastapi_app(engine, pool), raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                out = {
                    "fail": await client.post("/fail/1", headers={"x-user": "ann"}),
                    "stream": await client.get("/stream/2", headers={"x-user": "bob"}),
                    "later": await client.post("/later/3", headers={"x-user": "cy"}),
                }
        await engine.dispose()
        return out

    out = asyncio.run(main())
    assert out["fail"].status_code == 500
    assert out["stream"].text == "start\ndone\n"
    rows = history(conn)
    assert [r[:3] for r in rows] == [("insert", 1, "new"), ("insert", 2, "streamed"), ("insert", 3, "background")]
    by_id = {r[1]: r[3] for r in rows}
    assert str(by_id[3]) == out["later"].json()["context"]  # the task after the response kept it
    assert contexts(conn) == {
        by_id[1]: {"method": "POST", "path": "/fail/1", "user": "ann"},
        by_id[2]: {"method": "GET", "path": "/stream/2", "user": "bob"},
        by_id[3]: {"method": "POST", "path": "/later/3", "user": "cy"},
    }


def test_asgi_metadata_callable_replaces_the_defaults(conn, orders, url):
    seen = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(pgh.current_context())
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    wrapped = pghistory.asgi.HistoryMiddleware(app, metadata=lambda scope: {"route": scope["path"], "v": 2})

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://t") as c:
            await c.get("/x")

    asyncio.run(main())
    assert seen[0].metadata == {"route": "/x", "v": 2}
    assert pgh.current_context() is None


def flask_app(engine: Any, pool: psycopg_pool.ConnectionPool[Any]) -> Any:
    app = flask.Flask(__name__)
    app.wsgi_app = pghistory.wsgi.HistoryMiddleware(app.wsgi_app)  # type: ignore[method-assign]

    @app.before_request
    def who() -> None:
        if "X-User" in flask.request.headers:
            pgh.context(user=flask.request.headers["X-User"])  # adds to the request's context

    @app.post("/orders/<int:i>")
    def create(i: int) -> dict[str, Any]:
        with Session(engine) as session:
            session.execute(text("INSERT INTO orders VALUES (:i, 'new')"), {"i": i})
            session.commit()
        with pool.connection() as pconn:
            pconn.execute("UPDATE orders SET status = 'paid' WHERE id = %s", [i])
        return {"context": str(pgh.current_context().id)}

    @app.post("/fail/<int:i>")
    def fail(i: int) -> None:
        with Session(engine) as session:
            session.execute(text("INSERT INTO orders VALUES (:i, 'new')"), {"i": i})
            session.commit()
            session.execute(text("UPDATE orders SET status = 'lost' WHERE id = :i"), {"i": i})
            raise RuntimeError("boom")  # the session rolls the update back

    @app.get("/stream/<int:i>")
    def stream(i: int) -> Any:
        def body() -> Any:
            yield "start\n"
            with pool.connection() as pconn:
                pconn.execute("INSERT INTO orders VALUES (%s, 'streamed')", [i])
            yield "done\n"

        return flask.Response(body())

    return app


def test_flask_from_several_threads_each_request_under_its_own_context(conn, orders, route):
    engine = pghistory.sqlalchemy.instrument(
        sqlalchemy.create_engine(route.url, pool_size=4, connect_args=route.connect_args)
    )
    with psycopg_pool.ConnectionPool(
        route.dsn, min_size=4, max_size=4, connection_class=pgh.HistoryConnection,
        kwargs=route.connect_args, reset=pgh.reset,
    ) as pool:
        app = flask_app(engine, pool)

        def request(i: int) -> Any:
            with app.test_client() as client:
                return client.post(f"/orders/{i}", headers={"X-User": f"user{i}", "X-Request-ID": f"r{i}"})

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            responses = list(ex.map(request, range(40)))
        with app.test_client() as client:
            failed = client.post("/fail/100", headers={"X-User": "ann"})
            failed.close()
            streamed = client.get("/stream/101", headers={"X-User": "bob"})
            assert streamed.data == b"start\ndone\n"  # the body runs in the request's context
            streamed.close()  # what a WSGI server does after sending it: the context ends
            assert pgh.current_context() is None
        left = []
        for _ in range(4):
            with pool.connection() as pconn:
                left.append(pconn.execute(SETTINGS_SQL).fetchone())
    with engine.connect() as c:
        left.append(tuple(c.execute(text(SETTINGS_SQL)).one()))
    engine.dispose()

    assert [r.status_code for r in responses] == [200] * 40
    ids = [__import__("uuid").UUID(r.get_json()["context"]) for r in responses]
    assert failed.status_code == 500
    got = conn.execute(
        "SELECT id, array_agg(pgh_label ORDER BY pgh_id), array_agg(DISTINCT pgh_context_id)"
        " FROM orders_event WHERE id < 100 GROUP BY id ORDER BY id"
    ).fetchall()
    assert got == [(i, ["insert", "update"], [ids[i]]) for i in range(40)]
    others = dict(conn.execute(
        "SELECT id, pgh_context_id FROM orders_event WHERE id >= 100 ORDER BY pgh_id"
    ).fetchall())
    assert list(others) == [100, 101]
    assert contexts(conn) == {
        **{ids[i]: {"method": "POST", "path": f"/orders/{i}", "user": f"user{i}", "request_id": f"r{i}"}
           for i in range(40)},
        others[100]: {"method": "POST", "path": "/fail/100", "user": "ann"},
        others[101]: {"method": "GET", "path": "/stream/101", "user": "bob"},
    }
    assert all(row in CLEAN for row in left), left


def test_sqlalchemy_savepoint_rollback_and_other_drivers(conn, orders, url):
    engine = pghistory.sqlalchemy.instrument(sqlalchemy.create_engine(url))
    assert pghistory.sqlalchemy.instrument(engine) is engine  # twice: listens once
    with pgh.context(user="alice") as ctx, Session(engine) as session:
        nested = session.begin_nested()
        session.execute(text("INSERT INTO orders VALUES (1, 'new')"))  # set_config inside the savepoint
        nested.rollback()
        session.execute(text("INSERT INTO orders VALUES (2, 'new')"))  # sent again
        session.commit()
    engine.dispose()
    assert history(conn) == [("insert", 2, "new", ctx.id)]
    with pytest.raises(ValueError, match=r"supports PostgreSQL through the psycopg \(3\) driver, not sqlite\+pysqlite"):
        pghistory.sqlalchemy.instrument(sqlalchemy.create_engine("sqlite://"))


def test_importing_pghistory_imports_no_framework():
    code = (
        "import sys, pghistory, pghistory.asgi, pghistory.wsgi\n"
        "print(sorted(m for m in ('sqlalchemy', 'starlette', 'fastapi', 'flask', 'werkzeug') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    blocked = (
        "import sys; sys.modules['sqlalchemy'] = None\n"
        "import pghistory.sqlalchemy\n"
    )
    err = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True)
    assert err.returncode == 1
    assert err.stderr.strip().splitlines()[-1] == (
        "ImportError: pghistory.sqlalchemy needs SQLAlchemy 2: pip install 'pghistory[sqlalchemy]'"
    )


def test_the_core_package_requires_psycopg_only():
    from importlib import metadata

    requires = metadata.requires("pghistory") or []
    core = [r for r in requires if "extra ==" not in r]
    assert core == ["psycopg>=3.1"]
    extras = set(metadata.metadata("pghistory").get_all("Provides-Extra") or [])
    assert {"sqlalchemy", "asgi", "fastapi", "flask", "pool", "celery"} <= extras


def test_behind_pgbouncer_session_settings_leak_and_the_ambient_context_does_not(conn, orders, route):
    if not route.connect_args:
        pytest.skip("a PgBouncer property")
    with psycopg.connect(route.dsn, autocommit=True, prepare_threshold=None) as a, \
            psycopg.connect(route.dsn, autocommit=True, prepare_threshold=None) as b:
        # two clients, two server connections in the pool: a session setting of one
        # client is seen by whichever client gets that server connection next
        a.execute("SELECT set_config('pghistory.context_metadata', '{\"leak\": 1}', false)")
        seen = {b.execute("SELECT current_setting('pghistory.context_metadata', true)").fetchone()[0]
                for _ in range(6)}
        assert '{"leak": 1}' in seen
        a.execute("RESET ALL")
        b.execute("RESET ALL")
    with pgh.HistoryConnection.connect(route.dsn, prepare_threshold=None) as h, \
            psycopg.connect(route.dsn, autocommit=True, prepare_threshold=None) as other:
        with pgh.context(user="alice") as ctx:
            h.execute("INSERT INTO orders VALUES (1, 'new')")
            h.commit()
        seen = {other.execute(SETTINGS_SQL).fetchone() for _ in range(6)}
    assert seen <= set(CLEAN)
    assert history(conn) == [("insert", 1, "new", ctx.id)]


def test_each_request_is_a_fresh_context_even_after_one_that_was_not_closed():
    def app(environ: Any, start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [str(pgh.current_context().id).encode()]

    wrapped = pghistory.wsgi.HistoryMiddleware(app, metadata=lambda environ: {"path": environ["PATH_INFO"]})
    first = wrapped({"PATH_INFO": "/a"}, lambda *a: None)  # a server that forgets close()
    second = wrapped({"PATH_INFO": "/b"}, lambda *a: None)
    assert list(first) != list(second)  # the second request did not join the first
    assert pgh.current_context().metadata == {"path": "/b"}
    second.close()
    first.close()
    assert pgh.current_context() is None
