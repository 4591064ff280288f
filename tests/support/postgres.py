"""A real PostgreSQL server (Debian's binaries) in a temporary folder on a free loopback port.

Started with initdb + pg_ctl, stopped by its postmaster pid. As root, the server runs as the
`postgres` system user (PostgreSQL refuses to run as root). When the binaries are missing,
`apt-get install -y postgresql` is tried once.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from avatar_core.processes import stop_process
from stack import services

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
DATABASE = "records"
USER = "postgres"


def pg_bin() -> Path | None:
    """The newest installed PostgreSQL bin folder, installing Debian's package when absent."""
    dirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    if not dirs and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "postgresql"], capture_output=True, timeout=600)
        dirs = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return dirs[0] if dirs else None


class PostgresServer:
    """One throwaway cluster: `start()`, `url()`, `stop()` (fast shutdown; `start()` again reuses
    the data folder, which is how tests take the database away and bring it back)."""

    def __init__(self, *, bin_dir: Path, folder: Path):
        self._bin = bin_dir
        self._data = folder / "data"
        self._log = folder / "postgres.log"
        self.port = services.free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            self._as_user = ["runuser", "-u", USER, "--"]
            shutil.chown(folder, USER)
        self._run(
            "initdb", "-D", str(self._data), "-U", USER, "--auth=trust", "-E", "UTF8", "--no-sync"
        )

    def url(self, database: str = DATABASE) -> str:
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """An empty database of its own (one per test), as a SQLAlchemy URL."""
        name = f"records_{uuid.uuid4().hex[:12]}"
        with self._admin() as db:
            db.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def _admin(self) -> psycopg.Connection:
        return psycopg.connect(
            f"host=127.0.0.1 port={self.port} user={USER} dbname=postgres", autocommit=True
        )

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._as_user, str(self._bin / tool), *args],
            check=True,
            capture_output=True,
            timeout=START_TIMEOUT_S,
        )

    def start(self) -> PostgresServer:
        options = f"-h 127.0.0.1 -p {self.port} -k '' -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self._data),
            "-l",
            str(self._log),
            "-o",
            options,
            "-w",
            "-t",
            str(START_TIMEOUT_S),
            "start",
        )
        with self._admin() as db:
            if not db.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)
            ).fetchone():
                db.execute(f"CREATE DATABASE {DATABASE}")
        return self

    def pid(self) -> int | None:
        pid_file = self._data / "postmaster.pid"
        return int(pid_file.read_text().split()[0]) if pid_file.exists() else None

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster: sessions are cut), waiting for its exit."""
        if (pid := self.pid()) is not None:
            stop_process(pid, timeout=STOP_TIMEOUT_S, signum=signal.SIGINT)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the session; skipped, with the reason, when it cannot be had."""
    bin_dir = pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL binaries missing and `apt-get install -y postgresql` failed")
    # Not under pytest's own temp folder: that one is private to root, and the server is not.
    folder = Path(tempfile.mkdtemp(prefix="records-postgres-"))
    try:
        server = PostgresServer(bin_dir=bin_dir, folder=folder)
        try:
            yield server.start()
        finally:
            server.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def records_url(request, tmp_path) -> str:
    """A fresh records database on each backend: a SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'records.sqlite3'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()
