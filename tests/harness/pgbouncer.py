"""A throwaway PgBouncer in front of a test server, in transaction mode.

    reason = harness.debian_packages("pgbouncer")
    if reason: pytest.skip(reason)
    with harness.PgBouncer(pg, pool_size=2) as bouncer:
        psycopg.connect(bouncer.dsn(db), prepare_threshold=None)

Debian's ``pgbouncer``, run in the foreground on a free port of 127.0.0.1,
with its files in a temporary directory; as root it runs as the server's
OS user (pgbouncer refuses to run as root). ``pool_mode = transaction``:
each transaction of a client may run on another server connection, which is
what makes session settings unsafe there. PgBouncer before 1.21 does not
carry prepared statements across server connections: clients connect with
``prepare_threshold=None``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from .servers import Server, ServerError, _switch_user_argv, free_port


class PgBouncer:
    def __init__(self, server: Server, *, pool_size: int = 2, timeout: float = 30.0) -> None:
        self.server = server
        self.pool_size = pool_size
        self.timeout = timeout
        self.host = "127.0.0.1"
        self.port = 0
        self.tmpdir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def dsn(self, dbname: str, **params: Any) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(host=self.host, port=self.port, user=self.server.user, dbname=dbname, **params)

    def url(self, dbname: str) -> str:
        return f"postgresql://{self.server.user}@{self.host}:{self.port}/{dbname}"

    @property
    def logfile(self) -> Path:
        assert self.tmpdir is not None
        return self.tmpdir / "pgbouncer.log"

    def start(self) -> PgBouncer:
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not os.path.exists(binary):
            raise ServerError("pgbouncer is not installed (Debian package pgbouncer)")
        self.tmpdir = Path(tempfile.mkdtemp(prefix="pghistory-pgbouncer-"))
        self.tmpdir.chmod(0o755)
        self.port = free_port()
        (self.tmpdir / "users.txt").write_text(f'"{self.server.user}" ""\n')
        ini = self.tmpdir / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host={self.server.host} port={self.server.port}\n"
            "[pgbouncer]\n"
            f"listen_addr = {self.host}\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.tmpdir / 'users.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {self.pool_size}\nmax_client_conn = 500\n"
            f"logfile = {self.logfile}\npidfile = {self.tmpdir / 'pgbouncer.pid'}\n"
            "server_reset_query =\nignore_startup_parameters = extra_float_digits,options\n"
        )
        argv = [binary, str(ini)]
        user = self.server.os_user
        if user is not None:
            pw = pwd.getpwnam(user)
            for path in self.tmpdir.iterdir():
                os.chown(path, pw.pw_uid, pw.pw_gid)
            os.chown(self.tmpdir, pw.pw_uid, pw.pw_gid)
            argv = _switch_user_argv(user) + argv
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = (self.process.stderr.read() if self.process.stderr else b"").decode(errors="replace")
                raise ServerError(f"pgbouncer exited with {self.process.returncode}: {err}{self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise ServerError(f"pgbouncer did not listen on {self.port} within {self.timeout}s\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
