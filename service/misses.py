"""Closing check-ins: prompted ones whose window ended become missed (or skipped), with escalation."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm.attributes import set_committed_value

from service import alerts, consent
from service.db import db
from service.escalation import close_outcome, consecutive_misses, occurrence_label, should_alert
from service.events import append_events
from service.models import CheckIn, Client, Commitment, MeetingPlan, Message, SupportContact
from service.notifications.templates import render
from service.outbox import enqueue_message
from service.planning import checkin_event_values, quiet_hours_of
from service.quiet_hours import defer_question
from service.schedule import get_zone

logger = logging.getLogger(__name__)

BATCH = 500
# How much of a source's history is read to count a run of misses (thresholds are <= 50).
_HISTORY = 200
# A sponsor's "missed a check-in" notice is worth sending for this long, then dropped.
_NOTICE_LIFETIME = timedelta(hours=12)


def closing_stmt(now: datetime) -> Select[tuple[CheckIn]]:
    """Select the prompted check-ins whose window has closed, locking them (SKIP LOCKED)."""
    return _claim(CheckIn.status == "prompted", CheckIn.closes_at <= now)


def unasked_stmt(now: datetime) -> Select[tuple[CheckIn]]:
    """Select the never-asked check-ins whose window has passed, locking them."""
    # due_at <= closes_at always, so the due_at bound lets the partial index do the work.
    return _claim(CheckIn.status == "scheduled", CheckIn.due_at <= now, CheckIn.closes_at <= now)


def _claim(*criteria: Any) -> Select[tuple[CheckIn]]:
    return (
        select(CheckIn)
        .where(*criteria)
        .order_by(CheckIn.closes_at)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    )


def _move_all(rows: list[CheckIn], from_status: str, values: dict[str, Any]) -> list[CheckIn]:
    """Move many check-ins that are still `from_status` in one UPDATE; return those that won.

    The rows' loaded attributes are brought up to date without another round trip (they
    are the only columns this statement changes).
    """
    if not rows:
        return []
    won = set(
        db.session.scalars(
            update(CheckIn)
            .where(CheckIn.id.in_([row.id for row in rows]), CheckIn.status == from_status)
            .values(**values)
            .returning(CheckIn.id)
            .execution_options(synchronize_session=False)
        ).all()
    )
    moved = [row for row in rows if row.id in won]
    for row in moved:
        for key, value in values.items():
            set_committed_value(row, key, value)
    return moved


def _window(source: MeetingPlan | Commitment | None) -> timedelta:
    if isinstance(source, MeetingPlan):
        return timedelta(hours=source.confirm_window_hours)
    if isinstance(source, Commitment):
        return timedelta(minutes=source.grace_minutes)
    return timedelta(0)


def _sources(rows: list[CheckIn]) -> dict[tuple[str, str], MeetingPlan | Commitment]:
    """Load the batch's meeting plans and commitments, two queries at most."""
    found: dict[tuple[str, str], MeetingPlan | Commitment] = {}
    for source_type, model in (("meeting_plan", MeetingPlan), ("commitment", Commitment)):
        ids = {row.source_id for row in rows if row.source_type == source_type}
        if ids:
            for source in db.session.scalars(select(model).where(model.id.in_(ids))):
                found[(source_type, source.id)] = source
    return found


def _latest_prompts(rows: list[CheckIn]) -> dict[str, tuple[str, datetime | None]]:
    """Each check-in's newest prompt text (status, sent_at), in one query."""
    latest: dict[str, tuple[str, datetime | None]] = {}
    if not rows:
        return latest
    result = db.session.execute(
        select(Message.checkin_id, Message.status, Message.sent_at)
        .where(Message.checkin_id.in_([row.id for row in rows]), Message.purpose == "prompt")
        .order_by(Message.created_at, Message.id)
    )
    for checkin_id, status, sent_at in result:
        latest[checkin_id] = (status, sent_at)  # ordered oldest first: the newest stays
    return latest


def close_prompted(now: datetime) -> int:
    """Close prompted check-ins whose window ended: missed, or skipped if never delivered.

    A batch costs a fixed number of statements (claim, sources, prompts, one UPDATE per
    outcome, one INSERT of events); only a miss adds its escalation's history query.
    """
    rows = db.session.scalars(closing_stmt(now)).all()
    sources = _sources(rows)
    prompts = _latest_prompts(rows)
    outcomes: dict[str, list[CheckIn]] = {}
    for row in rows:
        status, sent_at = prompts.get(row.id, (None, None))
        outcome, new_close = close_outcome(
            message_status=status,
            sent_at=sent_at,
            window=_window(sources.get((row.source_type, row.source_id))),
            closes_at=row.closes_at,
            now=now,
        )
        if outcome == "extend":
            row.closes_at = new_close
        else:
            outcomes.setdefault(outcome, []).append(row)
    db.session.flush()  # the extensions, before the moves below
    missed = _move_all(
        outcomes.pop("missed", []), "prompted", {"status": "missed", "updated_at": now}
    )
    events = [checkin_event_values("checkin.missed", row, now, {}) for row in missed]
    closed = len(missed)
    for reason, batch in outcomes.items():
        values = {"status": "skipped", "skip_reason": reason, "updated_at": now}
        skipped = _move_all(batch, "prompted", values)
        events += [
            checkin_event_values("checkin.skipped", row, now, {"reason": reason}) for row in skipped
        ]
        closed += len(skipped)
    append_events(events)
    for row in missed:
        escalate_miss(row, sources.get((row.source_type, row.source_id)), now=now)
    return closed


def skip_unasked(now: datetime) -> int:
    """End as skipped the check-ins that were never asked and whose window has passed."""
    by_reason: dict[str, list[CheckIn]] = {}
    for row in db.session.scalars(unasked_stmt(now)).all():
        by_reason.setdefault(row.skip_reason or "stale", []).append(row)
    events: list[dict[str, object]] = []
    for reason, batch in by_reason.items():
        values = {"status": "skipped", "skip_reason": reason, "updated_at": now}
        skipped = _move_all(batch, "scheduled", values)
        events += [
            checkin_event_values("checkin.skipped", row, now, {"reason": reason}) for row in skipped
        ]
    append_events(events)
    return len(events)


def escalate_miss(row: CheckIn, source: MeetingPlan | Commitment | None, *, now: datetime) -> None:
    """Raise a `missed` alert when this miss makes the source's run reach its threshold."""
    if source is None:
        return
    statuses = db.session.scalars(
        select(CheckIn.status)
        .where(
            CheckIn.source_type == row.source_type,
            CheckIn.source_id == row.source_id,
            CheckIn.event_at <= row.event_at,
        )
        .order_by(CheckIn.event_at.desc())
        .limit(_HISTORY)
    ).all()
    run = consecutive_misses(statuses)
    if not should_alert(run, source.escalate_after_misses):
        return
    client = db.session.get(Client, row.client_id)
    if client is None or client.status == "discharged":
        return  # asked before the discharge; the therapist has closed the case
    alert = alerts.raise_alert(
        kind="missed",
        client=client,
        source_type=row.source_type,
        source_id=row.source_id,
        occurrence=occurrence_label(row.occurrence),
        detail={"checkin_id": row.id, "consecutive": run},
        now=now,
    )
    if alert is not None and isinstance(source, Commitment) and source.notify_sponsor:
        notify_sponsor(row, client, now=now)


def notify_sponsor(row: CheckIn, client: Client, *, now: datetime) -> bool:
    """Tell the client's first consenting sponsor about the miss (scope `missed`), once."""
    sponsors = db.session.scalars(
        select(SupportContact)
        .where(
            SupportContact.client_id == client.id,
            SupportContact.role == "sponsor",
            SupportContact.archived_at.is_(None),
        )
        .order_by(SupportContact.id)
    ).all()
    for sponsor in sponsors:
        zone = sponsor.timezone or client.timezone
        today = now.astimezone(get_zone(zone)).date()
        if (
            consent.is_opted_out(sponsor.phone)
            or not consent.sms_consent_granted(sponsor)
            or not consent.disclosure_allows(sponsor, "missed", today)
        ):
            continue
        send_after = defer_question(now, zone, quiet_hours_of(client))
        enqueue_message(
            practice_id=client.practice_id,
            to=sponsor.phone,
            body=render("miss_notice_contact", "en", client_name=client.display_name),
            purpose="alert",
            template="miss_notice_contact",
            idempotency_key=f"miss_notice:{row.id}:{sponsor.id}",
            now=now,
            client_id=client.id,
            contact_id=sponsor.id,
            checkin_id=row.id,
            send_after=send_after,
            expires_at=send_after + _NOTICE_LIFETIME,
        )
        return True
    return False


def detect_misses_and_skips(now: datetime) -> int:
    """Close every check-in whose time is up; return how many ended missed or skipped."""
    return close_prompted(now) + skip_unasked(now)
