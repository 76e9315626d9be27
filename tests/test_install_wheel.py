"""The Python distribution as a user gets it: a wheel built from this checkout, installed into a
fresh virtualenv, carries the SQL scripts and runs `pghistory install` against servers that have
no pghistory files (pg_tle, and the plain script). Runs once per major's pg_tle server; the wheel
is built once per session, without pip's cache (whose wheels may come from other virtualenvs)."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

import harness
import pghistory as pgh
from sqlhelpers import rows
from test_install import make_managed, tle  # noqa: F401  (the pg_tle server fixture)

PIP = ["-m", "pip", "--disable-pip-version-check", "--no-cache-dir", "--quiet"]


@pytest.fixture(scope="session")
def wheel_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ of a fresh virtualenv with the wheel built from this checkout installed."""
    tmp = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, *PIP, "wheel", "--no-deps", "-w", str(tmp / "dist"), str(harness.ROOT)],
                           capture_output=True, text=True, timeout=600)
    if built.returncode != 0:
        pytest.fail(f"pip wheel failed:\n{built.stdout}{built.stderr}")
    (wheel,) = (tmp / "dist").glob("pghistory-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for script in (f"pghistory--{pgh.__version__}.sql", f"pghistory--{pgh.__version__}.plain.sql",
                   "pghistory-pg_tle.sql", f"pghistory--0.1.0--{pgh.__version__}.plain.sql"):
        assert f"pghistory/sql/{script}" in names
    venv.create(tmp / "venv", with_pip=True)
    bin_dir = tmp / "venv" / "bin"
    # psycopg's own wheel brings libpq (the machine may have none)
    done = subprocess.run([str(bin_dir / "python"), *PIP, "install", str(wheel), "psycopg[binary]"],
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        pytest.fail(f"pip install of the wheel failed:\n{done.stdout}{done.stderr}")
    return bin_dir


@pytest.mark.parametrize(("with_pg_tle", "method"), [(True, "pg_tle"), (False, "script")], ids=["pg_tle", "script"])
def test_pghistory_install_from_the_wheel(wheel_env: Path, tle, with_pg_tle: bool, method: str):  # noqa: F811
    for m in make_managed(tle, with_pg_tle=with_pg_tle):
        env = tle.env()
        env.pop("DATABASE_URL", None)
        done = subprocess.run([str(wheel_env / "pghistory"), "install", "--dsn", tle.dsn(m.db, user=m.admin)],
                              env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout == f"pghistory {pgh.__version__} installed\n"
        assert done.stderr.startswith("pghistory: warning: pghistory is installed without the event triggers")
        with m.connect() as admin:
            assert rows(admin, "SELECT detail FROM pghistory.status() WHERE aspect = 'version'") == [
                (f"{pgh.__version__} ({method})",)]
