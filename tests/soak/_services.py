"""Real processes for the soak runs: gunicorn serving wsgi:app and `flask jobs run`, on 127.0.0.1."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

from tests.soak.conftest import FLASK, ROOT

GUNICORN = [sys.executable, "-m", "gunicorn"]
# Zones to seed clients in: the test picks the one where it is early afternoon right now, so
# the prompts it makes due are never moved by quiet hours (21:00-08:00), whenever it runs.
ZONES = ("Pacific/Honolulu", "America/Los_Angeles", "America/New_York", "America/Sao_Paulo",
         "Europe/London", "Europe/Berlin", "Asia/Dubai", "Asia/Kolkata", "Asia/Shanghai",
         "Asia/Tokyo", "Australia/Sydney", "Pacific/Auckland")  # fmt: skip


def afternoon_zone(now_utc) -> str:  # noqa: ANN001
    """The zone of ZONES whose local time is closest to 14:00 at `now_utc`."""

    def distance(zone: str) -> float:
        local = now_utc.astimezone(ZoneInfo(zone))
        return abs(local.hour + local.minute / 60 - 14)

    return min(ZONES, key=distance)


@contextmanager
def process(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """Run cmd with its output in `log`; SIGTERM it (then SIGKILL) on the way out."""
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
        try:
            yield proc
        finally:
            stop(proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> int | None:
    """SIGTERM a process we started and wait; SIGKILL it if it does not stop in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


def gunicorn_cmd(port: int, workers: int = 2, threads: int = 1) -> list[str]:
    return [*GUNICORN, "--workers", str(workers), "--threads", str(threads),
            "--bind", f"127.0.0.1:{port}", "--graceful-timeout", "10",
            "--access-logfile", "-", "--access-logformat", '%(m)s %(U)s %(s)s %(M)sms',
            "wsgi:app"]  # fmt: skip


def scheduler_cmd() -> list[str]:
    return [*FLASK, "jobs", "run"]


def migrate(env: dict[str, str]) -> None:
    """`flask db upgrade` against env's DATABASE_URL."""
    subprocess.run([*FLASK, "db", "upgrade"], cwd=ROOT, env=env, check=True,  # noqa: S603
                   capture_output=True, timeout=180)  # fmt: skip


def wait_ready(base: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> float:
    """Poll /readyz until 200; return the seconds it took. Fails if the process exits."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"web server exited with {proc.returncode}")
        try:
            if requests.get(f"{base}/readyz", timeout=5).status_code == 200:
                return time.monotonic() - started
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{base}/readyz not 200 within {timeout} s")
