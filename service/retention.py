"""Retention: message bodies older than MESSAGE_BODY_RETENTION_DAYS are erased; metadata stays."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Select, select, update

from service.db import db
from service.models import Message

logger = logging.getLogger(__name__)

BATCH = 1000


def expired_bodies_stmt(cutoff: datetime, batch: int = BATCH) -> Select[tuple[str]]:
    """Select (a batch of) the messages created before `cutoff` that still have a body."""
    # Bounded batches keep each sweep's transaction short; the next sweep takes the rest.
    return (
        select(Message.id)
        .where(
            Message.body_purged_at.is_(None),
            Message.body.is_not(None),
            Message.created_at < cutoff,
        )
        .order_by(Message.created_at)
        .limit(batch)
    )


def purge_message_bodies(now: datetime, *, retention_days: int, batch: int = BATCH) -> int:
    """Erase the bodies of messages older than the retention period; return how many."""
    cutoff = now - timedelta(days=retention_days)
    chosen = db.session.scalars(expired_bodies_stmt(cutoff, batch)).all()
    if not chosen:
        return 0
    result = db.session.execute(
        update(Message)
        .where(Message.id.in_(chosen), Message.body_purged_at.is_(None))
        .values(body=None, body_purged_at=now)
        .execution_options(synchronize_session=False)
    )
    count = int(result.rowcount or 0)
    logger.info("retention: erased %d message bodies older than %s days", count, retention_days)
    return count
