"""PGXN: META.json follows the PGXN Meta Spec 1.0.0, and `pgxn install <checkout>` installs pghistory."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

import harness

ROOT = harness.ROOT
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$")
LICENSES = {  # the spec's license strings
    "agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd", "freebsd", "gfdl_1_2",
    "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1", "lgpl_3_0", "mit", "mozilla_1_0",
    "mozilla_1_1", "openssl", "perl_5", "postgresql", "qpl_1_0", "ssleay", "sun", "zlib",
    "open_source", "restricted", "unrestricted", "unknown",
}


def _control_version() -> str:
    text = (ROOT / "pghistory.control").read_text()
    return re.search(r"^default_version\s*=\s*'([^']+)'", text, re.M).group(1)


def _prereq_version_ok(value: object) -> bool:
    if value == 0 or value == "0":
        return True
    if not isinstance(value, str):
        return False
    # a version, or a comma-separated list of comparisons such as ">= 14.0.0, < 19.0.0"
    return all(
        SEMVER.match(re.sub(r"^(==|!=|>=|<=|>|<)\s*", "", part.strip())) for part in value.split(",")
    )


def test_meta_json_is_valid():
    meta = json.loads((ROOT / "META.json").read_text())
    for key in ("name", "abstract", "version", "maintainer", "license", "provides", "meta-spec"):
        assert key in meta, f"META.json lacks the required key {key!r}"
    assert meta["meta-spec"]["version"] == "1.0.0"
    assert meta["name"] == "pghistory"
    assert re.match(r"^[^\s/\\\x00-\x1f]{2,}$", meta["name"])
    assert SEMVER.match(meta["version"])
    assert meta["version"] == _control_version(), "META.json and pghistory.control disagree on the version"
    assert meta["license"] in LICENSES
    assert meta["maintainer"]
    assert meta["abstract"].strip()
    for name, ext in meta["provides"].items():
        assert set(ext) <= {"file", "version", "abstract", "docfile"}, name
        assert SEMVER.match(ext["version"]), name
        assert (ROOT / ext["file"]).is_file(), f"provides.{name}.file {ext['file']} does not exist"
    assert "pghistory" in meta["provides"]
    assert meta["provides"]["pghistory"]["version"] == meta["version"]
    for phase, relations in meta.get("prereqs", {}).items():
        assert phase in {"configure", "build", "test", "runtime", "develop"}, phase
        for relation, reqs in relations.items():
            assert relation in {"requires", "recommends", "suggests", "conflicts"}, relation
            for req, version in reqs.items():
                assert _prereq_version_ok(version), f"prereqs.{phase}.{relation}.{req}: {version!r}"
    assert meta["prereqs"]["runtime"]["requires"]["PostgreSQL"] == "14.0.0"
    for tag in meta.get("tags", []):
        assert isinstance(tag, str) and 0 < len(tag) <= 255 and not re.search(r"[/\\\x00-\x1f]", tag)


def _copy_checkout(dest: Path) -> Path:
    """The distribution as pgxn would unpack it: the source tree, nothing built or local."""
    junk = {".git", ".venv", ".cache", ".pytest_cache", ".mypy_cache", "__pycache__", "results", "build", "dist"}

    def ignore(directory: str, names: list[str]) -> set[str]:
        return {
            n for n in names
            if n in junk or n.endswith(".egg-info") or re.match(r"^(pghistory--[^-]+\.sql|regression\..*)$", n)
        }

    return Path(shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True))


def test_pgxn_install_from_checkout(pg, tmp_path):
    version = _control_version()
    dist = _copy_checkout(tmp_path / f"pghistory-{version}")
    # pgxnclient's own main() in this interpreter: its scripts (bin/pgxn execs bin/pgxnclient) may
    # carry the shebang of the virtualenv where pip's cache built their wheel
    pgxn = [sys.executable, "-c", "import sys; from pgxnclient.cli import main; sys.exit(main())"]
    started = time.time() - 2
    result = subprocess.run(
        [*pgxn, "install", "--pg_config", str(pg.build.pg_config), str(dist)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, f"pgxn install failed:\n{result.stdout}\n{result.stderr}"

    ext_dir = pg.build.extension_dir
    control = ext_dir / "pghistory.control"
    script = ext_dir / f"pghistory--{version}.sql"
    for path in (control, script):
        assert path.is_file(), f"{path} not installed by pgxn"
        assert path.stat().st_mtime >= started, f"{path} was not (re)written by pgxn install"
    assert control.read_bytes() == (ROOT / "pghistory.control").read_bytes()
    assert script.read_bytes() == (dist / f"pghistory--{version}.sql").read_bytes()

    # and the server can load what pgxn installed
    name = f"pgxn_{int(time.time() * 1000) % 10**9}"
    with pg.connect() as c:
        c.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        with pg.connect(name) as c:
            try:
                c.execute("CREATE EXTENSION pghistory")
            except psycopg.Error as exc:
                pytest.fail(f"CREATE EXTENSION after pgxn install: {exc}", pytrace=False)
            got = c.execute("SELECT extversion FROM pg_extension WHERE extname = 'pghistory'").fetchone()
            assert got == (version,)
    finally:
        with pg.connect() as c:
            c.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
