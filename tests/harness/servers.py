"""A throwaway PostgreSQL server of a given major, for tests, the demo and the bench.

    with Server(15) as pg:                 # or Server(build)
        with pg.connect() as conn: ...     # psycopg, autocommit, as the superuser
        pg.psql("-c", "SELECT 1")          # the build's own psql

The server is started by pytest-postgresql's ``PostgreSQLExecutor`` (initdb +
``pg_ctl start``) on a free port on 127.0.0.1, with durability switched off
(fsync, synchronous_commit, full_page_writes), and is stopped and removed on
exit.  PostgreSQL refuses to run as root: when the harness runs as root the
server runs as ``$PGH_OS_USER`` (default ``nobody``) through a small generated
``pg_ctl`` wrapper that switches user with ``runuser``; its data directory,
log and socket live in a directory that user owns.  Clients (psycopg, psql,
pg_regress) keep running as the calling user and connect over TCP.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .builds import Build, find_build, is_root

FAST_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "listen_addresses": "127.0.0.1",
    "max_connections": "200",
}


class ServerError(RuntimeError):
    """The server could not be started or stopped."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def os_user() -> str | None:
    """The OS user the server runs as: ``$PGH_OS_USER`` (default nobody) as root, else None (yourself)."""
    if not is_root():
        return None
    return os.environ.get("PGH_OS_USER") or "nobody"


def _switch_user_argv(user: str) -> list[str]:
    """argv prefix that runs a command as ``user`` (we are root)."""
    runuser = shutil.which("runuser") or next(
        (p for p in ("/usr/sbin/runuser", "/sbin/runuser") if os.path.exists(p)), None
    )
    if runuser:
        return [runuser, "-u", user, "--"]
    setpriv = shutil.which("setpriv")
    if setpriv:
        pw = pwd.getpwnam(user)
        return [setpriv, f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--init-groups"]
    raise ServerError("running as root, but neither runuser nor setpriv is available to drop privileges")


def stop_on_sigterm() -> None:
    """Turn SIGTERM (timeout, CI cancel) into KeyboardInterrupt, so servers are stopped on the way out."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, interrupt)


def _proc_start_time(pid: int) -> str | None:
    """Start time of a process (field 22 of /proc/PID/stat), to tell a live owner from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else fields[19]  # a zombie is as good as dead


def _owner_tag() -> str:
    return f"{os.getpid()} {_proc_start_time(os.getpid())}\n"


def reap_orphans(base: str | None = None) -> list[Path]:
    """Stop and remove servers this harness started for a process that has died (killed runs).

    Only directories with the harness's owner file are touched, and only when the
    process named there is gone.
    """
    reaped = []
    for tmpdir in Path(base or tempfile.gettempdir()).glob("pghistory-pg*-*"):
        try:
            pid_s, start = (tmpdir / "owner").read_text().split()
            pid = int(pid_s)
        except (OSError, ValueError):
            continue
        if _proc_start_time(pid) == start:
            continue  # its owner is alive
        datadir = tmpdir / "run" / "data"
        try:
            postmaster = int((datadir / "postmaster.pid").read_text().split()[0])
            cmdline = Path(f"/proc/{postmaster}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            postmaster, cmdline = 0, b""
        if postmaster and str(datadir).encode() in cmdline:
            with contextlib.suppress(OSError):
                os.kill(postmaster, signal.SIGQUIT)  # immediate shutdown
                for _ in range(100):
                    if not Path(f"/proc/{postmaster}").exists():
                        break
                    time.sleep(0.05)
        shutil.rmtree(tmpdir, ignore_errors=True)
        reaped.append(tmpdir)
    return reaped


class Server:
    """A running throwaway server: ``major``, ``host``, ``port``, ``user`` (superuser), ``bindir``."""

    def __init__(
        self,
        build: Build | int,
        *,
        settings: Mapping[str, Any] | None = None,
        superuser: str = "postgres",
        timeout: int = 120,
    ) -> None:
        self.build: Build = find_build(build) if isinstance(build, int) else build
        self.major: int = self.build.major
        self.host: str = "127.0.0.1"
        self.port: int = 0
        self.user: str = superuser
        self.os_user: str | None = os_user()
        self.settings: dict[str, str] = {**FAST_SETTINGS, **{k: str(v) for k, v in (settings or {}).items()}}
        self.timeout = timeout
        self.tmpdir: Path | None = None
        self._executor: Any = None

    # -- where things are -------------------------------------------------------
    @property
    def bindir(self) -> Path:
        return self.build.bindir

    def bin(self, name: str) -> Path:
        return self.build.bin(name)

    @property
    def rundir(self) -> Path:
        """Directory owned by the server's OS user: data/, postgresql.log and the socket."""
        assert self.tmpdir is not None, "server not started"
        return self.tmpdir / "run"

    @property
    def datadir(self) -> Path:
        return self.rundir / "data"

    @property
    def logfile(self) -> Path:
        return self.rundir / "postgresql.log"

    @property
    def socket_dir(self) -> Path:
        return self.rundir

    # -- clients ------------------------------------------------------------------
    def dsn(self, dbname: str = "postgres", user: str | None = None, **params: Any) -> str:
        """libpq conninfo string, e.g. ``host=127.0.0.1 port=5433 user=postgres dbname=postgres``."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(host=self.host, port=self.port, user=user or self.user, dbname=dbname, **params)

    def url(self, dbname: str = "postgres", user: str | None = None) -> str:
        return f"postgresql://{user or self.user}@{self.host}:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres", user: str | None = None, autocommit: bool = True, **kwargs: Any):
        """A psycopg connection (autocommit by default); the caller closes it."""
        import psycopg

        return psycopg.connect(self.dsn(dbname, user), autocommit=autocommit, **kwargs)

    def env(self, dbname: str | None = None, user: str | None = None) -> dict[str, str]:
        """os.environ plus PGHOST/PGPORT/PGUSER (and PGDATABASE) for libpq programs."""
        env = dict(os.environ)
        for var in ("PGSERVICE", "PGPASSWORD", "PGOPTIONS", "PGSSLMODE", "PGHOSTADDR", "PGDATABASE"):
            env.pop(var, None)
        env.update(PGHOST=self.host, PGPORT=str(self.port), PGUSER=user or self.user)
        if dbname:
            env["PGDATABASE"] = dbname
        return env

    def psql(
        self,
        *args: str,
        dbname: str = "postgres",
        user: str | None = None,
        input: str | None = None,
        check: bool = True,
        capture: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """Run this build's psql (-X, ON_ERROR_STOP) against the server."""
        cmd = [str(self.bin("psql")), "-X", "-v", "ON_ERROR_STOP=1", "--pset=pager=off", "-d", dbname, *args]
        return subprocess.run(
            cmd, env=self.env(user=user), input=input, text=True, check=check, capture_output=capture
        )

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    # -- lifecycle ------------------------------------------------------------------
    def _pg_ctl(self) -> Path:
        """pg_ctl to give PostgreSQLExecutor: the real one, or a wrapper that drops root."""
        real = self.bin("pg_ctl")
        if self.os_user is None:
            return real
        assert self.tmpdir is not None
        shim = self.tmpdir / "pg_ctl"  # in the root-owned tmpdir: the server user cannot swap it
        argv = " ".join(shlex.quote(a) for a in [*_switch_user_argv(self.os_user), str(real)])
        shim.write_text(
            "#!/bin/sh\n"
            "# generated by pghistory's tests/harness: PostgreSQL refuses to run as root,\n"
            f"# so pg_ctl (and the server it starts) runs as {self.os_user}\n"
            "cd / || exit 1\n"
            f'exec {argv} "$@"\n'
        )
        shim.chmod(0o755)
        return shim

    def _check_reachable(self) -> None:
        """As root: make sure the server user can read the build (a 0700 home in its path breaks it)."""
        assert self.os_user is not None
        paths = [self.bin("postgres"), self.build.extension_dir]
        test = " && ".join(f"test -r {shlex.quote(str(p))}" for p in paths)
        result = subprocess.run([*_switch_user_argv(self.os_user), "sh", "-c", test], cwd="/", capture_output=True)
        if result.returncode != 0:
            raise ServerError(
                f"the server runs as OS user {self.os_user!r} (PGH_OS_USER), which cannot read "
                f"{self.build.home}: keep PGH_CACHE in a world-readable place such as /var/cache/pghistory"
            )

    def start(self) -> Server:
        from pytest_postgresql.executors import PostgreSQLExecutor

        base = os.environ.get("PGH_TMPDIR") or ("/tmp" if os.path.isdir("/tmp") else None)
        reap_orphans(base)
        self.tmpdir = Path(tempfile.mkdtemp(prefix=f"pghistory-pg{self.major}-", dir=base))
        try:
            self.tmpdir.chmod(0o755)
            (self.tmpdir / "owner").write_text(_owner_tag())
            self.rundir.mkdir(mode=0o700)
            if self.os_user is not None:
                try:
                    pw = pwd.getpwnam(self.os_user)
                except KeyError:
                    raise ServerError(f"PGH_OS_USER={self.os_user}: no such OS user to run the server as") from None
                os.chown(self.rundir, pw.pw_uid, pw.pw_gid)
                self._check_reachable()
            pg_ctl = self._pg_ctl()
            options = " ".join(f"-c {k}={v}" for k, v in self.settings.items())
            last_error: Exception | None = None
            for _attempt in range(3):
                self.port = free_port()
                executor = PostgreSQLExecutor(
                    executable=str(pg_ctl),
                    host=self.host,
                    port=self.port,
                    datadir=str(self.datadir),
                    unixsocketdir=str(self.socket_dir),
                    logfile=str(self.logfile),
                    startparams=f"-w -t {self.timeout}",
                    dbname="postgres",
                    user=self.user,
                    postgres_options=options,
                    timeout=self.timeout,
                )
                try:
                    executor.start()
                    # mirakuru returns as soon as the port accepts TCP connections, which is
                    # before the server accepts sessions ("the database system is starting
                    # up"); `pg_ctl start -w` itself exits 0 only once the server is ready.
                    returncode = executor.process.wait(timeout=self.timeout)
                    if returncode != 0:
                        raise ServerError(f"pg_ctl start exited with {returncode}")
                    # the launcher is gone (the postmaster detached itself): forget it, so that
                    # stop() does not signal a process group id that may have been reused
                    executor.process.__exit__(None, None, None)
                    executor.process = None
                except Exception as exc:  # noqa: BLE001 - report with the server log
                    last_error = exc
                    log = self.log_tail()
                    self._kill(executor)
                    if "could not bind" in log or "already in use" in log:
                        continue  # someone took the port between free_port() and bind: retry
                    break
                self._executor = executor
                return self
            raise ServerError(
                f"PostgreSQL {self.major} ({self.build.home}) did not start: {last_error}\n"
                f"--- {self.logfile} ---\n{self.log_tail()}"
            )
        except BaseException:
            self._remove_tmpdir()
            raise

    def _kill(self, executor: Any) -> None:
        """Stop whatever this executor started, quietly."""
        if self.datadir.exists():
            subprocess.run(
                [str(executor.executable), "stop", "-D", str(self.datadir), "-m", "immediate"],
                capture_output=True,
                timeout=60,
            )
        try:
            executor.kill()
        except Exception:  # noqa: BLE001
            pass

    def stop(self) -> None:
        executor, self._executor = self._executor, None
        try:
            if executor is not None:
                try:
                    executor.stop()
                except Exception:  # noqa: BLE001 - fall back to an immediate stop
                    self._kill(executor)
        finally:
            self._remove_tmpdir()

    def _remove_tmpdir(self) -> None:
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<Server pg{self.major} {self.host}:{self.port} {self.build.home}>"
