"""Plain-dict views of records, shared by the JSON API and the record export."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from service import consent
from service.models import (
    AuditEntry,
    Client,
    DisclosureConsent,
    Message,
    SmsConsent,
    SupportContact,
)


def iso(value: datetime | None) -> str | None:
    """Format an aware instant as ISO-8601 UTC with Z."""
    if value is None:
        return None
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def day(value: date | None) -> str | None:
    """Format a date as YYYY-MM-DD."""
    return value.isoformat() if value is not None else None


_LOOKUP = object()  # "not prefetched: look it up"


def sms_consent_state(
    subject: Client | SupportContact, *, latest: Any = _LOOKUP, opted_out: bool | None = None
) -> dict[str, Any]:
    """Return the person's current SMS consent as the API shows it.

    `latest` (the person's latest consent version, or None) and `opted_out` may be passed
    when a list prefetched them for a whole page; otherwise they are looked up.
    """
    if latest is _LOOKUP:
        latest = consent.latest_sms_consent(subject)
    if opted_out is None:
        opted_out = consent.is_opted_out(subject.phone)
    granted = consent.sms_consent_in_effect(subject, latest)
    current = latest if latest is not None and latest.phone == subject.phone else None
    return {
        "granted": granted,
        "method": current.method if current is not None and granted else None,
        "version": latest.version if latest is not None else None,
        "recorded_at": iso(latest.recorded_at) if latest is not None else None,
        "opted_out": opted_out,
    }


def client_dicts(clients: Sequence[Client]) -> list[dict[str, Any]]:
    """Return a page of clients as the API shows them, with two queries for all their consents."""
    latest = consent.latest_sms_consents(clients)
    opted_out = consent.opted_out_among(c.phone for c in clients)
    return [
        client_dict(c, latest=latest.get(consent.subject_key(c)), opted_out=c.phone in opted_out)
        for c in clients
    ]


def client_dict(
    client: Client, *, latest: Any = _LOOKUP, opted_out: bool | None = None
) -> dict[str, Any]:
    """Return a client as the API shows it (consent prefetched by `client_dicts` for lists)."""
    return {
        "id": client.id,
        "therapist_id": client.therapist_id,
        "display_name": client.display_name,
        "phone": client.phone,
        "timezone": client.timezone,
        "language": client.language,
        "recovery_path": client.recovery_path,
        "sobriety_date": day(client.sobriety_date),
        "stage_of_change": client.stage_of_change,
        "current_step": client.current_step,
        "coping_plan": client.coping_plan,
        "sms_consent": sms_consent_state(client, latest=latest, opted_out=opted_out),
        "quiet_hours": {"start": client.quiet_start, "end": client.quiet_end},
        "discreet": client.discreet,
        "status": client.status,
        "paused_until": day(client.paused_until),
        "discharged_at": iso(client.discharged_at),
        "created_at": iso(client.created_at),
        "updated_at": iso(client.updated_at),
    }


def disclosure_dict(row: DisclosureConsent, *, on: date) -> dict[str, Any]:
    """Return one disclosure consent version; `in_effect` is judged for the date `on`."""
    return {
        "id": row.id,
        "contact_id": row.contact_id,
        "version": row.version,
        "granted_on": day(row.granted_on),
        "expires_on": day(row.expires_on),
        "scope": list(row.scope or []),
        "purpose": row.purpose,
        "recorded_by": row.recorded_by,
        "recorded_at": iso(row.recorded_at),
        "revoked_at": iso(row.revoked_at),
        "in_effect": consent.disclosure_in_effect(row, on),
    }


def contact_dict(contact: SupportContact, *, on: date) -> dict[str, Any]:
    """Return a support contact; its disclosure consent is the latest version, if not revoked."""
    latest = consent.latest_disclosure(contact)
    shown = latest if latest is not None and latest.revoked_at is None else None
    return {
        "id": contact.id,
        "client_id": contact.client_id,
        "display_name": contact.display_name,
        "role": contact.role,
        "phone": contact.phone,
        "timezone": contact.timezone or contact.client.timezone,
        "can_confirm": contact.can_confirm,
        "sms_consent": sms_consent_state(contact),
        "disclosure_consent": disclosure_dict(shown, on=on) if shown is not None else None,
        "archived_at": iso(contact.archived_at),
        "created_at": iso(contact.created_at),
        "updated_at": iso(contact.updated_at),
    }


def sms_consent_dict(row: SmsConsent) -> dict[str, Any]:
    """Return one SMS consent version."""
    return {
        "id": row.id,
        "subject": row.subject_key.split(":", 1)[0],
        "client_id": row.client_id,
        "contact_id": row.contact_id,
        "phone": row.phone,
        "version": row.version,
        "granted": row.granted,
        "method": row.method,
        "recorded_by": row.recorded_by,
        "recorded_at": iso(row.recorded_at),
        "revoked_at": iso(row.revoked_at),
    }


def message_dict(message: Message) -> dict[str, Any]:
    """Return one text of the SMS log."""
    return {
        "id": message.id,
        "direction": message.direction,
        "to": message.to_number,
        "from": message.from_number,
        "body": message.body,
        "purpose": message.purpose,
        "status": message.status,
        "client_id": message.client_id,
        "contact_id": message.contact_id,
        "created_at": iso(message.created_at),
        "sent_at": iso(message.sent_at),
        "provider_sid": message.provider_sid,
        "error_code": message.error_code,
    }


def audit_dict(entry: AuditEntry) -> dict[str, Any]:
    """Return one audit entry."""
    return {
        "id": entry.id,
        "at": iso(entry.at),
        "actor_type": entry.actor_type,
        "actor_id": entry.actor_id,
        "action": entry.action,
        "subject_type": entry.subject_type,
        "subject_id": entry.subject_id,
        "client_id": entry.client_id,
        "remote_addr": entry.remote_addr,
        "detail": dict(entry.detail or {}),
    }
