"""A throw-away PostgreSQL server for tests and local trials, from Debian's ``postgresql``
package (``apt-get install postgresql``; ``make install`` does it as root).

PostgreSQL refuses to run as root, so under root the data folder is given to the unprivileged
``nobody`` user and ``initdb``/``pg_ctl`` run as it (``runuser``). The server listens on
127.0.0.1 at a free port, trusts local connections, and runs with ``fsync=off`` (a test server:
a crash of the machine may lose it; nothing else about the store's guarantees changes).

    with TempPostgres() as pg:
        url = pg.url("mydb")   # created on first use: pg.create_database("mydb")
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def find_pg_bin() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl``: on PATH, else Debian's
    ``/usr/lib/postgresql/VERSION/bin`` (newest), else None."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    cands = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    return Path(cands[-1]).parent if cands else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TempPostgres:
    """Start a PostgreSQL server in a new temporary folder; :meth:`stop` removes both."""

    def __init__(self, user: str = "nobody"):
        self.bin = find_pg_bin()
        if self.bin is None:
            raise RuntimeError(
                "PostgreSQL's initdb not found: apt-get install postgresql (or `make install`)"
            )
        self.os_user = user if os.geteuid() == 0 else None
        self.dir = Path(tempfile.mkdtemp(prefix="ftscale-pg-"))
        self.data = self.dir / "data"
        self.port = _free_port()
        self.started = False

    def _run(self, *cmd: str, timeout: float = 120) -> None:
        argv = [str(self.bin / cmd[0]), *cmd[1:]]
        if self.os_user is not None:
            argv = ["runuser", "-u", self.os_user, "--", *argv]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed:\n{proc.stdout}\n{proc.stderr}")

    def start(self) -> TempPostgres:
        if self.os_user is not None:
            shutil.chown(self.dir, user=self.os_user)
        self._run(
            "initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync",
            "-E", "UTF8", "--locale=C",
        )  # fmt: skip
        opts = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        for _ in range(3):  # another process may take the free port between the probe and start
            try:
                self._run(
                    "pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"),
                    "-w", "-t", "60", "start",
                )  # fmt: skip
                break
            except RuntimeError:
                self.port = _free_port()
                opts = opts.replace(opts.split()[1], str(self.port), 1)
        else:
            raise RuntimeError(f"PostgreSQL did not start; log:\n{self.log()}")
        self.started = True
        return self

    def log(self) -> str:
        try:
            return (self.dir / "log").read_text()
        except OSError:
            return ""

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` (a fresh store) and return its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as db:
            db.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.started:
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> TempPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":  # python -m ftscale.testing.postgres: a server until Ctrl-C
    with TempPostgres() as pg:
        print(pg.url(), flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
