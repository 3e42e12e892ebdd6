"""Alert texts to therapists: one batched text per window (a count and a link), crisis re-sends."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, func, or_, select, update

from service.alerts import dashboard_link, escalate_crisis
from service.db import db
from service.models import Alert, Therapist
from service.notifications.templates import render
from service.outbox import enqueue_message
from service.phones import mask
from service.quiet_hours import is_quiet
from service.staff_time import STAFF_QUIET_HOURS, therapist_zone

logger = logging.getLogger(__name__)


def unacknowledged_crises_stmt(now: datetime, ack_minutes: int) -> Select[tuple[Alert]]:
    """Select the open crises older than `ack_minutes` not yet sent to on-call, locking them."""
    return (
        select(Alert)
        .where(
            Alert.kind == "crisis",
            Alert.status == "open",
            Alert.escalated_at.is_(None),
            Alert.created_at <= now - timedelta(minutes=ack_minutes),
        )
        .order_by(Alert.created_at)
        .with_for_update(skip_locked=True)
    )


def escalate_crises(now: datetime, *, ack_minutes: int) -> int:
    """Re-send crises nobody acknowledged within `ack_minutes` to the on-call phone, once."""
    rows = db.session.scalars(unacknowledged_crises_stmt(now, ack_minutes)).all()
    return sum(escalate_crisis(alert, now=now, minutes=ack_minutes) for alert in rows)


def therapists_with_new_alerts_stmt() -> Select[tuple[str]]:
    """Select the therapists who have alerts not yet texted (crises are texted at once)."""
    return (
        select(Alert.therapist_id)
        .where(Alert.notified_at.is_(None), Alert.therapist_id.is_not(None), Alert.kind != "crisis")
        .distinct()
    )


def _unnotified(therapist_id: str) -> tuple[ColumnElement[bool], ...]:
    """Criteria of a therapist's alerts not yet texted (crises are texted when raised)."""
    return (
        Alert.therapist_id == therapist_id,
        Alert.notified_at.is_(None),
        Alert.kind != "crisis",
    )


def notify_therapists(now: datetime, *, batch_minutes: int) -> int:
    """Text each therapist with new open alerts at most once per window; return texts queued.

    The text has a count and the dashboard link, never a client's name. A therapist with no
    phone gets nothing (the dashboard and API always show alerts); their alerts are marked
    notified so the next sweep does not look at them again.
    """
    therapist_ids = db.session.scalars(therapists_with_new_alerts_stmt()).all()
    queued = 0
    for therapist_id in therapist_ids:
        therapist = db.session.get(Therapist, therapist_id)
        if therapist is None or not therapist.phone or not therapist.active:
            _mark_notified(therapist_id, now)
            continue
        fresh = db.session.scalar(
            select(func.count(Alert.id)).where(*_unnotified(therapist_id), Alert.status == "open")
        )
        if not fresh:
            _mark_notified(therapist_id, now)  # acknowledged on the dashboard before any text
            continue
        if is_quiet(now, therapist_zone(therapist_id), STAFF_QUIET_HOURS):
            continue  # the morning's first batch will count them
        cutoff = now - timedelta(minutes=batch_minutes)
        claimed = db.session.execute(
            update(Therapist)
            .where(
                Therapist.id == therapist_id,
                or_(Therapist.alerts_notified_at.is_(None), Therapist.alerts_notified_at <= cutoff),
            )
            .values(alerts_notified_at=now)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:
            continue  # texted within the window (or by another scheduler just now)
        count = _mark_notified(therapist_id, now, only_open=True)
        _mark_notified(therapist_id, now)
        if not count:
            continue
        enqueue_message(
            practice_id=therapist.practice_id,
            to=therapist.phone,
            body=render("alert_batch_therapist", "en", count=count, link=dashboard_link()),
            purpose="alert",
            template="alert_batch_therapist",
            idempotency_key=f"alerts:{therapist_id}:{now:%Y%m%dT%H%M%S}",
            now=now,
            therapist_id=therapist_id,
        )
        logger.info("alert text (%d new) queued for therapist %s at %s", count, therapist_id,
                    mask(therapist.phone))  # fmt: skip
        queued += 1
    return queued


def _mark_notified(therapist_id: str, now: datetime, *, only_open: bool = False) -> int:
    criteria = list(_unnotified(therapist_id))
    if only_open:
        criteria.append(Alert.status == "open")
    result = db.session.execute(
        update(Alert)
        .where(*criteria)
        .values(notified_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)
