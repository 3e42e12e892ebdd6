"""The scheduler process (`flask jobs run`): a short fixed list of interval sweeps."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.blocking import BlockingScheduler
from flask import Flask
from sqlalchemy.engine import make_url

from service.db import db, utcnow
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


class SchedulerLocked(RuntimeError):
    """Another scheduler process already runs against this SQLite database."""


def _job(app: Flask, name: str, sweep: Callable[[datetime], int]) -> Callable[[], None]:
    def run() -> None:
        with app.app_context():
            try:
                count = sweep(utcnow())
                logger.info("sweep %s: %d", name, count)
            except Exception:  # noqa: BLE001 - logged; the next interval tries again
                logger.exception("sweep %s failed", name)
            finally:
                db.session.remove()

    run.__name__ = f"sweep_{name}"
    return run


def build_scheduler(app: Flask) -> BlockingScheduler:
    """Return a BlockingScheduler (UTC, in-memory jobs) with every sweep on its interval."""
    sqlite = app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite")
    # One worker on SQLite (one writer anyway); a few on PostgreSQL so a slow webhook
    # receiver does not hold up the texts.
    scheduler = BlockingScheduler(
        timezone=UTC,
        jobstores={"default": MemoryJobStore()},
        executors={"default": ThreadPoolExecutor(1 if sqlite else 4)},
        job_defaults=JOB_OPTIONS,
    )
    for name, sweep in SWEEPS:
        scheduler.add_job(
            _job(app, name, sweep),
            "interval",
            seconds=INTERVALS[name],
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
    try:
        scheduler.start()
    finally:
        if lock is not None:
            lock.close()
        logger.info("scheduler stopped")
