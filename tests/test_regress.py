"""The pg_regress cases (tests/sql/*.sql, tests/expected/*.out) on each major.

Runs `make installcheck PG_CONFIG=<that major's pg_config>` against the session
server (PGHOST/PGPORT/PGUSER).  pg_regress writes tests/results and
tests/regression.diffs; the majors run one after another and each run starts
from a clean slate.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

import harness

TESTS = harness.ROOT / "tests"
MAX_SHOWN = 20000  # characters of regression.diffs shown in the failure


def _clean() -> None:
    shutil.rmtree(TESTS / "results", ignore_errors=True)
    for name in ("regression.diffs", "regression.out"):
        (TESTS / name).unlink(missing_ok=True)


def test_pg_regress(pg):
    cases = sorted((TESTS / "sql").glob("*.sql"))
    if not cases:
        pytest.skip("no pg_regress cases in tests/sql yet")
    _clean()
    (TESTS / f"regression.pg{pg.major}.diffs").unlink(missing_ok=True)
    result = subprocess.run(
        ["make", "--no-print-directory", "-C", str(harness.ROOT), "installcheck",
         f"PG_CONFIG={pg.build.pg_config}"],
        env=pg.env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    if result.returncode != 0:
        diffs_file = TESTS / "regression.diffs"
        diffs = diffs_file.read_text(errors="replace") if diffs_file.exists() else "(no regression.diffs)"
        if len(diffs) > MAX_SHOWN:
            diffs = diffs[:MAX_SHOWN] + f"\n... ({len(diffs) - MAX_SHOWN} more characters in {diffs_file})"
        # keep this major's diffs after the next major cleans up
        if diffs_file.exists():
            shutil.copy(diffs_file, TESTS / f"regression.pg{pg.major}.diffs")
        pytest.fail(
            f"pg_regress failed on PostgreSQL {pg.major} (exit {result.returncode}):\n"
            f"{result.stdout[-5000:]}{result.stderr[-5000:]}\n--- {diffs_file} ---\n{diffs}",
            pytrace=False,
        )
    _clean()
