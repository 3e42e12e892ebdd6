"""A private, throwaway PostgreSQL cluster (initdb in a temporary folder, its own port).

Never the shared server: the cluster listens on 127.0.0.1 only, on a free port, with its
socket in its own folder, and is stopped and deleted however the test ends.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """initdb + pg_ctl around one data directory; as root, every command runs as postgres."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.port = port
        self._as_postgres = os.geteuid() == 0

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [str(PG_BIN / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(  # noqa: S603 - fixed binaries, our own arguments
            cmd, capture_output=True, text=True, timeout=timeout, check=True, cwd=self.root
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def database_url(self, name: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "--no-sync", "-E", "UTF8", "--locale=C")  # fmt: skip

    def start(self) -> float:
        """Start the server and wait until it accepts connections; return the seconds taken."""
        options = (
            f"-k {self.root} -c listen_addresses=127.0.0.1 -p {self.port} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60"
        )
        started = time.monotonic()
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options,
                  "-w", "-t", "60", "start", timeout=90)  # fmt: skip
        return time.monotonic() - started

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop", timeout=90)

    def running(self) -> bool:
        cmd = ["pg_ctl", "-D", str(self.data), "status"]
        try:
            self._run(*cmd)
        except subprocess.CalledProcessError:
            return False
        return True

    def psql(self, sql: str, database: str = "postgres") -> str:
        return self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                         "-d", database, "-At", "-c", sql).stdout  # fmt: skip


def cluster_available() -> bool:
    return (PG_BIN / "initdb").is_file() and (PG_BIN / "pg_ctl").is_file()


def private_cluster() -> Iterator[Cluster]:
    """Yield a started private cluster; stop and delete it afterwards, whatever happened."""
    if not cluster_available():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL binaries missing under {PG_BIN}")
        pytest.skip(f"PostgreSQL binaries missing under {PG_BIN}")
    root = Path(tempfile.mkdtemp(prefix="steadfast-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    cluster = Cluster(root, free_port())
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        try:
            if cluster.data.exists() and cluster.running():
                cluster.stop("immediate")
        finally:
            shutil.rmtree(root, ignore_errors=True)
