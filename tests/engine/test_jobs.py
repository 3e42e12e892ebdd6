"""The scheduler's wiring, `flask jobs tick`, the SQLite guard, retention, and the pure rules."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import create_engine

from service.db import db
from service.escalation import (
    close_outcome,
    consecutive_misses,
    dedup_key,
    iso_week_label,
    should_alert,
    webhook_backoff,
)
from service.jobs import sweeps
from service.jobs.scheduler import (
    INTERVALS,
    SchedulerLocked,
    acquire_sqlite_lock,
    build_scheduler,
    sqlite_lock_path,
)
from service.models import Message
from service.outbox import enqueue_message

T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("statuses", "run"),
    [
        ([], 0),
        (["missed"], 1),
        (["missed", "missed", "confirmed", "missed"], 2),
        (["missed", "skipped", "excused", "missed"], 2),
        (["missed", "declined", "missed"], 2),
        (["prompted", "missed", "cancelled", "missed"], 2),
        (["confirmed", "missed", "missed"], 0),
    ],
)
def test_consecutive_misses_counts_the_run_since_the_last_confirmation(statuses, run):
    assert consecutive_misses(statuses) == run


@pytest.mark.parametrize(
    ("run", "threshold", "alert"),
    [(0, 1, False), (1, 1, True), (1, 2, False), (2, 2, True), (3, 2, True), (49, 50, False)],
)
def test_should_alert_once_the_run_reaches_the_threshold(run, threshold, alert):
    assert should_alert(run, threshold) is alert


def test_should_alert_refuses_a_threshold_below_one():
    with pytest.raises(ValueError):
        should_alert(1, 0)


W = timedelta(minutes=120)
CLOSE = T0 + W


@pytest.mark.parametrize(
    ("status", "sent_at", "now", "outcome"),
    [
        ("sent", T0, CLOSE, ("missed", None)),
        ("delivered", T0, CLOSE, ("missed", None)),
        ("sending", None, CLOSE, ("missed", None)),
        ("queued", None, CLOSE, ("not_sent", None)),
        ("skipped", None, CLOSE, ("not_sent", None)),
        (None, None, CLOSE, ("not_sent", None)),
        ("failed", None, CLOSE, ("undelivered", None)),
        ("undelivered", T0, CLOSE, ("undelivered", None)),
        ("sent", T0 + timedelta(minutes=20), CLOSE, ("extend", CLOSE + timedelta(minutes=20))),
        ("sent", T0 + timedelta(minutes=20), CLOSE + timedelta(hours=1), ("missed", None)),
    ],
)
def test_close_outcome_depends_on_whether_the_question_was_asked(status, sent_at, now, outcome):
    result = close_outcome(
        message_status=status, sent_at=sent_at, window=W, closes_at=CLOSE, now=now
    )
    assert result == outcome


def test_small_pure_rules():
    assert dedup_key("missed", "cl_1", "commitment", "cm_1", "2026-12-01T20:00") == (
        "missed:cl_1:commitment:cm_1:2026-12-01T20:00"
    )
    assert iso_week_label(datetime(2026, 12, 28).date()) == "2026-W53"
    assert [webhook_backoff(n).total_seconds() for n in (1, 2, 3)] == [30, 60, 120]
    assert webhook_backoff(30) == timedelta(hours=6)


def test_the_scheduler_registers_every_sweep_with_the_expected_options(app):
    scheduler = build_scheduler(app)
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert list(jobs) == [name for name, _ in sweeps.SWEEPS]
    for name, job in jobs.items():
        assert isinstance(job.trigger, IntervalTrigger)
        assert job.trigger.interval == timedelta(seconds=INTERVALS[name])
        assert job.coalesce is True and job.max_instances == 1
    assert str(scheduler.timezone) == "UTC"
    assert not scheduler.running


def test_a_second_scheduler_on_the_same_sqlite_database_refuses_to_start(tmp_path):
    url = f"sqlite:///{tmp_path / 'one.db'}"
    assert sqlite_lock_path(url) == tmp_path / "one.db.scheduler.lock"
    assert sqlite_lock_path("postgresql+psycopg://x@localhost/db") is None
    first = acquire_sqlite_lock(url)
    try:
        with pytest.raises(SchedulerLocked):
            acquire_sqlite_lock(url)
    finally:
        first.close()
    acquire_sqlite_lock(url).close()  # free again once the first process is gone


def test_jobs_tick_prints_a_count_per_sweep_and_is_idempotent(people, runner):
    from tests.factories import make_commitment

    make_commitment(people.carol)
    db.session.commit()
    first = runner.invoke(args=["jobs", "tick", "--now", "2026-12-01T17:00:00Z"])
    assert first.exit_code == 0, first.output
    lines = dict(line.split(": ") for line in first.output.strip().splitlines())
    assert list(lines) == [name for name, _ in sweeps.SWEEPS]
    assert lines["plan_ahead"] == "2"
    again = runner.invoke(args=["jobs", "tick", "--now", "2026-12-01T17:00:00Z"])
    assert dict(line.split(": ") for line in again.output.strip().splitlines())["plan_ahead"] == "0"
    bad = runner.invoke(args=["jobs", "tick", "--now", "tomorrow"])
    assert bad.exit_code != 0


def test_retention_erases_old_bodies_and_keeps_the_metadata(people):
    old = enqueue_message(practice_id=people.riverside.id, to="+15005550101", body="old text",
                          purpose="reminder", idempotency_key="old", now=T0 - timedelta(days=91))  # fmt: skip
    new = enqueue_message(practice_id=people.riverside.id, to="+15005550101", body="new text",
                          purpose="reminder", idempotency_key="new", now=T0 - timedelta(days=89))  # fmt: skip
    db.session.commit()
    assert sweeps.purge_retention(T0) == 1
    assert sweeps.purge_retention(T0) == 0
    old, new = db.session.get(Message, old.id), db.session.get(Message, new.id)
    assert (old.body, old.body_purged_at, old.to_number) == (None, T0, "+15005550101")
    assert new.body == "new text" and new.body_purged_at is None


def test_flask_jobs_run_stops_cleanly_on_sigterm(tmp_path):
    url = f"sqlite:///{tmp_path / 'sched.db'}"
    engine = create_engine(url)
    db.metadata.create_all(engine)
    engine.dispose()
    env = {**os.environ, "DATABASE_URL": url, "STEADFAST_ENV": "test", "SMS_BACKEND": "fake",
           "SECRET_KEY": "test-secret-key-0123456789abcdef"}  # fmt: skip
    log = tmp_path / "run.log"
    root = Path(__file__).resolve().parents[2]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "wsgi", "jobs", "run"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 90
            while "sweep purge_retention: 0" not in log.read_text():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log.read_text()
    assert "scheduler stopping on SIGTERM" in text and "scheduler stopped" in text
    assert "Traceback" not in text
