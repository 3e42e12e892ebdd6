"""Support networks: a client's sponsors, peers and family (create, change, archive)."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from service import checkins, consent
from service.clients import local_today, require_open
from service.db import db, new_id
from service.errors import Conflict
from service.events import append_event
from service.models import Client, Commitment, MeetingPlan, SupportContact

logger = logging.getLogger(__name__)

WRITABLE = ("display_name", "role", "phone", "timezone", "can_confirm")
# Changes that decide whether and where a verifier's prompts go.
_VERIFIER_FIELDS = frozenset({"phone", "can_confirm", "timezone"})


def create_contact(
    client: Client,
    *,
    values: dict[str, Any],
    sms_consent: dict[str, Any],
    disclosure: dict[str, Any] | None,
    recorded_by: str | None,
    now: datetime,
) -> SupportContact:
    """Add a person to the client's network, with their consents when given."""
    require_open(client)
    contact = SupportContact(
        id=new_id("ct"),
        practice_id=client.practice_id,
        client_id=client.id,
        created_at=now,
        updated_at=now,
        **{key: values[key] for key in WRITABLE if key in values},
    )
    contact.client = client
    db.session.add(contact)
    db.session.flush()
    if sms_consent.get("granted"):
        consent.record_sms_consent(
            practice_id=client.practice_id,
            subject=contact,
            granted=True,
            method=sms_consent.get("method"),
            recorded_by=recorded_by,
            now=now,
        )
    if disclosure is not None:
        consent.record_disclosure_consent(
            contact=contact, recorded_by=recorded_by, now=now, **disclosure
        )
    append_event(
        "contact.created", now=now, practice_id=client.practice_id, client_id=client.id,
        subject_type="contact", subject_id=contact.id, payload={"role": contact.role},
    )  # fmt: skip
    return contact


def update_contact(
    contact: SupportContact,
    *,
    values: dict[str, Any],
    sms_consent: dict[str, Any] | None,
    disclosure: dict[str, Any] | None | bool,
    recorded_by: str | None,
    now: datetime,
) -> list[str]:
    """Apply changed fields and, when sent, consent changes (`disclosure=False`: not sent)."""
    if contact.archived_at is not None:
        raise Conflict("this contact is archived")
    changed = [key for key in WRITABLE if key in values and getattr(contact, key) != values[key]]
    for key in changed:
        setattr(contact, key, values[key])
    if sms_consent is not None and consent.set_sms_consent(
        subject=contact,
        granted=bool(sms_consent.get("granted")),
        method=sms_consent.get("method"),
        recorded_by=recorded_by,
        now=now,
    ):
        changed.append("sms_consent")
    if disclosure is not False and _apply_disclosure(contact, disclosure, recorded_by, now):
        changed.append("disclosure_consent")
    if not changed:
        return []
    contact.updated_at = now
    append_event(
        "contact.updated", now=now, practice_id=contact.practice_id, client_id=contact.client_id,
        subject_type="contact", subject_id=contact.id, payload={"fields": changed},
    )  # fmt: skip
    if _VERIFIER_FIELDS.intersection(changed) or "sms_consent" in changed:
        for source_type, source_id in verified_sources(contact):
            checkins.replan_source(source_type, source_id, now=now)
    return changed


def _apply_disclosure(
    contact: SupportContact, wanted: dict[str, Any] | None, recorded_by: str | None, now: datetime
) -> bool:
    latest = consent.latest_disclosure(contact)
    current = latest if latest is not None and latest.revoked_at is None else None
    if wanted is None:
        return (
            consent.revoke_disclosure_consent(contact=contact, recorded_by=recorded_by, now=now)
            is not None
        )
    if current is not None and _same_disclosure(current, wanted):
        return False
    consent.record_disclosure_consent(contact=contact, recorded_by=recorded_by, now=now, **wanted)
    return True


def _same_disclosure(row: Any, wanted: dict[str, Any]) -> bool:
    return (
        row.granted_on == wanted["granted_on"]
        and row.expires_on == wanted.get("expires_on")
        and sorted(row.scope or []) == sorted(set(wanted["scope"]))
        and row.purpose == wanted.get("purpose")
    )


def verified_sources(contact: SupportContact) -> list[tuple[str, str]]:
    """Return the live meeting plans and commitments this contact verifies."""
    plans = db.session.scalars(
        select(MeetingPlan.id).where(
            MeetingPlan.verifier_contact_id == contact.id, MeetingPlan.archived_at.is_(None)
        )
    )
    commitments = db.session.scalars(
        select(Commitment.id).where(
            Commitment.verifier_contact_id == contact.id, Commitment.archived_at.is_(None)
        )
    )
    return [("meeting_plan", pid) for pid in plans] + [("commitment", cid) for cid in commitments]


def archive_contact(contact: SupportContact, *, now: datetime) -> list[tuple[str, str]]:
    """Archive a contact; plans they verified fall back to self-report. Return those plans."""
    if contact.archived_at is not None:
        return []
    sources = verified_sources(contact)
    contact.archived_at = now
    contact.updated_at = now
    for source_type, source_id in sources:
        model = MeetingPlan if source_type == "meeting_plan" else Commitment
        row = db.session.get(model, source_id)
        if row is not None:
            row.verifier_contact_id = None
            row.updated_at = now
            row.revision = (row.revision or 0) + 1
    append_event(
        "contact.archived", now=now, practice_id=contact.practice_id, client_id=contact.client_id,
        subject_type="contact", subject_id=contact.id,
        payload={"now_self_verified": [sid for _, sid in sources]},
    )  # fmt: skip
    for source_type, source_id in sources:
        checkins.replan_source(source_type, source_id, now=now)
    return sources


def record_disclosure(
    contact: SupportContact, *, values: dict[str, Any], recorded_by: str | None, now: datetime
) -> Any:
    """Record a new disclosure consent version for a live contact."""
    if contact.archived_at is not None:
        raise Conflict("this contact is archived")
    row = consent.record_disclosure_consent(
        contact=contact, recorded_by=recorded_by, now=now, **values
    )
    contact.updated_at = now
    return row


def revoke_disclosure(contact: SupportContact, *, recorded_by: str | None, now: datetime) -> Any:
    """Revoke the contact's current disclosure consent; Conflict when there is none."""
    row = consent.revoke_disclosure_consent(contact=contact, recorded_by=recorded_by, now=now)
    if row is None:
        raise Conflict("there is no disclosure consent in place to revoke")
    contact.updated_at = now
    return row


def as_of(client: Client, now: datetime) -> date:
    """Return the client's local date, which disclosure consent dates are judged against."""
    return local_today(client.timezone, now)
