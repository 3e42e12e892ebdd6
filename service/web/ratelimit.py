"""Fixed-window counters in the database, so every gunicorn worker shares one count."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from service.db import UTCDateTime, db
from service.models import RateLimitBucket


@dataclass(frozen=True)
class Limit:
    """At most `limit` hits per `window` under one key."""

    limit: int
    window: timedelta


SIGN_IN = Limit(5, timedelta(minutes=15))


def retry_after(keys: list[str], rule: Limit, *, now: datetime) -> int | None:
    """Return seconds until every key is under the limit again, or None if none is exhausted."""
    rows = db.session.scalars(select(RateLimitBucket).where(RateLimitBucket.key.in_(keys))).all()
    waits = []
    for row in rows:
        ends = row.window_start + rule.window
        if ends > now and row.count >= rule.limit:
            waits.append(math.ceil((ends - now).total_seconds()))
    return max(waits) if waits else None


def hit(key: str, rule: Limit, *, now: datetime) -> None:
    """Count one hit under `key` atomically (an upsert, so concurrent workers never lose one)."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    at = literal(now, UTCDateTime())
    expired = RateLimitBucket.window_start <= literal(now - rule.window, UTCDateTime())
    stmt = insert(RateLimitBucket).values(key=key, window_start=now, count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[RateLimitBucket.key],
        set_={
            "count": case((expired, 1), else_=RateLimitBucket.count + 1),
            "window_start": case((expired, at), else_=RateLimitBucket.window_start),
        },
    )
    db.session.execute(stmt)


def clear(key: str) -> None:
    """Forget the hits under `key`."""
    bucket = db.session.get(RateLimitBucket, key)
    if bucket is not None:
        db.session.delete(bucket)
