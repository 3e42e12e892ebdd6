"""The right of access: a client's whole record as one JSON-ready document."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from sqlalchemy import inspect, select

from service import consent
from service.clients import local_today
from service.db import db
from service.models import (
    Activity,
    Alert,
    AuditEntry,
    CheckIn,
    Client,
    Commitment,
    Event,
    MeetingPlan,
    Message,
    SupportContact,
)
from service.serialize import (
    audit_dict,
    client_dict,
    contact_dict,
    disclosure_dict,
    iso,
    message_dict,
    sms_consent_dict,
)
from service.serialize_plans import activity_dict, commitment_dict, plan_dict

logger = logging.getLogger(__name__)

EXPORT_FORMAT = "steadfast.client-record/1"
SECTIONS = (
    "profile", "network", "consents", "meeting_plans", "commitments", "activities",
    "checkins", "alerts", "messages", "disclosures", "audit", "events",
)  # fmt: skip


def export_client(client: Client, *, now: datetime) -> dict[str, Any]:
    """Return everything Steadfast holds about one client, oldest first in every section."""
    today = local_today(client.timezone, now)
    contacts = _all(
        select(SupportContact).where(SupportContact.client_id == client.id), SupportContact.id
    )
    messages = _all(select(Message).where(Message.client_id == client.id), Message.id)
    return {
        "format": EXPORT_FORMAT,
        "exported_at": iso(now),
        "profile": client_dict(client),
        "network": [contact_dict(contact, on=today) for contact in contacts],
        "consents": _consents(client, contacts, today),
        "meeting_plans": [
            plan_dict(p)
            for p in _all(
                select(MeetingPlan).where(MeetingPlan.client_id == client.id), MeetingPlan.id
            )
        ],
        "commitments": [
            commitment_dict(c, client)
            for c in _all(
                select(Commitment).where(Commitment.client_id == client.id), Commitment.id
            )
        ],
        "activities": [
            activity_dict(a, client)
            for a in _all(select(Activity).where(Activity.client_id == client.id), Activity.id)
        ],
        "checkins": [
            _columns(c)
            for c in _all(select(CheckIn).where(CheckIn.client_id == client.id), CheckIn.due_at)
        ],
        "alerts": [
            _columns(a) for a in _all(select(Alert).where(Alert.client_id == client.id), Alert.id)
        ],
        "messages": [message_dict(m) for m in messages if m.contact_id is None],
        # What was told to the network about the client (42 CFR Part 2 accounting).
        "disclosures": [
            message_dict(m)
            for m in messages
            if m.contact_id is not None and m.direction == "outbound"
        ],
        "audit": [
            audit_dict(e)
            for e in _all(
                select(AuditEntry).where(AuditEntry.client_id == client.id), AuditEntry.id
            )
        ],
        "events": [
            _columns(e) for e in _all(select(Event).where(Event.client_id == client.id), Event.id)
        ],
    }


def _consents(client: Client, contacts: list[SupportContact], today: date) -> dict[str, Any]:
    sms = [sms_consent_dict(row) for row in consent.sms_consent_history(client)]
    disclosure: list[dict[str, Any]] = []
    for contact in contacts:
        sms.extend(sms_consent_dict(row) for row in consent.sms_consent_history(contact))
        disclosure.extend(
            disclosure_dict(row, on=today) for row in consent.disclosure_history(contact)
        )
    return {"sms": sms, "disclosure": disclosure}


def _all(stmt: Any, order: Any) -> list[Any]:
    return list(db.session.scalars(stmt.order_by(order)))


def _columns(row: Any) -> dict[str, Any]:
    """Return every column of a row, instants as ISO-8601 UTC and dates as YYYY-MM-DD."""
    out: dict[str, Any] = {}
    for attr in inspect(row).mapper.column_attrs:
        value = getattr(row, attr.key)
        if isinstance(value, datetime):
            value = iso(value) if value.tzinfo is not None else value.strftime("%Y-%m-%dT%H:%M")
        elif isinstance(value, date):
            value = value.isoformat()
        out[attr.key] = value
    return out
