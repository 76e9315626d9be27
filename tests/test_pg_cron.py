"""maintain() run by pg_cron, as the README's "History at scale" schedules it (issue 15).

pg_cron must be built for the server that loads it: Debian's postgresql-15-cron is built
for Debian's PostgreSQL 15 (/usr/lib/postgresql/15), not for the PyPI builds the other
tests run on. So this test starts its own server from the machine's PostgreSQL 15, with
pg_cron preloaded, and installs this checkout's pghistory into that build (its extension
directory is the machine's: this is the one test that writes there). Skipped, with the
reason, when this run is not PostgreSQL 15 or the packages cannot be installed (CI runs
as root and installs them).
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import harness
from sqlhelpers import rows, value

SYSTEM_PG_CONFIG = Path("/usr/lib/postgresql/15/bin/pg_config")
README = Path(__file__).resolve().parents[1] / "README.md"


def readme_schedule() -> str:
    """The README's pg_cron statement (the SQL block headed "-- pg_cron")."""
    found = re.search(r"```sql\n-- pg_cron\n(.*?)```", README.read_text(), re.S)
    assert found, "README: no ```sql block starting with -- pg_cron"
    return found.group(1).strip()


@pytest.fixture(scope="module")
def cron(pg: harness.Server) -> Iterator[harness.Server]:
    if pg.major != 15:
        pytest.skip(f"pg_cron comes from Debian's postgresql-15-cron, built for PostgreSQL 15; this is {pg.major}")
    reason = harness.debian_packages("postgresql-15", "postgresql-server-dev-15", "postgresql-15-cron")
    if reason:
        pytest.skip(reason)
    build = harness.Build.from_pg_config(SYSTEM_PG_CONFIG, source="system")
    pkglibdir = subprocess.run([str(SYSTEM_PG_CONFIG), "--pkglibdir"], check=True, capture_output=True,
                               text=True).stdout.strip()
    if not (Path(pkglibdir) / "pg_cron.so").is_file():
        pytest.skip(f"postgresql-15-cron is installed but {pkglibdir} has no pg_cron.so")
    harness.install_extension(build)
    settings = {"shared_preload_libraries": "pg_cron", "cron.database_name": "postgres",
                # jobs run in background workers, not over a libpq connection needing a password
                "cron.use_background_workers": "on", "max_worker_processes": "16"}
    with harness.Server(build, settings=settings) as server:
        yield server


def test_pg_cron_runs_maintain_as_the_readme_schedules_it(cron: harness.Server) -> None:
    with cron.connect() as c:
        c.execute("CREATE EXTENSION pg_cron")
        c.execute("CREATE EXTENSION pghistory")
        c.execute("CREATE TABLE orders (id int PRIMARY KEY, status text)")
        c.execute("SELECT pghistory.track('orders', partition_by => interval '1 month')")
        c.execute("SELECT pghistory.set_retention('orders', interval '30 days', keep_latest => true)")
        c.execute("INSERT INTO orders VALUES (1, 'new')")
        c.execute("UPDATE orders SET status = 'paid'")
        with c.transaction():
            # old history for retention, and an event far ahead, in the default partition
            c.execute("SET LOCAL pghistory.allow_history_changes = on")
            c.execute("UPDATE orders_event SET pgh_created_at = now() - interval '100 days' WHERE pgh_label = 'insert'")
            c.execute("INSERT INTO orders_event (pgh_created_at, pgh_label, pgh_obj_id) "
                      "VALUES (now() + interval '1 year', 'manual', -1)")
        assert value(c, "SELECT count(*) FROM ONLY orders_event_default") == 2

        job = value(c, readme_schedule())
        assert rows(c, "SELECT jobname, command, database FROM cron.job WHERE jobid = %s", job) == [
            ("pghistory-maintain", "SELECT pghistory.maintain()", "postgres")]
        # not to wait for the README's schedule: seconds where pg_cron has them (1.5+), else each minute
        extversion = value(c, "SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'")  # '1.4-1'
        version = tuple(int(p) for p in re.findall(r"\d+", extversion)[:2])
        c.execute("SELECT cron.alter_job(%s, schedule => %s)", (job, "2 seconds" if version >= (1, 5) else "* * * * *"))

        deadline = time.monotonic() + 150
        runs: list[tuple[Any, ...]] = []
        while time.monotonic() < deadline:
            runs = rows(c, "SELECT status, return_message FROM cron.job_run_details WHERE jobid = %s "
                           "AND status IN ('succeeded', 'failed')", job)
            if runs:
                break
            time.sleep(1)
        assert runs and runs[0][0] == "succeeded", (runs, cron.log_tail())
        c.execute("SELECT cron.unschedule(%s)", (job,))
        # the job did maintain()'s work: the old insert pruned (the update is object 1's latest
        # event), the event ahead moved out of the default partition into a partition made for it
        assert rows(c, "SELECT pgh_label FROM orders_event ORDER BY pgh_id") == [("update",), ("manual",)]
        assert value(c, "SELECT count(*) FROM ONLY orders_event_default") == 0
        assert value(c, "SELECT tableoid::regclass::text FROM orders_event WHERE pgh_label = 'manual'") == \
            value(c, "SELECT 'orders_event_p' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC') "
                     "+ interval '1 year', 'YYYYMMDD')")
