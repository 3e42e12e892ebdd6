"""Delivery status from the provider: move a message forward only, and flag failed client texts."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from service import alerts
from service.db import db
from service.events import append_event
from service.models import Client, Message
from service.notifications import policy
from service.notifications.optout import opt_out_number
from service.notifications.providers import describe

logger = logging.getLogger(__name__)

# Twilio's statuses mapped to ours; "read" is a delivery, "canceled" a failure.
_OURS = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "read": "delivered",
    "undelivered": "undelivered",
    "failed": "failed",
    "canceled": "failed",
}
# Rank along queued → sending → sent → final; a status may only move to a higher rank.
_RANK = {
    "queued": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "undelivered": 3,
    "failed": 3,
    "skipped": 3,
}
FAILED = ("undelivered", "failed")


@dataclass(frozen=True)
class StatusResult:
    """What a status callback did: whether the sid is ours and whether the status moved."""

    known: bool
    moved: bool
    status: str | None


def moves_forward(current: str, new: str) -> bool:
    """Return True when a message may go from `current` to `new` (never backwards or sideways)."""
    return _RANK.get(new, -1) > _RANK.get(current, 99)


def apply_status(
    *, sid: str, provider_status: str, error_code: int | None, now: datetime
) -> StatusResult:
    """Record a provider status callback for the message with this sid (forward moves only)."""
    message = db.session.scalar(select(Message).where(Message.provider_sid == sid))
    if message is None:
        return StatusResult(False, False, None)
    new = _OURS.get((provider_status or "").strip().lower())
    if new is None or not moves_forward(message.status, new):
        return StatusResult(True, False, message.status)
    values: dict = {"status": new, "updated_at": now}
    if new == "delivered":
        values["delivered_at"] = now
    if new in FAILED:
        values["error_code"] = error_code
        values["error_message"] = describe(error_code, None) if error_code else new
    # Conditional on the status we read, so two callbacks racing each other move it once.
    moved = db.session.execute(
        update(Message)
        .where(Message.id == message.id, Message.status == message.status)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(message)
    if moved.rowcount != 1:
        return StatusResult(True, False, message.status)
    if new in FAILED:
        _after_failure(message, error_code, now)
    return StatusResult(True, True, new)


def _after_failure(message: Message, error_code: int | None, now: datetime) -> None:
    append_event(
        "message.failed",
        now=now,
        practice_id=message.practice_id,
        client_id=message.client_id,
        subject_type="message",
        subject_id=message.id,
        payload={"purpose": message.purpose, "status": message.status, "error_code": error_code},
    )
    if error_code in policy.OPT_OUT_CODES:
        reason, kind = policy.OPT_OUT_CODES[error_code]
        opt_out_number(message.to_number, reason=reason, keyword=None, now=now,
                       alert_kind=kind, source="status_callback")  # fmt: skip
        return
    to_client = message.client_id and message.contact_id is None and message.therapist_id is None
    if not to_client or message.direction != "outbound":
        return
    client = db.session.get(Client, message.client_id)
    if client is None or client.phone != message.to_number:
        return
    logger.info("message %s to client %s was %s (%s)", message.id, client.id, message.status,
                error_code)  # fmt: skip
    alerts.raise_alert(
        kind="delivery_failed",
        client=client,
        source_type="message",
        source_id=message.id,  # one alert per message, however often Twilio calls back
        occurrence=None,
        detail={
            "message_id": message.id,
            "status": message.status,
            "error_code": error_code,
            "purpose": message.purpose,
        },  # fmt: skip
        now=now,
    )
