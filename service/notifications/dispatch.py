"""Outbox dispatch: claim queued texts, re-check them at send time, send, record, retry, reconcile.

Transactions: unlike the rest of the core, dispatch commits by itself, once per message. A
claim must be committed before the provider is called (so a second dispatcher never takes
the same row), and each outcome is committed at once (so a crash loses at most the one text
in flight, which the next run reconciles with the provider before anything is resent).
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update

from service.db import db
from service.models import Message
from service.notifications import gate, policy
from service.notifications.optout import opt_out_number
from service.notifications.outcomes import give_up, record_event, settle
from service.notifications.providers import DeliveryError, SmsProvider
from service.notifications.reconcile import reconcile_abandoned
from service.notifications.throttle import TokenBucket
from service.phones import mask

logger = logging.getLogger(__name__)

DEFAULT_LIMIT = 200
# Consecutive provider-wide failures (5xx, 429, timeouts, bad credentials) after which this
# run stops: hammering a provider that is down only burns the messages' attempts.
BREAKER = 3
# Test-only: with STEADFAST_ENV=test, the process dies (os._exit) right after the Nth
# successful provider.send returns, before the outcome is committed. Inert otherwise.
CRASH_AFTER_SEND_ENV = "STEADFAST_TEST_CRASH_AFTER_SEND"
_UNLIMITED = ("console", "fake")
_sends_this_process = 0


def dispatch_outbox(
    *,
    now: datetime,
    provider: SmsProvider,
    settings: Any = None,
    limit: int = DEFAULT_LIMIT,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    bucket: TokenBucket | None = None,
    message_ids: Collection[str] | None = None,
) -> int:
    """Send the due queued texts (at most `limit`) through provider; return how many went out."""
    settings = settings if settings is not None else current_app.extensions["settings"]
    rng = rng or random.Random()
    if bucket is None:
        rate = 0.0 if provider.name in _UNLIMITED else float(settings.SMS_MPS)
        bucket = TokenBucket(rate, 1, sleep=sleep)
    db.session.commit()  # claims are committed one by one; start from a clean transaction
    started = time.monotonic()

    def clock() -> datetime:
        # Claims carry the real elapsed time, so a long run's later claims do not look
        # abandoned to another dispatcher whose lease check uses a later instant.
        return now + timedelta(seconds=time.monotonic() - started)

    sent = reconcile_abandoned(now=now, provider=provider, message_ids=message_ids)
    streak = 0
    for _ in range(limit):
        message = _claim_next(now, clock(), message_ids)
        if message is None:
            break
        outcome = _process(message, now, provider, settings, rng, bucket)
        if outcome == "sent":
            sent += 1
            streak = 0
        elif outcome == "provider_down":
            streak += 1
            if streak >= BREAKER:
                logger.warning("dispatch: provider failing, stopping this run")
                break
    return sent


def _claim_next(
    now: datetime, claimed_at: datetime, message_ids: Collection[str] | None
) -> Message | None:
    """Claim the next due queued message (committed), or return None when none is left."""
    for _ in range(20):  # another dispatcher may win a race for a row; try the next one
        stmt = (
            select(Message.id)
            .where(
                Message.status == "queued",
                Message.direction == "outbound",
                Message.send_after <= now,
            )
            .order_by(Message.send_after, Message.id)
            .limit(1)
            .with_for_update(skip_locked=True)  # PostgreSQL; SQLite relies on the rowcount
        )
        if message_ids is not None:
            stmt = stmt.where(Message.id.in_(list(message_ids)))
        message_id = db.session.scalar(stmt)
        if message_id is None:
            db.session.commit()
            return None
        claimed = db.session.execute(
            update(Message)
            .where(Message.id == message_id, Message.status == "queued")
            .values(
                status="sending",
                claimed_at=claimed_at,
                attempts=Message.attempts + 1,
                updated_at=claimed_at,
            )
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        if claimed.rowcount == 1:
            return db.session.get(Message, message_id, populate_existing=True)
    return None


def _process(
    message: Message,
    now: datetime,
    provider: SmsProvider,
    settings: Any,
    rng: random.Random,
    bucket: TokenBucket,
) -> str:
    """Re-check, send and record one claimed message; return what became of it."""
    try:
        decision, recipient = gate.decide(message, now, settings)
    except Exception as exc:  # noqa: BLE001 - one unreadable message must not block the outbox
        db.session.rollback()
        logger.exception("dispatch: message %s cannot be checked; not sent", message.id)
        settle(message, now, status="failed", error_message=f"send-time check failed: "
               f"{type(exc).__name__}")  # fmt: skip
        db.session.commit()
        return "failed"
    if message.body is None:
        decision = policy.Decision(policy.SKIP, "no body")
    if decision.action == policy.SKIP:
        settle(message, now, status="skipped", error_message=decision.reason)
        db.session.commit()
        logger.info("dispatch: message %s skipped: %s", message.id, decision.reason)
        return "skipped"
    if decision.action == policy.DEFER:
        stale = timedelta(minutes=settings.STALE_PROMPT_MINUTES)
        settle(
            message,
            now,
            status="queued",
            send_after=decision.until,
            attempts=message.attempts - 1,  # waiting out quiet hours is not a try
            claimed_at=None,
            error_message=f"deferred: {decision.reason}",
            # Staleness runs from the new send time, not from when it was queued.
            expires_at=message.expires_at or decision.until + stale,
        )
        db.session.commit()
        return "deferred"
    stale = timedelta(minutes=settings.STALE_PROMPT_MINUTES)
    bucket.acquire()
    try:
        result = provider.send(
            to=message.to_number,
            body=message.body,
            sender=gate.sender_for(message),
            status_callback=f"{settings.PUBLIC_BASE_URL}/twilio/status",
            validity_seconds=policy.validity_seconds(
                message.expires_at, now, message.purpose, stale
            ),
            idempotency_key=message.idempotency_key or message.id,
        )
    except DeliveryError as error:
        return _failed(message, error, now, rng, recipient)
    _crash_point(settings)
    if settle(message, now, status="sent", provider_sid=result.sid, segments=result.segments,
               sent_at=now, error_code=None, error_message=None):  # fmt: skip
        record_event("message.sent", message, now, {"segments": result.segments})
    db.session.commit()
    logger.info("dispatch: message %s sent to %s as %s", message.id, mask(message.to_number),
                result.sid)  # fmt: skip
    return "sent"


def _failed(
    message: Message,
    error: DeliveryError,
    now: datetime,
    rng: random.Random,
    recipient: gate.Recipient,
) -> str:
    """Record a failed send: give up on a permanent error, reconcile or retry a transient one."""
    detail = str(error)[:500]
    if error.permanent:
        give_up(message, now, error.code, detail, recipient)
        if error.code in policy.OPT_OUT_CODES:
            reason, kind = policy.OPT_OUT_CODES[error.code]
            opt_out_number(message.to_number, reason=reason, keyword=None, now=now,
                           alert_kind=kind, source="provider")  # fmt: skip
        db.session.commit()
        return "failed"
    wait = policy.backoff(message.attempts, rng, error.retry_after)
    if error.maybe_sent:
        # The provider may have the text: it stays `sending` until reconcile_abandoned
        # has asked the provider, after the lease, whether it exists.
        settle(message, now, status="sending", send_after=now + wait, error_code=error.code,
                error_message=f"maybe sent: {detail}"[:500])  # fmt: skip
    elif policy.should_retry(error, message.attempts):
        settle(message, now, status="queued", send_after=now + wait, claimed_at=None,
                error_code=error.code, error_message=detail)  # fmt: skip
    else:
        give_up(message, now, error.code, detail, recipient)
    db.session.commit()
    logger.warning("dispatch: message %s to %s failed (attempt %d): %s", message.id,
                   mask(message.to_number), message.attempts, detail)  # fmt: skip
    return "provider_down" if policy.provider_wide(error) else "retry"


def _crash_point(settings: Any) -> None:
    """Die right after a send when a crash test asks for it (STEADFAST_ENV=test only)."""
    global _sends_this_process
    limit = os.environ.get(CRASH_AFTER_SEND_ENV)
    if not limit or getattr(settings, "STEADFAST_ENV", "") != "test":
        return
    _sends_this_process += 1
    if _sends_this_process >= int(limit):
        logging.shutdown()
        os._exit(9)
