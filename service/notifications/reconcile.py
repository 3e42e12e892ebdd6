"""Crash safety: a text left `sending` is asked of the provider before anything is resent."""

from __future__ import annotations

import logging
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import select

from service.db import db
from service.models import Message
from service.notifications import gsm, policy
from service.notifications.outcomes import give_up, record_event, settle
from service.notifications.providers import DeliveryError, SmsProvider

logger = logging.getLogger(__name__)


def reconcile_abandoned(
    *, now: datetime, provider: SmsProvider, message_ids: Collection[str] | None = None
) -> int:
    """Settle texts left `sending` past the lease by asking the provider; return how many it had."""
    found = 0
    seen: set[str] = set()
    while True:
        stmt = (
            select(Message)
            .where(Message.status == "sending", Message.claimed_at <= now - policy.LEASE)
            .order_by(Message.claimed_at, Message.id)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if seen:
            stmt = stmt.where(Message.id.not_in(seen))
        if message_ids is not None:
            stmt = stmt.where(Message.id.in_(list(message_ids)))
        message = db.session.scalar(stmt)
        if message is None:
            db.session.commit()
            return found
        seen.add(message.id)
        found += _reconcile_one(message, now, provider)
        db.session.commit()


def _reconcile_one(message: Message, now: datetime, provider: SmsProvider) -> int:
    """Mark one abandoned message sent if the provider has it, else queue it again."""
    try:
        records = provider.lookup(
            to=message.to_number, since=message.claimed_at - policy.LOOKUP_SKEW, until=now
        )
    except DeliveryError as error:
        # Without an answer we cannot know: resending could duplicate, so wait and ask again.
        logger.warning("dispatch: cannot reconcile message %s yet: %s", message.id, error)
        return 0
    known = set(
        db.session.scalars(
            select(Message.provider_sid).where(Message.provider_sid.in_([r.sid for r in records]))
        )
    ) if records else set()  # fmt: skip
    match = next((r for r in records if r.body == message.body and r.sid not in known), None)
    claimed = {"claimed_at": message.claimed_at}
    if match is not None:
        if settle(message, now, only_if=claimed, status="sent", provider_sid=match.sid,
                   segments=gsm.segments(message.body or ""), sent_at=min(match.date_created, now),
                   error_code=None, error_message=None):  # fmt: skip
            record_event("message.sent", message, now, {"reconciled": True})
        logger.info("dispatch: message %s was sent before all (%s); not resending", message.id,
                    match.sid)  # fmt: skip
        return 1
    if message.attempts >= policy.MAX_ATTEMPTS:
        give_up(message, now, message.error_code, "not sent after the last attempt", None)
    else:
        settle(message, now, only_if=claimed, status="queued", claimed_at=None,
                send_after=max(now, message.send_after or now))  # fmt: skip
    logger.info("dispatch: message %s was not at the provider; queued again", message.id)
    return 0
