"""Debian packages some tests need (pgbouncer, chromium, pg_tle's build tools, plpgsql_check).

    reason = harness.debian_packages("pgbouncer")   # None when installed (now or before)
    if reason: pytest.skip(reason)

As root (as CI runs) a missing package is installed with apt-get, once per
process and under a lock, so concurrent test processes do not race on dpkg.
Elsewhere nothing is installed, and the reason says what to install by hand.
Tests skip with that reason: a laptop without them still runs everything else.

An install never upgrades the PostgreSQL packages already there: other tests'
servers run from the system's PostgreSQL, and a newer postgresql-15 unpacked
under them (as a dependency of postgresql-server-dev-15, say) makes every
running server fail to load plpgsql. The installed server packages are
named at their versions, so apt-get keeps them or fails (and the test
skips). Client libraries (libpq) may move: servers do not load them anew.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess

from .builds import _ensure_cache, _lock, is_root


def _installed(package: str) -> bool:
    if not shutil.which("dpkg-query"):
        return False
    result = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    return result.returncode == 0 and "install ok installed" in result.stdout


def _installed_postgresql() -> list[str]:
    """``name=version`` of every installed PostgreSQL server package (postgresql-15, its modules)."""
    result = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status} ${Package}=${Version}\\n",
                             "postgresql-[0-9]*"], capture_output=True, text=True)
    return [line.split()[1] for line in result.stdout.splitlines()
            if line.startswith("installed ") and "-dev" not in line.split()[1].split("=")[0]]


@functools.lru_cache(maxsize=None)
def _apt_updated() -> None:
    subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True, timeout=600)


@functools.lru_cache(maxsize=None)
def debian_packages(*packages: str) -> str | None:
    """None when every package is installed (installing them as root); else why not."""
    missing = [p for p in packages if not _installed(p)]
    if not missing:
        return None
    if not is_root() or not shutil.which("apt-get"):
        return f"needs the Debian package(s) {' '.join(missing)} (apt-get install {' '.join(missing)})"
    with _lock(_ensure_cache() / ".apt.lock"):
        missing = [p for p in missing if not _installed(p)]
        if not missing:
            return None
        _apt_updated()
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        result = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing,
                                 *_installed_postgresql()],
                                capture_output=True, text=True, env=env, timeout=1200)
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"apt-get install {' '.join(missing)} failed: {tail[0]}"
    return None
