"""The pg_regress cases (tests/sql/*.sql, tests/expected/*.out) on each major.

Runs `make installcheck PG_CONFIG=<that major's pg_config>` against the session
server (PGHOST/PGPORT/PGUSER).  pg_regress writes its results into a fresh
directory per run (the Makefile's REGRESS_OPTS with --outputdir moved), so
majors, and runs in the same checkout at the same time, never share
tests/results.  A failure shows regression.diffs and leaves a copy in
tests/regression.pgNN.diffs.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

import harness

ROOT = harness.ROOT
TESTS = ROOT / "tests"
MAX_SHOWN = 20000  # characters of regression.diffs shown in the failure


def _make(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), *args], capture_output=True, text=True, **kwargs
    )


def _regress_opts(pg_config: str) -> list[str]:
    """The Makefile's REGRESS_OPTS, as make sees them."""
    result = _make(
        f"PG_CONFIG={pg_config}", "--eval", "pgh-print-regress-opts: ; @echo $(REGRESS_OPTS)",
        "pgh-print-regress-opts", timeout=60,
    )
    assert result.returncode == 0, f"cannot read REGRESS_OPTS from the Makefile:\n{result.stderr}"
    return shlex.split(result.stdout.strip())


def test_pg_regress(pg, tmp_path):
    if not sorted((TESTS / "sql").glob("*.sql")):
        pytest.skip("no pg_regress cases in tests/sql yet")
    kept = TESTS / f"regression.pg{pg.major}.diffs"
    kept.unlink(missing_ok=True)
    outdir = tmp_path / "regress"
    outdir.mkdir()
    pg_config = str(pg.build.pg_config)
    opts = [o for o in _regress_opts(pg_config) if not o.startswith("--outputdir")]
    opts.append(f"--outputdir={outdir}")
    result = _make(
        "installcheck", f"PG_CONFIG={pg_config}", "REGRESS_OPTS=" + shlex.join(opts),
        env=pg.env(), timeout=900,
    )
    if result.returncode != 0:
        diffs_file = outdir / "regression.diffs"
        diffs = diffs_file.read_text(errors="replace") if diffs_file.exists() else "(no regression.diffs)"
        if diffs_file.exists():
            shutil.copy(diffs_file, kept)
        if len(diffs) > MAX_SHOWN:
            diffs = diffs[:MAX_SHOWN] + f"\n... ({len(diffs) - MAX_SHOWN} more characters in {kept})"
        pytest.fail(
            f"pg_regress failed on PostgreSQL {pg.major} (exit {result.returncode}):\n"
            f"{result.stdout[-5000:]}{result.stderr[-5000:]}\n--- regression.diffs (kept in {kept}) ---\n{diffs}",
            pytrace=False,
        )
