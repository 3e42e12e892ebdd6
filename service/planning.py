"""Planning: expand meeting plans and commitments into check-in rows ahead of time."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service.db import db, new_id
from service.escalation import occurrence_label
from service.events import append_event
from service.models import CheckIn, Client, Commitment, Meeting, MeetingPlan, SupportContact
from service.quiet_hours import QuietHours, close_time, defer_question, place_reminder
from service.schedule import (
    expand,
    expand_weekly_meeting,
    get_zone,
    parse_local_time,
    resolve_local,
)
from service.serialize import iso

logger = logging.getLogger(__name__)

Source = MeetingPlan | Commitment


@dataclass(frozen=True)
class Slot:
    """One check-in a source should have: when it happens, is asked, closes, is reminded."""

    occurrence: datetime
    event_at: datetime
    due_at: datetime
    closes_at: datetime
    reminder_at: datetime | None
    verifier_contact_id: str | None


def load_source(source_type: str, source_id: str) -> Source | None:
    """Return the meeting plan or commitment a check-in comes from."""
    model = MeetingPlan if source_type == "meeting_plan" else Commitment
    return db.session.get(model, source_id)


def source_type_of(source: Source) -> str:
    """Return "meeting_plan" or "commitment" for a source row."""
    return "meeting_plan" if isinstance(source, MeetingPlan) else "commitment"


def not_plannable(source: Source, client: Client) -> str | None:
    """Return why a source plans nothing at all (archived, inactive …), or None."""
    if client.status == "discharged":
        return "client_discharged"
    if source.archived_at is not None:
        return "archived"
    if isinstance(source, Commitment):
        if not source.active:
            return "inactive"
        if source.kind == "meeting_quota" or not source.time:
            return "no_prompts"
        return None
    meeting = source.meeting
    if not meeting.active or meeting.day is None or not meeting.time:
        return "meeting_inactive"
    return None


def paused_reason(source: Source, client: Client, occurrence: datetime) -> str | None:
    """Return why one occurrence is paused, or None; `paused_until` is the first day back."""
    day = occurrence.date()
    if source.paused_until is not None and day < source.paused_until:
        return "paused"
    if client.status == "paused" and (client.paused_until is None or day < client.paused_until):
        return "client_paused"
    return None


def quiet_hours_of(client: Client) -> QuietHours:
    """Return the client's quiet hours (a contact verifier shares them, in their own zone)."""
    return QuietHours.from_strings(client.quiet_start, client.quiet_end)


def verifier_zone(client: Client, contact: SupportContact | None) -> str:
    """Return the zone a verifier lives in: the contact's own, else the client's."""
    return (contact.timezone if contact is not None else None) or client.timezone


def desired_slots(source: Source, client: Client, lo: datetime, hi: datetime) -> list[Slot]:
    """List the check-ins a source should have for occurrences in [lo, hi)."""
    if not_plannable(source, client) is not None or hi <= lo:
        return []
    quiet = quiet_hours_of(client)
    contact = (
        db.session.get(SupportContact, source.verifier_contact_id)
        if source.verifier_contact_id
        else None
    )
    zone = verifier_zone(client, contact)
    if isinstance(source, MeetingPlan):
        meeting: Meeting = source.meeting
        occurrences = expand_weekly_meeting(
            meeting.day, parse_local_time(meeting.time), meeting.timezone, source.starts_on, lo, hi
        )
    else:
        occurrences = expand(
            source.rrule, parse_local_time(source.time), client.timezone, source.starts_on, lo, hi
        )
    slots = []
    for occ in occurrences:
        if occ.at < source.created_at or paused_reason(source, client, occ.local):
            continue
        if isinstance(source, MeetingPlan):
            natural_due = _meeting_end(source.meeting, occ.local, occ.at)
            reminder_at = None
            if source.remind_minutes_before > 0:
                wanted = occ.at - timedelta(minutes=source.remind_minutes_before)
                reminder_at = place_reminder(wanted, occ.at, client.timezone, quiet)
            due_at = defer_question(natural_due, zone, quiet)
            closes_at = close_time(due_at, confirm_window_hours=source.confirm_window_hours)
        else:
            # Commitments get no reminder: the question at the promised time is the nudge,
            # and a second text a day would eat into SMS_DAILY_CAP.
            reminder_at = None
            due_at = defer_question(occ.at, zone, quiet)
            closes_at = close_time(due_at, grace_minutes=source.grace_minutes)
        slots.append(
            Slot(occ.local, occ.at, due_at, closes_at, reminder_at, source.verifier_contact_id)
        )
    return slots


def _meeting_end(meeting: Meeting, local_start: datetime, start: datetime) -> datetime:
    """Return when one occurrence of a meeting ends (end_time, else an hour after it starts)."""
    if not meeting.end_time:
        return start + timedelta(hours=1)
    end_local = datetime.combine(local_start.date(), parse_local_time(meeting.end_time))
    if end_local <= local_start:
        end_local += timedelta(days=1)  # ends after midnight
    return resolve_local(end_local, get_zone(meeting.timezone))


def sync_source(
    source: Source, client: Client, lo: datetime, hi: datetime, *, now: datetime
) -> int:
    """Make the source's check-ins in [lo, hi) match its schedule; return how many were created.

    Existing rows are revised only while they are still in the future and unanswered:
    moved or dropped occurrences are cancelled, cancelled ones wanted again are revived.
    """
    source_type = source_type_of(source)
    slots = {slot.occurrence: slot for slot in desired_slots(source, client, lo, hi)}
    existing = {
        row.occurrence: row
        for row in db.session.scalars(
            select(CheckIn).where(
                CheckIn.source_type == source_type,
                CheckIn.source_id == source.id,
                CheckIn.event_at >= lo,
                CheckIn.event_at < hi,
            )
        )
    }
    reason = not_plannable(source, client)
    for occurrence, row in existing.items():
        if row.event_at <= now or row.status not in ("scheduled", "cancelled"):
            continue  # the past and the answered are history
        slot = slots.get(occurrence)
        if slot is None and row.status == "scheduled":
            why = reason or paused_reason(source, client, occurrence) or "rescheduled"
            _cancel(row, why, now)
        elif slot is not None:
            _revise(row, slot, now)
    created = 0
    for occurrence, slot in slots.items():
        if occurrence not in existing and _insert(source, source_type, slot, now):
            created += 1
    return created


def _cancel(row: CheckIn, why: str, now: datetime) -> None:
    row.status = "cancelled"
    row.skip_reason = why
    row.updated_at = now
    checkin_event("checkin.cancelled", row, now, {"reason": why})


def _revise(row: CheckIn, slot: Slot, now: datetime) -> None:
    revived = row.status == "cancelled"
    changes = {
        "event_at": slot.event_at,
        "due_at": slot.due_at,
        "closes_at": slot.closes_at,
        "verifier_contact_id": slot.verifier_contact_id,
    }
    if row.reminder_sent_at is None:
        changes["reminder_at"] = slot.reminder_at
    if revived:
        changes.update(status="scheduled", skip_reason=None, prompt_code=None)
    if all(getattr(row, key) == value for key, value in changes.items()):
        return
    for key, value in changes.items():
        setattr(row, key, value)
    row.updated_at = now
    if revived:
        checkin_event("checkin.planned", row, now, {"revived": True, "due_at": iso(slot.due_at)})


def _insert(source: Source, source_type: str, slot: Slot, now: datetime) -> bool:
    row = CheckIn(
        id=new_id("ci"),
        practice_id=source.practice_id,
        client_id=source.client_id,
        source_type=source_type,
        source_id=source.id,
        occurrence=slot.occurrence,
        event_at=slot.event_at,
        due_at=slot.due_at,
        closes_at=slot.closes_at,
        reminder_at=slot.reminder_at,
        verifier_contact_id=slot.verifier_contact_id,
        status="scheduled",
        created_at=now,
        updated_at=now,
    )
    # A savepoint per row: a concurrent planner that wrote the same occurrence costs this
    # row only; the unique (source, occurrence) key makes planning idempotent.
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        logger.info("planning: %s %s already planned by another writer", source_type, source.id)
        return False
    checkin_event("checkin.planned", row, now, {"due_at": iso(slot.due_at)})
    return True


def checkin_event(kind: str, row: CheckIn, now: datetime, extra: dict[str, object]) -> None:
    """Append a check-in event naming its source and local occurrence."""
    append_event(
        kind,
        now=now,
        practice_id=row.practice_id,
        client_id=row.client_id,
        subject_type="checkin",
        subject_id=row.id,
        payload={
            "source_type": row.source_type,
            "source_id": row.source_id,
            "occurrence": occurrence_label(row.occurrence),
            **extra,
        },
    )
