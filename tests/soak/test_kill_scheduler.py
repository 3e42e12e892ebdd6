"""A week driven by real `flask jobs tick` processes, 50 of them SIGKILLed mid-run: nothing lost, nothing twice."""

from __future__ import annotations

import random
import select
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from service.db import db
from tests.soak.conftest import (
    ROOT,
    assert_nothing_lost_or_doubled,
    scheduler_env,
    seed_practice,
    tick_process,
)

pytestmark = pytest.mark.slow

KILLS = 50
START = date(2026, 12, 1)
# New York evening instants (UTC-5) around the seeded meetings (12:00, 17:00, 19:00) and
# calls (19:30-21:30): when reminders, prompts, closes and alerts happen.
LOCAL_STEPS = ["11:00", "12:40", "16:40", "17:45", "18:45", "19:30", "20:15", "21:00",
               "22:00", "23:30"]  # fmt: skip


def steps() -> list[datetime]:
    out = []
    for day in range(8):
        for hm in LOCAL_STEPS:
            h, m = map(int, hm.split(":"))
            local = datetime(2026, 12, 1, h, m) + timedelta(days=day)
            out.append((local + timedelta(hours=5)).replace(tzinfo=UTC))
    return out


class Reader:
    """A webhook-style consumer of /api/v1/events, polling between steps with its cursor."""

    def __init__(self, client: Any, headers: dict[str, str]) -> None:
        self.client, self.headers = client, headers
        self.after: str | None = None
        self.seen: list[str] = []

    def poll(self) -> None:
        while True:
            query = {"limit": "50"} | ({"after": self.after} if self.after else {})
            response = self.client.get("/api/v1/events", query_string=query, headers=self.headers)
            assert response.status_code == 200, response.data
            page = response.get_json()
            for item in page["items"]:
                self.seen.append(str(item["id"]))
            if page["items"]:
                self.after = page["next"] or str(page["items"][-1]["id"])
            if not page["next"]:
                db.session.remove()
                return


# `flask jobs tick` without click, announcing when start-up (imports, app, database) is over,
# so a kill can be aimed at the sweeps and the sends rather than at the imports.
TICK = """
import sys
from datetime import datetime
from wsgi import app
from service.jobs.tick import TickFailed, tick
with app.app_context():
    print("READY", flush=True)
    try:
        tick(datetime.fromisoformat(sys.argv[1]))
    except TickFailed:
        sys.exit(1)
"""


def _ready_tick(instant: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", TICK, instant], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    assert ready, "the tick process did not start within 120 s"
    line = proc.stdout.readline()
    assert line.strip() == b"READY", line
    return proc


def _kill_in_sweeps(instant: str, env: dict[str, str], rng: random.Random) -> bool:
    """Start a tick, SIGKILL it at a random moment after start-up; report whether it died."""
    proc = _ready_tick(instant, env)
    time.sleep(rng.uniform(0.0, 0.6))
    died = proc.poll() is None
    if died:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    return died


def _finish(instant: str, env: dict[str, str]) -> None:
    proc = tick_process(instant, env)
    out, _ = proc.communicate(timeout=120)
    # A sweep may fail (and be retried next step); the process itself must not hang or crash.
    assert proc.returncode in (0, 1), out.decode(errors="replace")[-2000:]


def test_sigkilled_schedulers_lose_nothing_and_send_nothing_twice(
    app, client, people, database_url, fake_twilio, clock
):
    seed_practice(people, START)
    db.session.remove()
    db.engine.dispose()  # no connection of ours may hold a SQLite lock during the run
    env = scheduler_env(database_url, fake_twilio)
    rng = random.Random(20261201)
    instants = steps()
    killed_at = set(rng.sample(range(len(instants)), KILLS))
    reader = Reader(client, people.alice.headers)
    killed = finished_before_kill = 0
    started = time.monotonic()
    for index, instant in enumerate(instants):
        clock.set(instant)
        stamp = instant.isoformat()
        if index in killed_at:
            # Up to three tries to land a kill in this step's sweeps (each try's committed
            # work stays; a try whose sweeps end before the kill counts as finished first).
            for _ in range(3):
                if _kill_in_sweeps(stamp, env, rng):
                    killed += 1
                    break
                finished_before_kill += 1
        _finish(stamp, env)
        reader.poll()
    final = instants[-1] + timedelta(hours=12)
    clock.set(final)
    _finish(final.isoformat(), env)
    reader.poll()

    figures = assert_nothing_lost_or_doubled(fake_twilio, final)
    # The live reader saw every event exactly once, with no gap left behind by a killed writer.
    assert len(reader.seen) == len(set(reader.seen)), "an event was read twice"
    assert len(reader.seen) == figures["events"], (len(reader.seen), figures["events"])
    assert figures["sent"] > 20 and figures["missed"] > 0 and figures["miss_alerts"] > 0
    print(
        f"\nkill soak ({db.engine.dialect.name}): {len(instants) + 1} steps, {killed} processes "
        f"SIGKILLed after start-up ({finished_before_kill} tries finished first), "
        f"{time.monotonic() - started:.0f} s; "
        f"{figures}"
    )
    assert killed >= KILLS * 0.6
