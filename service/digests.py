"""The therapist's daily digest: counts for the last day, texted once per local day, no names."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, or_, select, update

from service.alerts import dashboard_link
from service.db import db
from service.models import Alert, CheckIn, Client, Therapist
from service.notifications.templates import render
from service.outbox import enqueue_message
from service.quiet_hours import is_quiet
from service.schedule import get_zone
from service.staff_time import DIGEST_FROM, STAFF_QUIET_HOURS, therapist_zone

logger = logging.getLogger(__name__)

_DAY = timedelta(hours=24)
_LONGEST_WINDOW = timedelta(hours=72)  # confirm_window_hours is at most 72


@dataclass(frozen=True)
class DigestCounts:
    """What one therapist's digest reports."""

    open_alerts: int
    confirmed: int
    missed: int
    skipped: int

    def empty(self) -> bool:
        """Report whether there is nothing to say."""
        return not (self.open_alerts or self.confirmed or self.missed or self.skipped)


def closed_counts_stmt(therapist_id: str, now: datetime) -> Select[tuple[str, int]]:
    """Count the therapist's check-ins confirmed, missed or skipped in the last 24 hours."""
    # Everything that closed in the last day was due within the last day plus the longest
    # window (72 h): the due_at bound lets (client_id, due_at) serve each client's range.
    return (
        select(CheckIn.status, func.count(CheckIn.id))
        .join(Client, Client.id == CheckIn.client_id)
        .where(
            Client.therapist_id == therapist_id,
            CheckIn.due_at >= now - _DAY - _LONGEST_WINDOW,
            CheckIn.due_at <= now,
            CheckIn.status.in_(("confirmed", "missed", "skipped")),
            CheckIn.updated_at >= now - _DAY,
            CheckIn.updated_at <= now,
        )
        .group_by(CheckIn.status)
    )


def digest_counts(therapist_id: str, now: datetime) -> DigestCounts:
    """Count open alerts and the last 24 hours' confirmations, misses and skips."""
    closed = {status: n for status, n in db.session.execute(closed_counts_stmt(therapist_id, now))}
    open_alerts = db.session.scalar(
        select(func.count(Alert.id)).where(
            Alert.therapist_id == therapist_id, Alert.status == "open"
        )
    )
    return DigestCounts(
        int(open_alerts or 0),
        closed.get("confirmed", 0),
        closed.get("missed", 0),
        closed.get("skipped", 0),
    )


def send_digests(now: datetime) -> int:
    """Queue each therapist's digest at the first sweep after 08:00 in their zone; return count.

    A therapist's zone is the one most of their clients live in (America/New_York when they
    have none). Nothing is sent to a therapist with no phone, and nothing on a day with
    nothing to report. Skips are counted but the current template has no place for them.
    """
    queued = 0
    therapists = db.session.scalars(
        select(Therapist).where(Therapist.active.is_(True), Therapist.phone.is_not(None))
    ).all()
    for therapist in therapists:
        zone = therapist_zone(therapist.id)
        local = now.astimezone(get_zone(zone))
        today = local.date().isoformat()
        if therapist.digest_sent_on == today or local.time() < DIGEST_FROM:
            continue
        if is_quiet(now, zone, STAFF_QUIET_HOURS):
            continue  # the scheduler was down all day: no digest at night
        claimed = db.session.execute(
            update(Therapist)
            .where(
                Therapist.id == therapist.id,
                or_(Therapist.digest_sent_on.is_(None), Therapist.digest_sent_on != today),
            )
            .values(digest_sent_on=today)
            .execution_options(synchronize_session=False)
        )
        if claimed.rowcount != 1:
            continue
        counts = digest_counts(therapist.id, now)
        logger.info("digest for therapist %s: %s", therapist.id, counts)
        if counts.empty():
            continue
        enqueue_message(
            practice_id=therapist.practice_id,
            to=therapist.phone,
            body=render(
                "digest_therapist",
                "en",
                confirmed=counts.confirmed,
                missed=counts.missed,
                alerts=counts.open_alerts,
                link=dashboard_link(),
            ),
            purpose="digest",
            template="digest_therapist",
            idempotency_key=f"digest:{therapist.id}:{today}",
            now=now,
            therapist_id=therapist.id,
        )
        queued += 1
    return queued
