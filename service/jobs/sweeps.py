"""The scheduler's sweeps: one function per sweep, `(now) -> count`, each commits once."""

from __future__ import annotations

import functools
import importlib
import logging
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

from flask import current_app

from service.alert_texts import escalate_crises, notify_therapists
from service.db import db
from service.digests import send_digests as queue_digests
from service.horizon import plan_due_batches
from service.misses import detect_misses_and_skips as close_checkins
from service.prompting import send_prompts, send_reminders
from service.quotas import due_quota_batches
from service.retention import purge_message_bodies
from service.webhook_delivery import deliver_webhooks as deliver

logger = logging.getLogger(__name__)


def _settings() -> Any:
    return current_app.extensions["settings"]


def _unit_of_work(work: Callable[[], int]) -> int:
    """Run one sweep's work and commit it once; roll everything back if it fails."""
    try:
        count = int(work() or 0)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return count


def _batch_by_batch(batches: Iterator[int]) -> int:
    """Run a sweep's batches, each its own unit of work (committed, or rolled back alone)."""
    total = 0
    while True:
        count = _unit_of_work(lambda: next(batches, -1))
        if count < 0:
            return total
        total += count


def plan_ahead(now: datetime) -> int:
    """Materialise check-ins for the next PLAN_HORIZON_HOURS, committing batch by batch.

    Each batch of sources (claims, check-ins, events) is one transaction: a long first sweep
    holds neither every source's lock nor every loaded row until it ends.
    """
    horizon = timedelta(hours=_settings().PLAN_HORIZON_HOURS)
    return _batch_by_batch(plan_due_batches(now, horizon=horizon))


def send_reminders_and_prompts(now: datetime) -> int:
    """Queue the due meeting reminders and check-in prompts (stale ones are not sent late)."""
    stale = _settings().STALE_PROMPT_MINUTES
    return _unit_of_work(
        lambda: send_reminders(now, stale_minutes=stale) + send_prompts(now, stale_minutes=stale)
    )


@functools.cache
def _optional(module: str, name: str) -> Callable[..., Any] | None:
    """Return another engineer's entry point, or None (logged once) when it is not installed."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        logger.warning("%s.%s is not available; that sweep does nothing", module, name)
        return None


def dispatch(now: datetime) -> int:
    """Send the queued outbox through the configured SMS provider (notifications.dispatch)."""
    dispatch_outbox = _optional("service.notifications.dispatch", "dispatch_outbox")
    if dispatch_outbox is None:
        return 0
    provider = current_app.extensions["sms"]
    return _unit_of_work(lambda: _as_count(dispatch_outbox(now=now, provider=provider)))


def detect_misses_and_skips(now: datetime) -> int:
    """Close check-ins whose window ended: missed (and escalated) or skipped."""
    return _unit_of_work(lambda: close_checkins(now))


def evaluate_quotas(now: datetime) -> int:
    """Judge each weekly meeting quota once its client's local week has ended (per batch)."""
    return _batch_by_batch(due_quota_batches(now))


def escalate_and_notify(now: datetime) -> int:
    """Re-send unacknowledged crises to on-call; text therapists their batched new alerts."""
    s = _settings()
    return _unit_of_work(
        lambda: (
            escalate_crises(now, ack_minutes=s.CRISIS_ACK_MINUTES)
            + notify_therapists(now, batch_minutes=s.ALERT_BATCH_MINUTES)
        )
    )


def deliver_webhooks(now: datetime) -> int:
    """POST new and due events to the practices' webhook endpoints, with retries."""
    allow_private = _settings().ALLOW_PRIVATE_FEED_URLS
    return _unit_of_work(lambda: deliver(now, allow_private=allow_private))


def send_digests(now: datetime) -> int:
    """Queue each therapist's daily digest (first sweep after 08:00 in their zone)."""
    return _unit_of_work(lambda: queue_digests(now))


def refresh_meeting_feeds(now: datetime) -> int:
    """Re-import the meeting feeds that are due (service.meeting_import.refresh_due_feeds)."""
    refresh = _optional("service.meeting_import", "refresh_due_feeds")
    if refresh is None:
        return 0
    return _unit_of_work(lambda: _as_count(refresh(now)))


def purge_retention(now: datetime) -> int:
    """Erase message bodies older than MESSAGE_BODY_RETENTION_DAYS; metadata stays."""
    days = _settings().MESSAGE_BODY_RETENTION_DAYS
    return _unit_of_work(lambda: purge_message_bodies(now, retention_days=days))


def _as_count(result: Any) -> int:
    """Read a count out of another module's result (an int, a sized report, or None)."""
    if result is None:
        return 0
    if isinstance(result, int):
        return result
    for attribute in ("count", "sent", "processed", "refreshed"):
        value = getattr(result, attribute, None)
        if isinstance(value, int):
            return value
    try:
        return len(result)
    except TypeError:
        return 0


# The order of one tick (DESIGN §3); the scheduler runs the same functions on intervals.
SWEEPS: tuple[tuple[str, Callable[[datetime], int]], ...] = (
    ("plan_ahead", plan_ahead),
    ("send_reminders_and_prompts", send_reminders_and_prompts),
    ("dispatch", dispatch),
    ("detect_misses_and_skips", detect_misses_and_skips),
    ("evaluate_quotas", evaluate_quotas),
    ("escalate_and_notify", escalate_and_notify),
    ("deliver_webhooks", deliver_webhooks),
    ("send_digests", send_digests),
    ("refresh_meeting_feeds", refresh_meeting_feeds),
    ("purge_retention", purge_retention),
)
