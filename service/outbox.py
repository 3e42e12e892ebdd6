"""The outbox: every text to send is first a queued Message row, unique by idempotency key."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service.db import db
from service.models import Message

logger = logging.getLogger(__name__)


def enqueue_message(
    *,
    practice_id: str | None,
    to: str,
    body: str,
    purpose: str,
    idempotency_key: str,
    now: datetime,
    client_id: str | None = None,
    contact_id: str | None = None,
    therapist_id: str | None = None,
    checkin_id: str | None = None,
    template: str | None = None,
    from_number: str | None = None,
    send_after: datetime | None = None,
    expires_at: datetime | None = None,
) -> Message | None:
    """Queue a text unless one with the same idempotency key exists; return the new row or None."""
    if db.session.scalar(select(Message.id).where(Message.idempotency_key == idempotency_key)):
        return None
    message = Message(
        practice_id=practice_id,
        client_id=client_id,
        contact_id=contact_id,
        therapist_id=therapist_id,
        checkin_id=checkin_id,
        direction="outbound",
        to_number=to,
        from_number=from_number,
        body=body,
        purpose=purpose,
        template=template,
        idempotency_key=idempotency_key,
        status="queued",
        attempts=0,
        send_after=send_after or now,
        expires_at=expires_at,
        created_at=now,
        updated_at=now,
    )
    # A savepoint, so a concurrent writer of the same key costs this row, not the transaction.
    try:
        with db.session.begin_nested():
            db.session.add(message)
    except IntegrityError:
        logger.info("outbox: %s already queued by another writer", idempotency_key.split(":")[0])
        return None
    return message
