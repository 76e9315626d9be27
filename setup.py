"""Builds the SQL scripts the package ships (``make sql``: pghistory/sql/*.sql,
from extension/) before setuptools copies the package; pyproject.toml holds
everything else."""

from __future__ import annotations

import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithSQL(build_py):
    def run(self) -> None:
        subprocess.run(["make", "--no-print-directory", "-s", "-C", str(ROOT), "sql"], check=True)
        super().run()


setup(cmdclass={"build_py": BuildPyWithSQL})
