"""Recording what became of a claimed outbox message: conditional moves, events, giving up."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm.attributes import set_committed_value

from service import alerts
from service.db import db
from service.events import append_event
from service.models import Client, Message
from service.notifications import gate, policy

logger = logging.getLogger(__name__)

_M = Message.__table__


def settle(
    message: Message | gate.Claimed,
    now: datetime,
    *,
    only_if: dict[str, Any] | None = None,
    **values: Any,
) -> bool:
    """Move a message out of `sending` with a conditional UPDATE; return whether it moved.

    `message` is a loaded Message (reconcile) or a claim's row (dispatch); either is updated
    to the values written.
    """
    criteria = [_M.c.id == message.id, _M.c.status == "sending"]
    criteria += [_M.c[k] == v for k, v in (only_if or {}).items()]
    result = db.session.execute(update(_M).where(*criteria).values(updated_at=now, **values))
    orm = isinstance(message, Message)
    if result.rowcount == 1:
        # The row now holds exactly these values: mirror them without reading it back.
        for key, value in {"updated_at": now, **values}.items():
            if orm:
                set_committed_value(message, key, value)
            else:
                setattr(message, key, value)
        return True
    if orm:
        db.session.refresh(message)
    else:
        message.status = db.session.scalar(select(_M.c.status).where(_M.c.id == message.id))
    logger.warning("dispatch: message %s changed under us; left as %s", message.id,
                   message.status)  # fmt: skip
    return False


def record_event(
    kind: str, message: Message | gate.Claimed, now: datetime, extra: dict[str, Any]
) -> None:
    """Append a message.* event (no number, no body) to the caller's unit of work."""
    append_event(
        kind,
        now=now,
        practice_id=message.practice_id,
        client_id=message.client_id,
        subject_type="message",
        subject_id=message.id,
        payload={"purpose": message.purpose, "attempts": message.attempts, **extra},
    )


def sent_event(
    message: Message | gate.Claimed, now: datetime, extra: dict[str, Any]
) -> dict[str, Any]:
    """Return record_event's `message.sent` event as a row for events.append_events."""
    return {
        "type": "message.sent",
        "occurred_at": now,
        "practice_id": message.practice_id,
        "client_id": message.client_id,
        "subject_type": "message",
        "subject_id": message.id,
        "payload": {"purpose": message.purpose, "attempts": message.attempts, **extra},
    }


def give_up(
    message: Message | gate.Claimed,
    now: datetime,
    code: int | None,
    detail: str,
    recipient: gate.Recipient | None,
) -> None:
    """Mark a message failed for good; tell the therapist when it was meant for a client."""
    if not settle(message, now, status="failed", error_code=code, error_message=detail):
        return
    record_event("message.failed", message, now, {"error_code": code})
    kind = recipient.kind if recipient is not None else gate.recipient_of(message).kind
    if kind == "client" and message.client_id and code not in policy.OPT_OUT_CODES:
        client = db.session.get(Client, message.client_id)
        alerts.raise_alert(
            kind="delivery_failed",
            client=client,
            source_type="message",
            source_id=message.id,
            occurrence=None,
            detail={"message_id": message.id, "error_code": code, "purpose": message.purpose},
            now=now,
        )
