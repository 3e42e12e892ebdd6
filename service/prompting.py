"""Reminders and prompts: decide who may be texted now, claim the check-in, queue the text."""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, text, update

from service import consent
from service.checkins import open_prompts_for
from service.db import db
from service.models import CheckIn, Client, Commitment, MeetingPlan, SupportContact
from service.notifications.grammar import new_code
from service.notifications.templates import render
from service.outbox import enqueue_message
from service.phones import mask
from service.planning import (
    checkin_event,
    load_source,
    not_plannable,
    paused_reason,
    quiet_hours_of,
    verifier_zone,
)
from service.quiet_hours import close_time, defer_question, is_quiet, is_stale
from service.schedule import get_zone

logger = logging.getLogger(__name__)

BATCH = 500
# Template vocabulary for what a commitment asks the client to do.
_KIND_ACTION = {
    "sponsor_call": "call",
    "step_work": "step_work",
    "practice": "practice",
    "homework": "homework",
    "custom": "checkin",
}
_rng = random.SystemRandom()
# A check-in ready to be asked, with what its text needs.
Ready = tuple[CheckIn, Client, MeetingPlan | Commitment, SupportContact | None]


def client_block_reason(
    client: Client, source: MeetingPlan | Commitment, row: CheckIn
) -> str | None:
    """Return why nobody may be asked about this check-in (paused, discharged …), or None."""
    return not_plannable(source, client) or paused_reason(source, client, row.occurrence)


def recipient_block_reason(subject: Client | SupportContact, today: date) -> str | None:
    """Return why this person may not be texted a check-in question on `today`, or None."""
    if isinstance(subject, SupportContact):
        if subject.archived_at is not None:
            return "verifier_archived"
        if not subject.can_confirm:
            return "verifier_cannot_confirm"
    if consent.is_opted_out(subject.phone):
        return "opted_out"
    if not consent.sms_consent_granted(subject):
        return "no_sms_consent"
    if isinstance(subject, SupportContact) and not consent.disclosure_allows(
        subject, "checkins", today
    ):
        return "no_disclosure_consent"
    return None


def due_reminders_stmt(now: datetime) -> Select[tuple[CheckIn]]:
    """Select the reminders due by `now`, locking them (SKIP LOCKED) for this sweep."""
    return _due(
        CheckIn.status == "scheduled",
        CheckIn.reminder_sent_at.is_(None),
        CheckIn.reminder_at <= now,
        order=CheckIn.reminder_at,
    )


def due_prompts_stmt(now: datetime) -> Select[tuple[CheckIn]]:
    """Select the check-ins whose question is due by `now`, locking them (SKIP LOCKED)."""
    return _due(
        CheckIn.status == "scheduled",
        CheckIn.skip_reason.is_(None),
        CheckIn.due_at <= now,
        order=CheckIn.due_at,
    )


def _due(*criteria: Any, order: Any) -> Select[tuple[CheckIn]]:
    # SKIP LOCKED: a second scheduler process takes other rows instead of waiting on these.
    return (
        select(CheckIn)
        .where(*criteria)
        .order_by(order)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    )


def send_reminders(now: datetime, *, stale_minutes: int) -> int:
    """Queue the meeting reminders that are due; drop stale or no-longer-allowed ones."""
    rows = db.session.scalars(due_reminders_stmt(now)).all()
    queued = 0
    for row in rows:
        client = db.session.get(Client, row.client_id)
        source = load_source(row.source_type, row.source_id)
        why = None
        if client is None or source is None:
            why = "gone"
        elif is_stale(row.reminder_at, now, stale_minutes):
            why = "stale"
        elif is_quiet(now, client.timezone, quiet_hours_of(client)):
            why = "quiet_hours"
        else:
            why = client_block_reason(client, source, row) or recipient_block_reason(
                client, _today(client.timezone, now)
            )
        if why is not None:
            logger.info("reminder for check-in %s dropped: %s", row.id, why)
            _set_if(row, {"reminder_at": None}, CheckIn.reminder_sent_at.is_(None))
            continue
        if not _set_if(row, {"reminder_sent_at": now}, CheckIn.reminder_sent_at.is_(None),
                       CheckIn.status == "scheduled"):  # fmt: skip
            continue
        enqueue_message(
            practice_id=row.practice_id,
            to=client.phone,
            body=_reminder_body(client, row, now),
            purpose="reminder",
            template="reminder_meeting",
            idempotency_key=f"reminder:{row.id}",
            now=now,
            client_id=client.id,
            checkin_id=row.id,
            expires_at=row.reminder_at + timedelta(minutes=stale_minutes),
        )
        queued += 1
    return queued


def _today(zone: str, now: datetime) -> date:
    """Return the recipient's local date: disclosure consents are dated, and so is `now`."""
    return now.astimezone(get_zone(zone)).date()


def _reminder_body(client: Client, row: CheckIn, now: datetime) -> str:
    tz = get_zone(client.timezone)
    day = "today" if row.event_at.astimezone(tz).date() == now.astimezone(tz).date() else "tomorrow"
    return render("reminder_meeting", client.language, time=row.occurrence.time(), day=day)


def send_prompts(now: datetime, *, stale_minutes: int) -> int:
    """Ask the verifiers of the due check-ins; mark those that cannot be asked for skipping."""
    rows = db.session.scalars(due_prompts_stmt(now)).all()
    ready: dict[str, list[Ready]] = defaultdict(list)
    for row in rows:
        client = db.session.get(Client, row.client_id)
        source = load_source(row.source_type, row.source_id)
        if client is None or source is None:
            _set_if(row, {"skip_reason": "gone"}, CheckIn.status == "scheduled")
            continue
        contact = (
            db.session.get(SupportContact, row.verifier_contact_id)
            if row.verifier_contact_id
            else None
        )
        why = client_block_reason(client, source, row)
        if why is None and is_stale(row.due_at, now, stale_minutes):
            why = "stale"
        zone = verifier_zone(client, contact)
        why = why or recipient_block_reason(contact or client, _today(zone, now))
        if why is not None:
            logger.info("prompt for check-in %s not sent: %s", row.id, why)
            _set_if(row, {"skip_reason": why}, CheckIn.status == "scheduled",
                    CheckIn.skip_reason.is_(None))  # fmt: skip
            continue
        quiet = quiet_hours_of(client)
        if is_quiet(now, zone, quiet):
            # Quiet hours changed since planning: ask when they end, and close that much later.
            due = defer_question(now, zone, quiet)
            _set_if(row, {"due_at": due, "closes_at": _closes(source, due)},
                    CheckIn.status == "scheduled")  # fmt: skip
            continue
        ready[(contact or client).phone].append((row, client, source, contact))
    sent = 0
    for phone, group in ready.items():
        sent += _prompt_group(phone, group, now)
    return sent


def _prompt_group(phone: str, group: list[Ready], now: datetime) -> int:
    """Prompt one number's due check-ins, giving every open prompt a code if it has several."""
    if db.session.get_bind().dialect.name == "postgresql":
        # Two schedulers prompting the same sponsor at once must agree on the codes.
        db.session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:p))"), {"p": phone})
    already_open = open_prompts_for(phone, now)
    coded = len(already_open) + len(group) > 1
    taken = {row.prompt_code for row in already_open if row.prompt_code}
    if coded:
        for row in already_open:
            if not row.prompt_code:
                row.prompt_code = new_code(taken, _rng)
                taken.add(row.prompt_code)
    sent = 0
    for row, client, source, contact in group:
        code = new_code(taken, _rng) if coded else None
        values = {
            "status": "prompted",
            "prompted_at": now,
            "closes_at": _closes(source, now),
            "prompt_code": code,
            "updated_at": now,
        }
        if not _set_if(row, values, CheckIn.status == "scheduled", CheckIn.skip_reason.is_(None)):
            continue
        if code:
            taken.add(code)
        recipient = contact or client
        template, body = _prompt_text(row, client, source, contact, code)
        enqueue_message(
            practice_id=row.practice_id,
            to=phone,
            body=body,
            purpose="prompt",
            template=template,
            idempotency_key=f"prompt:{row.id}:{recipient.id}",
            now=now,
            client_id=client.id,
            contact_id=contact.id if contact else None,
            checkin_id=row.id,
            expires_at=row.closes_at,
        )
        checkin_event("checkin.prompted", row, now, {"verifier": contact.id if contact else "self"})
        logger.info("prompted check-in %s to %s", row.id, mask(phone))
        sent += 1
    return sent


def _closes(source: MeetingPlan | Commitment, sent_at: datetime) -> datetime:
    if isinstance(source, MeetingPlan):
        return close_time(sent_at, confirm_window_hours=source.confirm_window_hours)
    return close_time(sent_at, grace_minutes=source.grace_minutes)


def _prompt_text(
    row: CheckIn,
    client: Client,
    source: MeetingPlan | Commitment,
    contact: SupportContact | None,
    code: str | None,
) -> tuple[str, str]:
    """Return the template and body of the question, in the recipient's words."""
    if contact is not None:
        # A contact learns the client's initial only: the disclosure consent was checked.
        return "prompt_contact", render(
            "prompt_contact", "en", client_name=client.display_name, code=code
        )
    if isinstance(source, MeetingPlan):
        return "prompt_meeting_self", render(
            "prompt_meeting_self", client.language, time=row.occurrence.time(), code=code
        )
    return "prompt_commitment_self", render(
        "prompt_commitment_self",
        client.language,
        kind=_KIND_ACTION.get(source.kind, "checkin"),
        path=client.recovery_path,
        code=code,
    )


def _set_if(row: CheckIn, values: dict[str, Any], *conditions: Any) -> bool:
    """Apply `values` to the row only if it still meets `conditions` (the claim); report it."""
    result = db.session.execute(
        update(CheckIn)
        .where(CheckIn.id == row.id, *conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(row)
    return result.rowcount == 1
