"""A client's plan: meeting plans and commitments (create, change, pause, archive; re-plan)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select

from service import checkins, consent
from service.clients import local_today, require_open
from service.db import db, new_id
from service.errors import Conflict, Invalid
from service.events import append_event
from service.models import Client, Commitment, Meeting, MeetingPlan, SupportContact

logger = logging.getLogger(__name__)

PLAN_FIELDS = (
    "meeting_id", "verifier_contact_id", "remind_minutes_before", "confirm_window_hours",
    "escalate_after_misses", "starts_on", "paused_until",
)  # fmt: skip
COMMITMENT_FIELDS = (
    "kind", "title", "rrule", "time", "target", "verifier_contact_id", "grace_minutes",
    "escalate_after_misses", "notify_sponsor", "starts_on", "paused_until", "active",
)  # fmt: skip


def resolve_verifier(client: Client, verifier: str | None) -> str | None:
    """Return the contact id for a verifier ("self" → None) or raise Invalid("verifier")."""
    if verifier in (None, "self"):
        return None
    contact = db.session.get(SupportContact, verifier)
    if contact is None or contact.client_id != client.id:
        raise Invalid("verifier", 'not a contact of this client; use "self" or a contact id')
    if contact.archived_at is not None:
        raise Invalid("verifier", "this contact is archived")
    if not contact.can_confirm:
        raise Invalid("verifier", "this contact cannot confirm check-ins (can_confirm is false)")
    if not consent.sms_consent_granted(contact):
        raise Invalid("verifier", "this contact has not agreed to receive texts")
    return contact.id


def _meeting(client: Client, meeting_id: str) -> Meeting:
    meeting = db.session.get(Meeting, meeting_id)
    if meeting is None or meeting.practice_id != client.practice_id:
        raise Invalid("meeting_id", "no meeting with this id in your practice's directory")
    if meeting.day is None or meeting.time is None:
        raise Invalid("meeting_id", "this meeting has no day or time to plan around")
    if not meeting.active:
        raise Invalid("meeting_id", "this meeting is no longer listed")
    return meeting


def _prepare(client: Client, values: dict[str, Any], current: Any, now: datetime) -> dict[str, Any]:
    """Turn API values into columns: resolve the verifier and default starts_on to today."""
    prepared = dict(values)
    verifier = prepared.pop("verifier", "self")
    if current is None or (verifier if verifier != "self" else None) != current.verifier_contact_id:
        prepared["verifier_contact_id"] = resolve_verifier(client, verifier)
    else:
        prepared["verifier_contact_id"] = current.verifier_contact_id
    if prepared.get("starts_on") is None:
        prepared["starts_on"] = (
            current.starts_on if current is not None and "starts_on" not in values
            else local_today(client.timezone, now)
        )  # fmt: skip
    return prepared


def create_plan(client: Client, *, values: dict[str, Any], now: datetime) -> MeetingPlan:
    """Put a directory meeting on the client's plan."""
    require_open(client)
    prepared = _prepare(client, values, None, now)
    meeting = _meeting(client, prepared["meeting_id"])
    _refuse_duplicate(client, meeting.id, None)
    plan = MeetingPlan(
        id=new_id("mp"),
        practice_id=client.practice_id,
        client_id=client.id,
        created_at=now,
        updated_at=now,
        revision=0,
        **{key: prepared[key] for key in PLAN_FIELDS if key in prepared},
    )
    plan.meeting = meeting
    db.session.add(plan)
    db.session.flush()
    _changed("meeting_plan.created", client, plan.id, now, [])
    checkins.replan_source("meeting_plan", plan.id, now=now)
    return plan


def update_plan(
    plan: MeetingPlan, client: Client, *, values: dict[str, Any], now: datetime
) -> list[str]:
    """Apply changed fields of a meeting plan and re-plan its check-ins."""
    if plan.archived_at is not None:
        raise Conflict("this meeting plan is archived")
    prepared = _prepare(client, values, plan, now)
    if prepared["meeting_id"] != plan.meeting_id:
        plan.meeting = _meeting(client, prepared["meeting_id"])
        _refuse_duplicate(client, prepared["meeting_id"], plan.id)
    changed = _apply(plan, prepared, PLAN_FIELDS)
    if changed:
        _changed("meeting_plan.updated", client, plan.id, now, changed)
        checkins.replan_source("meeting_plan", plan.id, now=now)
    return changed


def _refuse_duplicate(client: Client, meeting_id: str, plan_id: str | None) -> None:
    stmt = select(MeetingPlan.id).where(
        MeetingPlan.client_id == client.id,
        MeetingPlan.meeting_id == meeting_id,
        MeetingPlan.archived_at.is_(None),
    )
    if plan_id is not None:
        stmt = stmt.where(MeetingPlan.id != plan_id)
    existing = db.session.scalar(stmt)
    if existing:
        raise Conflict(f"this meeting is already on the client's plan ({existing})")


def archive_plan(plan: MeetingPlan, client: Client, *, now: datetime) -> bool:
    """Archive a meeting plan; its future check-ins are cancelled by the re-plan."""
    if plan.archived_at is not None:
        return False
    plan.archived_at = now
    plan.updated_at = now
    plan.revision = (plan.revision or 0) + 1
    _changed("meeting_plan.archived", client, plan.id, now, [])
    checkins.replan_source("meeting_plan", plan.id, now=now)
    return True


def create_commitment(client: Client, *, values: dict[str, Any], now: datetime) -> Commitment:
    """Add a commitment to the client's plan."""
    require_open(client)
    prepared = _prepare(client, values, None, now)
    commitment = Commitment(
        id=new_id("cm"),
        practice_id=client.practice_id,
        client_id=client.id,
        created_at=now,
        updated_at=now,
        revision=0,
        **{key: prepared[key] for key in COMMITMENT_FIELDS if key in prepared},
    )
    db.session.add(commitment)
    db.session.flush()
    _changed("commitment.created", client, commitment.id, now, [])
    checkins.replan_source("commitment", commitment.id, now=now)
    return commitment


def update_commitment(
    commitment: Commitment, client: Client, *, values: dict[str, Any], now: datetime
) -> list[str]:
    """Apply changed fields of a commitment and re-plan its check-ins."""
    if commitment.archived_at is not None:
        raise Conflict("this commitment is archived")
    prepared = _prepare(client, values, commitment, now)
    changed = _apply(commitment, prepared, COMMITMENT_FIELDS)
    if changed:
        if {"kind", "rrule"}.intersection(changed):
            # A new schedule is a new quota period; do not carry an old evaluation over.
            commitment.quota_evaluated_week = None
        _changed("commitment.updated", client, commitment.id, now, changed)
        checkins.replan_source("commitment", commitment.id, now=now)
    return changed


def archive_commitment(commitment: Commitment, client: Client, *, now: datetime) -> bool:
    """Archive a commitment; its future check-ins are cancelled by the re-plan."""
    if commitment.archived_at is not None:
        return False
    commitment.archived_at = now
    commitment.active = False
    commitment.updated_at = now
    commitment.revision = (commitment.revision or 0) + 1
    _changed("commitment.archived", client, commitment.id, now, [])
    checkins.replan_source("commitment", commitment.id, now=now)
    return True


def _apply(row: Any, prepared: dict[str, Any], fields: tuple[str, ...]) -> list[str]:
    changed = [key for key in fields if key in prepared and getattr(row, key) != prepared[key]]
    for key in changed:
        setattr(row, key, prepared[key])
    if changed:
        row.revision = (row.revision or 0) + 1
    return changed


def _changed(kind: str, client: Client, source_id: str, now: datetime, fields: list[str]) -> None:
    subject_type = kind.split(".", 1)[0]
    row_model = MeetingPlan if subject_type == "meeting_plan" else Commitment
    row = db.session.get(row_model, source_id)
    if row is not None and fields:
        row.updated_at = now
    append_event(
        kind, now=now, practice_id=client.practice_id, client_id=client.id,
        subject_type=subject_type, subject_id=source_id,
        payload={"fields": fields} if fields else {},
    )  # fmt: skip
