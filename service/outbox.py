"""The outbox: every text to send is first a queued Message row, unique by idempotency key."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service.db import db, insert_new_rows, new_id
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


# Texts per INSERT statement in `enqueue_messages`.
_CHUNK = 1000
_OPTIONAL = ("client_id", "contact_id", "therapist_id", "checkin_id", "template", "from_number",
             "send_after", "expires_at")  # fmt: skip


def enqueue_messages(texts: list[dict[str, Any]]) -> set[str]:
    """Queue many texts at once, each unless its idempotency key is already queued.

    Each dict takes `enqueue_message`'s keyword arguments. One INSERT … ON CONFLICT
    (idempotency_key) DO NOTHING per chunk: a key another writer already queued costs that
    text only, as the savepoint does in `enqueue_message`. Returns the keys queued now.
    """
    if not texts:
        return set()
    rows = []
    # Sorted, the time-ordered ids follow the list's order even within one millisecond.
    ids = sorted(new_id("ms") for _ in texts)
    for text, message_id in zip(texts, ids, strict=True):
        now = text["now"]
        row = {key: text.get(key) for key in _OPTIONAL}
        row.update(
            id=message_id,
            practice_id=text["practice_id"],
            direction="outbound",
            to_number=text["to"],
            body=text["body"],
            purpose=text["purpose"],
            idempotency_key=text["idempotency_key"],
            status="queued",
            attempts=0,
            send_after=text.get("send_after") or now,
            created_at=now,
            updated_at=now,
        )
        rows.append(row)
    written = insert_new_rows(Message.__table__, rows, ["idempotency_key"], chunk=_CHUNK)
    queued = {row["idempotency_key"] for row in rows if row["id"] in written}
    for key in {row["idempotency_key"] for row in rows} - queued:
        logger.info("outbox: %s already queued", key.split(":")[0])
    return queued
