"""How the API shows check-ins, alerts, events and webhook endpoints."""

from __future__ import annotations

from typing import Any

from service.escalation import occurrence_label
from service.models import Alert, CheckIn, Event, WebhookEndpoint
from service.serialize import iso


def checkin_dict(row: CheckIn) -> dict[str, Any]:
    """Return a check-in as the API shows it."""
    return {
        "id": row.id,
        "client_id": row.client_id,
        "source_type": row.source_type,
        "source_id": row.source_id,
        "occurrence": occurrence_label(row.occurrence),
        "due_at": iso(row.due_at),
        "closes_at": iso(row.closes_at),
        "status": row.status,
        "verifier": row.verifier_contact_id or "self",
        "prompt_code": row.prompt_code,
        "responded_at": iso(row.responded_at),
        "channel": row.channel,
        "skip_reason": row.skip_reason,
        "late_reply": row.late_reply,
        "late_reply_at": iso(row.late_reply_at),
        "note": row.note,
    }


def alert_dict(alert: Alert) -> dict[str, Any]:
    """Return an alert as the API shows it."""
    return {
        "id": alert.id,
        "kind": alert.kind,
        "status": alert.status,
        "client_id": alert.client_id,
        "source_type": alert.source_type,
        "source_id": alert.source_id,
        "occurrence": alert.occurrence,
        "detail": alert.detail or {},
        "created_at": iso(alert.created_at),
        "acknowledged_at": iso(alert.acknowledged_at),
        "resolved_at": iso(alert.resolved_at),
    }


def event_dict(event: Event) -> dict[str, Any]:
    """Return an event as the API shows it; its id is the cursor, as a string."""
    return {
        "id": str(event.id),
        "type": event.type,
        "occurred_at": iso(event.occurred_at),
        "client_id": event.client_id,
        "payload": event.payload or {},
    }


def webhook_dict(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """Return a webhook endpoint without its secret."""
    return {
        "id": endpoint.id,
        "url": endpoint.url,
        "description": endpoint.description,
        "active": endpoint.active,
        "created_at": iso(endpoint.created_at),
    }
