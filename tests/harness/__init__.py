"""pghistory's test harness: PostgreSQL builds per major and throwaway servers.

Shared by tests/run, tests/conftest.py, tests/demo.py and bench/ (put tests/ on
sys.path, as tests/run does, then ``import harness``).

    harness.majors_from_env()       # [14, 15, 16, 17, 18] or $PGH_MAJORS
    build = harness.prepare(15)     # find/fetch a PG 15 build, `make install` pghistory into it
    harness.debian_packages("pgbouncer")  # None, or why a test must skip
    harness.bare_build(15, pg_tle="1.5.2")  # a build without pghistory's files, with pg_tle
    harness.citus_build(17); harness.CitusCluster(build)  # Citus, a coordinator + 2 workers
    with harness.Server(build) as pg:
        pg.dsn("postgres"), pg.connect(), pg.psql("-c", "select 1"), pg.bin("pgbench")
"""

from .builds import (
    ROOT,
    Build,
    BuildError,
    cache_dir,
    find_build,
    install_extension,
    majors_from_env,
    prepare,
)
from .citus import CITUS_MAJORS, CITUS_SETTINGS, CitusCluster, citus_build
from .packages import debian_packages
from .pgtle import PG_TLE_MAJORS, PG_TLE_SETTINGS, Unavailable, bare_build
from .servers import Server, ServerError, reap_orphans, stop_on_sigterm

__all__ = [
    "ROOT",
    "Build",
    "PG_TLE_MAJORS",
    "PG_TLE_SETTINGS",
    "BuildError",
    "CITUS_MAJORS",
    "CITUS_SETTINGS",
    "CitusCluster",
    "Server",
    "ServerError",
    "Unavailable",
    "bare_build",
    "cache_dir",
    "citus_build",
    "debian_packages",
    "find_build",
    "install_extension",
    "majors_from_env",
    "prepare",
    "reap_orphans",
    "stop_on_sigterm",
]
