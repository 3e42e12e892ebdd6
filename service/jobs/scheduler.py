"""The scheduler process (`flask jobs run`): a short fixed list of interval sweeps."""

from __future__ import annotations

import fcntl
import gc
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask
from sqlalchemy.engine import make_url

from service.db import db, is_database_outage, utcnow
from service.jobs.sweeps import SWEEPS

logger = logging.getLogger(__name__)

# Seconds between runs of each sweep. Due times live in rows, so these only bound latency.
INTERVALS: dict[str, int] = {
    "plan_ahead": 600,
    "send_reminders_and_prompts": 30,
    "dispatch": 15,
    "detect_misses_and_skips": 60,
    "evaluate_quotas": 900,
    "escalate_and_notify": 60,
    "deliver_webhooks": 30,
    "send_digests": 600,
    "refresh_meeting_feeds": 900,
    "purge_retention": 3600,
}
JOB_OPTIONS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 60}


# Back-off while the database is unreachable: 2, 4, 8 … seconds, at most 2 minutes.
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 120.0


class SchedulerLocked(RuntimeError):
    """Another scheduler process already runs against this SQLite database."""


def backoff_delay(
    failures: int, *, base: float = BACKOFF_BASE_SECONDS, cap: float = BACKOFF_CAP_SECONDS
) -> float:
    """Seconds to hold every sweep after `failures` consecutive database outages (0: none)."""
    if failures <= 0:
        return 0.0
    return min(cap, base * 2.0 ** min(failures - 1, 62))


class DatabaseBackoff:
    """Shared by every sweep of one process: how long to hold off while the database is down.

    Sweeps that fail together (the database went away under several at once) count as one
    failure: only a failure after the current hold has ended makes the next hold longer.
    A success ends the back-off.
    """

    def __init__(
        self,
        *,
        base: float = BACKOFF_BASE_SECONDS,
        cap: float = BACKOFF_CAP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base, self.cap, self.clock = base, cap, clock
        self.failures = 0
        self.resume_at = 0.0
        self._lock = threading.Lock()

    def remaining(self) -> float:
        """Seconds left in the current hold (0 when sweeps may run)."""
        return max(0.0, self.resume_at - self.clock())

    def failed(self) -> float:
        """Record an outage seen by a sweep; return the seconds every sweep now waits."""
        with self._lock:
            now = self.clock()
            if now >= self.resume_at:
                self.failures += 1
                self.resume_at = now + backoff_delay(self.failures, base=self.base, cap=self.cap)
            return max(0.0, self.resume_at - now)

    def succeeded(self) -> int:
        """Record a sweep that reached the database; return the failures it ends (0: none)."""
        with self._lock:
            ended, self.failures = self.failures, 0
            return ended


def _forget_connections() -> None:
    """Roll back and drop every pooled connection: after an outage they are all dead."""
    for step in (db.session.rollback, db.engine.dispose):
        try:
            step()
        except Exception:  # noqa: BLE001 - the connections may already be gone
            logger.debug("cleanup after a database outage failed", exc_info=True)


def _job(
    app: Flask,
    name: str,
    sweep: Callable[[datetime], int],
    backoff: DatabaseBackoff | None = None,
    hold: Callable[[float], None] | None = None,
) -> Callable[[], None]:
    """Wrap a sweep: log its count; on an outage clean up and hold every sweep (back-off)."""
    backoff = backoff or DatabaseBackoff()

    def run() -> None:
        # Held jobs are moved to the end of the hold (hold()); this catches any that were not.
        if backoff.remaining() > 0.5:
            logger.debug("sweep %s held: database back-off", name)
            return
        with app.app_context():
            try:
                count = sweep(utcnow())
                ended = backoff.succeeded()
                if ended:
                    logger.warning(
                        "database reachable again after %d failed attempts; sweeps resume", ended
                    )
                logger.info("sweep %s: %d", name, count)
            except Exception as exc:  # noqa: BLE001 - logged; never kills the process
                if not is_database_outage(exc):
                    logger.exception("sweep %s failed", name)
                    return
                _forget_connections()
                delay = backoff.failed()
                logger.warning(
                    "sweep %s: database unavailable (%s); sweeps back off %.1f s "
                    "(attempt %d failed)",
                    name,
                    type(exc).__name__,
                    delay,
                    backoff.failures,
                )
                if hold is not None:
                    hold(delay)
            finally:
                try:
                    db.session.remove()
                except Exception:  # noqa: BLE001 - a dead connection may refuse to close
                    logger.debug("session cleanup failed", exc_info=True)

    run.__name__ = f"sweep_{name}"
    return run


def _hold_jobs(scheduler: BlockingScheduler) -> Callable[[float], None]:
    """Return hold(seconds): no sweep runs before then; all run (once) when it ends."""

    def hold(seconds: float) -> None:
        until = datetime.now(UTC) + timedelta(seconds=seconds)
        for job in scheduler.get_jobs():
            if job.next_run_time is not None and job.next_run_time < until:
                job.modify(next_run_time=until)

    return hold


def build_scheduler(app: Flask) -> BlockingScheduler:
    """Return a BlockingScheduler (UTC, in-memory jobs) with every sweep on its interval."""
    sqlite = app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    scale = float(app.extensions["settings"].SCHEDULER_INTERVAL_SCALE)
    # One worker on SQLite (one writer anyway); a few on PostgreSQL so a slow webhook
    # receiver does not hold up the texts.
    scheduler = BlockingScheduler(
        timezone=UTC,
        jobstores={"default": MemoryJobStore()},
        executors={"default": ThreadPoolExecutor(1 if sqlite else 4)},
        job_defaults=JOB_OPTIONS,
    )
    backoff = DatabaseBackoff()
    hold = _hold_jobs(scheduler)
    for name, sweep in SWEEPS:
        scheduler.add_job(
            _job(app, name, sweep, backoff, hold),
            "interval",
            seconds=max(0.5, INTERVALS[name] * scale),
            id=name,
            name=name,
            next_run_time=datetime.now(UTC),
            **JOB_OPTIONS,
        )
    return scheduler


def sqlite_lock_path(database_url: str) -> Path | None:
    """Return the lock file guarding a SQLite database's scheduler, or None (not SQLite)."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(f"{url.database}.scheduler.lock")


def acquire_sqlite_lock(database_url: str) -> IO[Any] | None:
    """Hold an exclusive lock next to a SQLite database so a second scheduler refuses to start.

    One scheduler per SQLite database is the supported mode (SQLite has one writer); on
    PostgreSQL any number may run, coordinating through row claims. The lock is released
    by the operating system when the process exits, however it exits.
    """
    path = sqlite_lock_path(database_url)
    if path is None:
        return None
    handle = open(path, "a+")  # noqa: SIM115 - held open for the life of the process
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise SchedulerLocked(f"another scheduler holds {path}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def run_scheduler(app: Flask) -> None:
    """Run the sweeps until SIGTERM or SIGINT; a running sweep is allowed to finish."""
    lock = acquire_sqlite_lock(app.config["SQLALCHEMY_DATABASE_URI"])
    scheduler = build_scheduler(app)
    # Each sweep logs its own count; APScheduler's two lines per run would drown them.
    logging.getLogger("apscheduler.executors").setLevel(logging.WARNING)

    def stop(signum: int, _frame: Any) -> None:
        logger.info("scheduler stopping on %s", signal.Signals(signum).name)
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logger.info("scheduler started with %d sweeps", len(SWEEPS))
    # Everything built so far (the app, its mappings, the twilio library's classes) lives as
    # long as the process: kept out of the cycle collector, so a full collection during a
    # sweep walks only what sweeps allocate (60-190 ms with the interpreter lock held, measured).
    gc.freeze()
    try:
        scheduler.start()
    finally:
        if lock is not None:
            lock.close()
        logger.info("scheduler stopped")
