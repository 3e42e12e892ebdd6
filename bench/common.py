"""Shared benchmark plumbing: machine facts, throwaway databases, timing and the result rows."""

from __future__ import annotations

import os
import platform
import socket
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get(
    "BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SECRET_KEY = "bench-secret-key-0123456789abcdef"
TWILIO_AUTH_TOKEN = "bench-twilio-auth-token-0123456789"
TWILIO_ACCOUNT_SID = "AC" + "b" * 32
PUBLIC_BASE_URL = "https://steadfast.bench.invalid"

# What every app the benchmarks build runs with (the bench never texts anyone).
APP_OVERRIDES: dict[str, Any] = {
    "STEADFAST_ENV": "development",
    "SECRET_KEY": SECRET_KEY,
    "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
    "SMS_BACKEND": "fake",
    "TWILIO_ACCOUNT_SID": TWILIO_ACCOUNT_SID,
    "TWILIO_AUTH_TOKEN": TWILIO_AUTH_TOKEN,
    "SMS_MPS": 0,
    "PLAN_HORIZON_HOURS": 24,
    "LOG_LEVEL": "WARNING",
}

NOT_AVAILABLE = "not available yet"


@dataclass
class Row:
    """One line of the results table."""

    key: str
    what: str
    backend: str
    value: str = ""
    floor: str = ""
    ratio: float | None = None
    goal: str = ""
    status: str = ""  # met | missed | info | not available yet | skipped | error
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def judge(self, ok: bool | None) -> Row:
        self.status = "info" if ok is None else ("met" if ok else "missed")
        return self

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fmt_s(seconds: float) -> str:
    """Format a duration compactly."""
    if seconds < 0.001:
        return f"{seconds * 1e6:.0f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run fn once and return (seconds, result)."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (0-100) by nearest rank."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: list[float]) -> float:
    return statistics.median(values)


def pg_reachable(host: str = "127.0.0.1", port: int = 5432) -> bool:
    """Tell whether a PostgreSQL server listens on host:port."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def private_postgres(
    prefix: str = "steadfast_bench", admin_url: str = PG_ADMIN_URL
) -> Iterator[str]:
    """Create a throwaway PostgreSQL database (as tests/conftest.py does) and drop it after."""
    url = make_url(admin_url)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def private_sqlite(name: str = "bench") -> Iterator[str]:
    """A SQLite file in a temporary directory removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="steadfast-bench-") as tmp:
        yield f"sqlite:///{Path(tmp) / f'{name}.db'}"


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def postgres_version() -> str | None:
    """Return the server version at PG_ADMIN_URL, or None when unreachable."""
    if not pg_reachable():
        return None
    engine = create_engine(PG_ADMIN_URL)
    try:
        with engine.connect() as conn:
            return str(conn.scalar(text("SHOW server_version")))
    except Exception:  # noqa: BLE001 - a version is informative only
        return None
    finally:
        engine.dispose()


def machine_info() -> dict[str, Any]:
    """The facts a reader needs to weigh the numbers."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "ram_gib": round(_ram_gib(), 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "postgresql": postgres_version(),
        "os": platform.platform(),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "load_average_at_start": [round(x, 2) for x in load],
    }


def rss_peak_kib(pid: int) -> int | None:
    """Return a process's peak resident set size (VmHWM) in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None
