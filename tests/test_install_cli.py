"""The ``pghistory`` console script: ``pghistory install`` / ``pghistory status``,
where the DSN comes from, and errors as one line on stderr."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from psycopg import sql

import harness
import pghistory as pgh
from sqlhelpers import rows

#: The console script pip put beside this interpreter (`pip install -e .`).
SCRIPT = Path(sys.executable).with_name("pghistory")


def pghistory(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if not SCRIPT.exists():
        pytest.skip(f"no console script at {SCRIPT}: the distribution is not installed (tests/run does `pip install -e .`)")
    return subprocess.run([str(SCRIPT), *args], env=env, text=True, capture_output=True, timeout=120)


def extversion(pg, dbname: str) -> list[tuple]:
    with pg.connect(dbname) as c:
        return c.execute("SELECT extversion FROM pg_extension WHERE extname = 'pghistory'").fetchall()


def test_install_takes_the_dsn_from_the_option(pg, empty_db):
    env = pg.env()
    env.pop("DATABASE_URL", None)
    done = pghistory("install", "--dsn", pg.dsn(empty_db), env=env)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"pghistory {pgh.__version__} installed\n", "")
    assert extversion(pg, empty_db) == [(pgh.__version__,)]


def test_install_takes_the_dsn_from_database_url_before_the_libpq_environment(pg, empty_db):
    env = {**pg.env(dbname="postgres"), "DATABASE_URL": pg.url(empty_db)}
    done = pghistory("install", env=env)
    assert (done.returncode, done.stderr) == (0, "")
    assert extversion(pg, empty_db) == [(pgh.__version__,)]
    assert extversion(pg, "postgres") == []


def test_install_takes_the_database_from_the_libpq_environment(pg, empty_db):
    env = pg.env(dbname=empty_db)
    env.pop("DATABASE_URL", None)
    done = pghistory("install", env=env)
    assert (done.returncode, done.stderr) == (0, "")
    assert extversion(pg, empty_db) == [(pgh.__version__,)]


def test_a_server_error_is_one_line_on_stderr(pg, empty_db):
    env = pg.env()
    env.pop("DATABASE_URL", None)
    done = pghistory("install", "--dsn", pg.dsn(empty_db, user="pgh_no_such_role"), env=env)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("pghistory: error: ")
    assert 'role "pgh_no_such_role" does not exist' in done.stderr


def test_an_unknown_method_is_a_usage_error(pg):
    done = pghistory("install", "--method", "ftp", env=pg.env())
    assert done.returncode == 2
    assert "argument --method: invalid choice: 'ftp'" in done.stderr
    assert "Traceback" not in done.stderr


def test_make_psql_opens_psql_on_a_throwaway_server_with_pghistory(pg):
    done = subprocess.run(["make", "-s", "-C", str(harness.ROOT), "psql", f"MAJOR={pg.major}"], text=True,
                          input="SELECT extversion FROM pg_extension WHERE extname = 'pghistory';\n",
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"PostgreSQL {pg.major} with pghistory" in done.stdout
    assert f"\n {pgh.__version__}\n(1 row)" in done.stdout


def test_status_reports_each_check_and_what_to_run(pg, db):
    env = pg.env()
    env.pop("DATABASE_URL", None)
    with pg.connect(db) as c:
        c.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
        c.execute("SELECT pghistory.track('orders')")
        c.execute("ALTER EVENT TRIGGER pghistory_after_ddl DISABLE")
        c.execute("ALTER TABLE orders ADD COLUMN note text")  # not followed now
    done = pghistory("status", "--dsn", pg.dsn(db), env=env)
    assert (done.returncode, done.stderr) == (3, "")
    assert [" ".join(line.split()) for line in done.stdout.splitlines()] == [  # columns aligned
        f"ok pghistory version {pgh.__version__} (extension)",
        "FAIL pghistory event triggers missing (pghistory_after_ddl): ALTER TABLE of a tracked table is "
        "not followed; refresh() brings it in step",
        "FAIL public.orders trigger functions out of date with the table: pghistory.\"public.orders/insert\"(), "
        "pghistory.\"public.orders/update\"(), pghistory.\"public.orders/delete\"(), pghistory.\"public.orders/truncate\"()",
        "ok public.orders event table public.orders_event",
        "ok public.orders owners event table and trigger functions owned by postgres, as the table",
        "",
        "To do:",
        "pghistory event triggers: SELECT pghistory.install_event_triggers(); -- as a superuser or the service's admin role",
        "public.orders trigger functions: SELECT pghistory.refresh('public.orders');",
    ]
    with pg.connect(db) as c:
        c.execute("SELECT pghistory.refresh('orders')")
        c.execute("ALTER EVENT TRIGGER pghistory_after_ddl ENABLE")
    done = pghistory("status", "--dsn", pg.dsn(db), env=env)
    assert done.returncode == 0, done.stdout


def test_status_of_a_database_without_pghistory_says_what_to_do(pg, empty_db):
    done = pghistory("status", "--dsn", pg.dsn(empty_db), env=pg.env())
    assert (done.returncode, done.stdout, done.stderr) == (
        1, "", "pghistory: error: pghistory is not installed in this database (run: pghistory install)\n")


def test_status_flags_history_not_owned_by_the_tables_owner(conn, make_role):
    role = make_role("pgh_other")
    conn.execute("CREATE TABLE orders (id int PRIMARY KEY)")
    conn.execute("SELECT pghistory.track('orders')")
    conn.execute(sql.SQL("ALTER TABLE orders_event OWNER TO {}").format(sql.Identifier(role)))
    assert rows(conn, "SELECT ok, detail, action FROM pghistory.status() WHERE aspect = 'owners'") == [(
        False,
        f"not owned by the table's owner postgres: public.orders_event (owned by {role})",
        "SELECT pghistory.refresh('public.orders');"
        " -- as a superuser, or a member of postgres and of the roles that own them now",
    )]
    # the action does what it says: the history goes back to the table's owner
    conn.execute("SELECT pghistory.refresh('public.orders')")
    assert rows(conn, "SELECT ok FROM pghistory.status() WHERE aspect = 'owners'") == [(True,)]
