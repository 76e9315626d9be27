"""`install()`: put pghistory into a database, or upgrade it to this
package's version, by one of three ways in (``method``):

``"extension"``
    ``CREATE EXTENSION`` from the extension files on the server
    (``make install``, ``pgxn install``); upgrades by ``ALTER EXTENSION``.
``"pg_tle"``
    registers the install and update scripts with pg_tle (RDS, Aurora,
    Supabase: ``pgtle_admin`` membership needed), then ``CREATE EXTENSION``.
``"script"``
    the plain script: the same objects in schema ``pghistory`` without
    ``CREATE EXTENSION`` (Cloud SQL, Azure, Neon), its version recorded as
    the schema's comment; upgrades by the plain update scripts.
``"auto"``
    whichever way pghistory is installed already; for a new install
    extension files if the server has them, else pg_tle if this role may use
    it, else the plain script.

The scripts are the ones the Makefile builds (``make sql``), shipped as the
package data ``pghistory/sql/*.sql``.
"""

from __future__ import annotations

import re
import warnings
from importlib import resources
from typing import Any, Literal, Union

import psycopg
from psycopg import sql
from psycopg.pq import TransactionStatus

from ._ops import Execute, Gen, Rollback, Row, sync_twin
from .errors import ExtensionNotAvailable, NoEventTriggersWarning

AnyConn = Union[psycopg.Connection[Any], psycopg.AsyncConnection[Any]]

Method = Literal["auto", "extension", "pg_tle", "script"]
#: Every value `install()` takes for ``method``.
METHODS: tuple[Method, ...] = ("auto", "extension", "pg_tle", "script")

#: The version of the extension this package installs.
VERSION = "0.2.0"

EVENT_TRIGGERS = ("pghistory_after_ddl", "pghistory_before_ddl", "pghistory_on_drop")

# What is there already: the extension's version (files or pg_tle), the
# version the server's extension files offer, pg_tle's version and whether
# this role may register with it, the plain script's recorded version.
_STATE = sql.SQL(
    """SELECT (SELECT e.extversion FROM pg_catalog.pg_extension AS e WHERE e.extname = 'pghistory'),
              (SELECT a.default_version FROM pg_catalog.pg_available_extensions AS a WHERE a.name = 'pghistory'),
              (SELECT e.extversion FROM pg_catalog.pg_extension AS e WHERE e.extname = 'pg_tle'),
              EXISTS (SELECT FROM pg_catalog.pg_roles AS r WHERE r.rolname = 'pgtle_admin')
                  AND pg_catalog.pg_has_role(current_user, 'pgtle_admin', 'USAGE'),
              (SELECT substring(pg_catalog.obj_description(n.oid, 'pg_namespace')
                                FROM '^pghistory ([^ ]+) \\(plain script\\)$')
                 FROM pg_catalog.pg_namespace AS n WHERE n.nspname = 'pghistory')"""
)


def script(name: str) -> str:
    """The text of the built script `name` (package data ``pghistory/sql/``)."""
    path = resources.files("pghistory") / "sql" / name
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ExtensionNotAvailable(
            f"this pghistory package has no {name}: it was installed without its SQL scripts "
            "(in a checkout, run `make sql`, then `pip install .` again)"
        ) from None


def _plain(text: str) -> Execute:
    # the caller's transaction (or the implicit one of a multi-statement
    # query) holds it, not the script's own BEGIN/COMMIT
    body = text.removeprefix("BEGIN;\n").removesuffix("COMMIT;\n")
    return Execute(sql.SQL(body), None)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _plain_updates(start: str) -> list[str]:
    """The plain update scripts from `start` to `VERSION`, in order."""
    names = [p.name for p in (resources.files("pghistory") / "sql").iterdir()]
    steps: dict[str, list[str]] = {}
    for name in names:
        found = re.fullmatch(r"pghistory--(.+)--(.+)\.plain\.sql", name)
        if found:
            steps.setdefault(found.group(1), []).append(found.group(2))
    path, current = [], start
    while current != VERSION:
        targets = [t for t in steps.get(current, []) if _version_key(t) <= _version_key(VERSION)]
        if not targets:
            raise ExtensionNotAvailable(
                f"no update script leads from pghistory {current} (installed by plain script) to {VERSION}"
            )
        target = max(targets, key=_version_key)
        path.append(f"pghistory--{current}--{target}.plain.sql")
        current = target
    return path


def _install_gen(conn: AnyConn, method: Method) -> Gen[str]:
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    own_transaction = conn.info.transaction_status == TransactionStatus.IDLE and not conn.autocommit
    try:
        version = yield from _steps(method)
    except psycopg.Error as ex:
        if own_transaction:
            yield Rollback()
        if method in ("auto", "extension") and ex.sqlstate in ("58P01", "0A000"):
            raise ExtensionNotAvailable(
                "the pghistory extension is not installed on this PostgreSQL server: "
                "install its files on the database host (`make install` in a pghistory "
                "checkout, with PG_CONFIG pointing at that server's pg_config, or "
                "`pgxn install pghistory`), then call pghistory.install() again "
                f"(server said: {ex.diag.message_primary})"
            ) from ex
        if ex.sqlstate == "42501":
            raise ExtensionNotAvailable(
                f"pghistory could not be installed by {method}: {ex.diag.message_primary} "
                "(the installing role needs CREATE on the database; for pg_tle, membership in pgtle_admin)"
            ) from ex
        raise
    except ExtensionNotAvailable:
        if own_transaction:
            yield Rollback()
        raise
    rows: list[Row] = yield Execute(
        sql.SQL("SELECT count(*) FROM pg_catalog.pg_event_trigger WHERE evtname = ANY (%s)"), [list(EVENT_TRIGGERS)]
    )
    if rows[0][0] < len(EVENT_TRIGGERS):
        warnings.warn(
            NoEventTriggersWarning(
                "pghistory is installed without the event triggers that follow ALTER TABLE "
                "(this role may not create them): after altering a tracked table, run "
                "SELECT pghistory.refresh('<table>'), or have a superuser (or the service's "
                "admin role) run SELECT pghistory.install_event_triggers()"
            ),
            stacklevel=4,
        )
    return version


def _steps(method: Method) -> Gen[str]:
    rows: list[Row] = yield Execute(_STATE)
    installed, files, pgtle, pgtle_admin, plain = rows[0]
    if installed is not None:
        if method == "script":
            raise ExtensionNotAvailable(
                f"pghistory {installed} is installed as an extension: method 'script' does not apply "
                "(use method 'auto')"
            )
        if installed != VERSION:
            registered = pgtle is not None and files is None
            if method == "pg_tle" or registered:
                yield Execute(sql.SQL(script("pghistory-pg_tle.sql")), None)
            yield Execute(sql.SQL("ALTER EXTENSION pghistory UPDATE TO {}").format(sql.Literal(VERSION)))
        return VERSION
    if plain is not None:
        if method not in ("auto", "script"):
            raise ExtensionNotAvailable(
                f"pghistory {plain} is installed by plain script: method {method!r} does not apply "
                "(use method 'auto' or 'script')"
            )
        for name in _plain_updates(plain):
            yield _plain(script(name))
        return VERSION
    if method == "auto":
        if files is not None:
            method = "extension"
        elif pgtle is not None and pgtle_admin:
            method = "pg_tle"
        else:
            method = "script"
    if method == "extension":
        yield Execute(sql.SQL("CREATE EXTENSION pghistory"))
    elif method == "pg_tle":
        if pgtle is None or not pgtle_admin:
            raise ExtensionNotAvailable(
                "pg_tle is not usable here: "
                + ("it is not installed in this database (CREATE EXTENSION pg_tle)" if pgtle is None
                   else "this role is not a member of pgtle_admin (GRANT pgtle_admin TO <role>)")
            )
        yield Execute(sql.SQL(script("pghistory-pg_tle.sql")), None)
        if _version_key(pgtle) < (1, 5, 0):  # no schema argument before pg_tle 1.5.0
            yield Execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS pghistory"))
            yield Execute(sql.SQL("CREATE EXTENSION pghistory SCHEMA pghistory"))
        else:
            yield Execute(sql.SQL("CREATE EXTENSION pghistory"))
    else:
        yield _plain(script(f"pghistory--{VERSION}.plain.sql"))
    return VERSION


def install_gen(conn: AnyConn, method: Method = "auto") -> Gen[str]:
    """Install pghistory into the connection's database by `method` (see the
    module's docstring), or upgrade it to this package's version; return the
    version. Idempotent; runs in the caller's transaction.

    Warns (`pghistory.errors.NoEventTriggersWarning`) when the event triggers
    that follow ``ALTER TABLE`` are missing. Raises
    `pghistory.errors.ExtensionNotAvailable`, saying what it found and what
    to do, when no way in works (no extension files for ``"extension"``, no
    usable pg_tle for ``"pg_tle"``, no right to create the schema).
    """
    return _install_gen(conn, method)


install = sync_twin(install_gen)
