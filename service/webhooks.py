"""Outbound webhook endpoints of a practice: create (secret shown once), list, delete, sign."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from service import fetch
from service.crypto import decrypt, encrypt
from service.db import db, new_id
from service.errors import Invalid
from service.events import append_event, stream_head
from service.models import Event, WebhookDelivery, WebhookEndpoint
from service.serialize import iso

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
_CRYPTO_PURPOSE = "webhook-secret"


def _settings() -> Any:
    return current_app.extensions["settings"]


def new_secret() -> str:
    """Return a Standard Webhooks secret: "whsec_" + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(os.urandom(32)).decode("ascii")


def secret_key(secret: str) -> bytes:
    """Return the HMAC key of a "whsec_…" secret (the bytes the base64 part encodes)."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """Return the `webhook-signature` header value: "v1," + base64 HMAC-SHA256."""
    signed = f"{message_id}.{timestamp}.{body}".encode()
    digest = hmac.new(secret_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def event_body(event: Event) -> str:
    """Return the JSON body delivered for an event."""
    return json.dumps(
        {
            "id": str(event.id),
            "type": event.type,
            "occurred_at": iso(event.occurred_at),
            "client_id": event.client_id,
            "payload": event.payload or {},
        },
        separators=(",", ":"),
        sort_keys=True,
    )


def check_url(url: str) -> None:
    """Refuse a URL that is not http(s) or resolves to a non-public address (unless allowed)."""
    try:
        fetch.vet_url(url, allow_private=_settings().ALLOW_PRIVATE_FEED_URLS)
    except fetch.FetchError as exc:
        raise Invalid("url", exc.message) from None


def create_endpoint(
    *, practice_id: str, url: str, description: str | None, now: datetime
) -> tuple[WebhookEndpoint, str]:
    """Create an endpoint that receives the practice's events from now on; return its secret."""
    check_url(url)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        id=new_id("wh"),
        practice_id=practice_id,
        url=url,
        secret_encrypted=encrypt(_settings().SECRET_KEY, _CRYPTO_PURPOSE, secret),
        description=description,
        active=True,
        cursor=stream_head(practice_id),
        created_at=now,
    )
    db.session.add(endpoint)
    db.session.flush()
    append_event(
        "webhook.created",
        now=now,
        practice_id=practice_id,
        subject_type="webhook",
        subject_id=endpoint.id,
    )
    return endpoint, secret


def endpoint_secret(endpoint: WebhookEndpoint) -> str | None:
    """Decrypt an endpoint's secret (None when SECRET_KEY changed since it was made)."""
    return decrypt(_settings().SECRET_KEY, _CRYPTO_PURPOSE, endpoint.secret_encrypted)


def list_endpoints(practice_id: str) -> list[WebhookEndpoint]:
    """Return the practice's endpoints that are not deleted, oldest first."""
    return list(
        db.session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.practice_id == practice_id, WebhookEndpoint.deleted_at.is_(None))
            .order_by(WebhookEndpoint.id)
        )
    )


def get_endpoint(practice_id: str, endpoint_id: str) -> WebhookEndpoint | None:
    """Return one of the practice's live endpoints, or None (also for another practice's)."""
    endpoint = db.session.get(WebhookEndpoint, endpoint_id) if len(endpoint_id) <= 40 else None
    if endpoint is None or endpoint.practice_id != practice_id or endpoint.deleted_at is not None:
        return None
    return endpoint


def delete_endpoint(endpoint: WebhookEndpoint, *, now: datetime) -> None:
    """Delete an endpoint: nothing more is delivered to it; its pending deliveries are dropped."""
    endpoint.active = False
    endpoint.deleted_at = now
    db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == "pending")
        .values(status="cancelled")
        .execution_options(synchronize_session=False)
    )
    append_event(
        "webhook.deleted",
        now=now,
        practice_id=endpoint.practice_id,
        subject_type="webhook",
        subject_id=endpoint.id,
    )
