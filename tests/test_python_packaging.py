"""The Python package's version is the extension's, and it ships py.typed.
Runs once, not per PostgreSQL major (it needs no server)."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest

import pghistory as pgh

ROOT = Path(__file__).resolve().parent.parent


def control_version() -> str:
    found = re.search(r"^default_version\s*=\s*'([^']+)'", (ROOT / "pghistory.control").read_text(), re.M)
    assert found, "pghistory.control has no default_version"
    return found.group(1)


def test_package_version_is_the_extension_version():
    pyproject = (ROOT / "pyproject.toml").read_text()
    found = re.search(r'^version\s*=\s*"([^"]+)"', pyproject, re.M)
    assert found, "pyproject.toml has no static version"
    assert found.group(1) == control_version() == pgh.__version__
    from pghistory import _install

    assert _install.VERSION == pgh.__version__  # the version install() installs


def test_installed_distribution_matches():
    try:
        installed = metadata.version("pghistory")
    except metadata.PackageNotFoundError:
        pytest.skip("the pghistory distribution is not installed (tests/run does `pip install -e .`)")
    assert installed == control_version()


def test_package_is_typed_and_its_py_typed_is_packaged():
    assert (Path(pgh.__file__).parent / "py.typed").is_file()
    assert re.search(r'^pghistory = \["py.typed", "sql/\*.sql"\]$', (ROOT / "pyproject.toml").read_text(), re.M)


def test_public_names_are_exported():
    # optional modules (integrations, cli, web) appear as attributes once some test imports them
    optional = {"annotations", "cli", "web", "asgi", "wsgi", "sqlalchemy", "celery"}
    assert sorted(pgh.__all__) == sorted(
        name for name in vars(pgh) if not name.startswith("_") and name not in optional
    )
