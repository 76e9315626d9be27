"""Fixtures for pghistory's tests: a throwaway server per PostgreSQL major, a fresh database per test.

    def test_something(pg, conn):            # runs once per major: ids pg14 .. pg18
        if pg.major < 16: pytest.skip("needs 16")
        conn.execute("SELECT pghistory.track('t')")

Fixtures
    pg           session  the running harness.Server (pg.major, pg.host, pg.port, pg.user,
                          pg.bindir, pg.bin("psql"), pg.dsn(dbname, user=None), pg.connect(...),
                          pg.psql(...), pg.build.pg_config); parametrized over $PGH_MAJORS.
    db           function name (str) of a fresh database copied from `template_db` (which already
                          has CREATE EXTENSION pghistory); dropped WITH (FORCE) after the test.
                          A worker thread (`db_pool`) copies the next ones and drops old ones in
                          the background; PGH_DB_POOL=0 makes each test create its own.
    dsn          function conninfo string of that database, as the superuser.
    conn         function psycopg.Connection to it, autocommit=True, superuser; closed after.
    connect      function factory connect(user=None, *, autocommit=True, dbname=None, **kwargs)
                          -> another psycopg.Connection to the test db (as `user` if given);
                          all closed after the test.
    make_role    function factory make_role(prefix="pgh_role", *, login=True, superuser=False,
                          password=None, attributes="") -> unique role name; the roles are
                          dropped after the test (after its database).
    empty_db     function like db but without the extension (for install/upgrade tests).
    template_db  session  name of the template database ("pghistory_template").

Only one server runs at a time: the majors are pytest params of the session-scoped
`pg`, and pytest finishes one param's server before starting the next.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from psycopg import sql

import harness

MAJORS = harness.majors_from_env()
TEMPLATE = "pghistory_template"

try:  # DB-backed examples are slow and uneven; one database serves all examples of a test
    from hypothesis import HealthCheck, settings

    _ci = bool(os.environ.get("CI")) and "ci" in getattr(settings, "_profiles", {})
    settings.register_profile(
        "pghistory",
        parent=settings.get_profile("ci") if _ci else None,  # CI: derandomized, reproducible
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "pghistory"))
except ImportError:  # pragma: no cover
    pass


def pytest_configure(config: pytest.Config) -> None:
    harness.stop_on_sigterm()  # a killed run still stops its server


@pytest.fixture(scope="session", params=MAJORS, ids=[f"pg{m}" for m in MAJORS])
def pg(request: pytest.FixtureRequest) -> Iterator[harness.Server]:
    """A running throwaway server of one major (all tests using it run per major)."""
    major: int = request.param
    # tests/run has already fetched the builds and run `make install` (PGH_PREPARED);
    # a bare `pytest` does both here.
    build = harness.prepare(major, install=not os.environ.get("PGH_PREPARED"))
    with harness.Server(build) as server:
        yield server


def _create_database(
    pg: harness.Server, name: str, template: str | None = None, conn: psycopg.Connection | None = None
) -> None:
    stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
    if template:
        stmt += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        if pg.major >= 15:  # tiny databases copy faster as files than through the WAL
            stmt += sql.SQL(" STRATEGY FILE_COPY")
    with pg.connect() if conn is None else contextlib.nullcontext(conn) as c:
        for attempt in range(20):
            try:
                c.execute(stmt)
                return
            except psycopg.errors.ObjectInUse:  # autovacuum visiting the template
                if attempt == 19:
                    raise
                time.sleep(0.1)


class _DatabasePool:
    """Test databases copied from the template ahead of time, and dropped, by a worker thread.

    CREATE DATABASE is most of a small test's cost; the worker does it (and the
    drops) while the previous test runs.  take() falls back to creating one
    itself when none is ready, so a slow or failing worker only costs time.
    """

    def __init__(self, pg: harness.Server, template: str, ready: int = 2) -> None:
        self.pg, self.template = pg, template
        self._main = pg.connect()  # used by the test thread only
        self._ready: queue.Queue[str] = queue.Queue()
        self._todo: queue.Queue[tuple[str, str]] = queue.Queue()
        self.errors: list[str] = []
        self._thread = threading.Thread(target=self._work, name=f"pghistory-dbpool-pg{pg.major}", daemon=True)
        self._thread.start()
        for _ in range(ready):
            self._todo.put(("create", ""))

    def _work(self) -> None:
        with self.pg.connect() as c:
            while True:
                op, name = self._todo.get()
                try:
                    if op == "stop":
                        return
                    if op == "create":
                        name = f"t_pool_{uuid.uuid4().hex[:12]}"
                        _create_database(self.pg, name, self.template, conn=c)
                        self._ready.put(name)
                    elif op == "drop":
                        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                except Exception as exc:  # noqa: BLE001 - the test thread creates its own instead
                    self.errors.append(f"{op} {name}: {exc}")
                finally:
                    self._todo.task_done()

    def take(self, name: str) -> str:
        """A fresh database from the template, renamed to `name`."""
        try:
            ready = self._ready.get_nowait()
        except queue.Empty:
            _create_database(self.pg, name, self.template, conn=self._main)
            return name
        self._todo.put(("create", ""))
        self._main.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(ready), sql.Identifier(name)))
        return name

    def release(self, name: str) -> None:
        self._todo.put(("drop", name))

    def wait_idle(self) -> None:
        """Wait until every release()d database is gone (before dropping roles that owned things in it)."""
        self._todo.join()

    def close(self) -> None:
        self._todo.put(("stop", ""))
        self._thread.join(timeout=300)
        while True:
            try:
                name = self._ready.get_nowait()
            except queue.Empty:
                break
            self._main.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        self._main.close()


_POOLS: dict[int, _DatabasePool] = {}  # id(server) -> its pool


def _drop_database(pg: harness.Server, name: str) -> None:
    with pg.connect() as c:
        c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _unique_name(request: pytest.FixtureRequest, prefix: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")[:40]
    return f"{prefix}_{slug}_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def template_db(pg: harness.Server) -> Iterator[str]:
    """A database with CREATE EXTENSION pghistory done, copied for each test."""
    _drop_database(pg, TEMPLATE)
    _create_database(pg, TEMPLATE)
    try:
        with pg.connect(TEMPLATE) as c:
            c.execute("CREATE EXTENSION pghistory")
    except psycopg.Error as exc:
        _drop_database(pg, TEMPLATE)
        pytest.fail(f"pg{pg.major}: CREATE EXTENSION pghistory failed: {exc}", pytrace=False)
    with pg.connect() as c:
        c.execute(sql.SQL("ALTER DATABASE {} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false").format(
            sql.Identifier(TEMPLATE)))
    yield TEMPLATE


@pytest.fixture(scope="session")
def db_pool(pg: harness.Server, template_db: str) -> Iterator[_DatabasePool]:
    pool = _DatabasePool(pg, template_db, ready=int(os.environ.get("PGH_DB_POOL", "2")))
    _POOLS[id(pg)] = pool
    yield pool
    del _POOLS[id(pg)]
    pool.close()


@pytest.fixture
def make_role(pg: harness.Server) -> Iterator[Callable[..., str]]:
    """Factory for throwaway roles (cluster-wide, so uniquely named and dropped after the test)."""
    created: list[str] = []

    def make_role(
        prefix: str = "pgh_role",
        *,
        login: bool = True,
        superuser: bool = False,
        password: str | None = None,
        attributes: str = "",
    ) -> str:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        parts = [sql.SQL("CREATE ROLE {}").format(sql.Identifier(name))]
        parts.append(sql.SQL("LOGIN" if login else "NOLOGIN"))
        if superuser:
            parts.append(sql.SQL("SUPERUSER"))
        if password is not None:
            parts.append(sql.SQL("PASSWORD {}").format(sql.Literal(password)))
        if attributes:
            parts.append(sql.SQL(attributes))  # e.g. "CREATEDB IN ROLE foo"
        with pg.connect() as c:
            c.execute(sql.SQL(" ").join(parts))
        created.append(name)
        return name

    yield make_role

    if created and id(pg) in _POOLS:
        _POOLS[id(pg)].wait_idle()  # the test's database (which the roles may own things in) is gone
    errors = []
    with pg.connect() as c:
        for name in reversed(created):
            ident = sql.Identifier(name)
            try:
                c.execute(sql.SQL("DROP OWNED BY {}").format(ident))  # what it holds in `postgres`
                c.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
            except psycopg.Error as exc:
                errors.append(f"{name}: {exc}")
    if errors:
        pytest.fail("could not drop test roles: " + "; ".join(errors), pytrace=False)


@pytest.fixture
def db(request: pytest.FixtureRequest, db_pool: _DatabasePool, make_role: Callable[..., str]) -> Iterator[str]:
    """Name of a fresh database with pghistory installed, dropped after the test."""
    # (depends on make_role so that roles are dropped after the database that may reference them)
    name = db_pool.take(_unique_name(request, "t"))
    yield name
    db_pool.release(name)


@pytest.fixture
def empty_db(request: pytest.FixtureRequest, pg: harness.Server, make_role: Callable[..., str]) -> Iterator[str]:
    """Name of a fresh database *without* the extension, dropped after the test."""
    name = _unique_name(request, "e")
    _create_database(pg, name)
    yield name
    _drop_database(pg, name)


@pytest.fixture
def dsn(pg: harness.Server, db: str) -> str:
    """conninfo string of the test database (superuser)."""
    return pg.dsn(db)


@pytest.fixture
def connect(pg: harness.Server, db: str) -> Iterator[Callable[..., psycopg.Connection]]:
    """Factory for more connections to the test database; closed at teardown."""
    conns: list[psycopg.Connection] = []

    def connect(
        user: str | None = None, *, autocommit: bool = True, dbname: str | None = None, **kwargs
    ) -> psycopg.Connection:
        c = psycopg.connect(pg.dsn(dbname or db, user=user), autocommit=autocommit, **kwargs)
        conns.append(c)
        return c

    yield connect
    for c in conns:
        c.close()


@pytest.fixture
def conn(connect: Callable[..., psycopg.Connection]) -> psycopg.Connection:
    """psycopg connection to the test database: superuser, autocommit=True."""
    return connect()
