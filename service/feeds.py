"""Calendar feed capabilities: tokens and links, lookups, guess limits and the rendered feeds."""

from __future__ import annotations

import logging
import math
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import case, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from service import crypto
from service.calendar import render_feed
from service.db import UTCDateTime, db, new_id
from service.feed_content import client_feed_events
from service.feed_therapist import therapist_clients, therapist_feed_events
from service.feed_validators import (
    FeedValidator,
    client_validator,
    therapist_validator,
    validator_of,
)
from service.models import Client, FeedToken, RateLimitBucket, Therapist

__all__ = [
    "FeedValidator",
    "client_feed_events",
    "client_feed_url",
    "client_validator",
    "feed_body",
    "feed_owner",
    "feed_url",
    "find_feed",
    "guess_retry_after",
    "live_feeds",
    "record_miss",
    "record_poll",
    "render_client_feed",
    "render_therapist_feed",
    "revoke_client_feed",
    "revoke_therapist_feed",
    "rotate_client_feed",
    "rotate_therapist_feed",
    "therapist_clients",
    "therapist_feed_events",
    "therapist_feed_url",
    "therapist_validator",
    "token_of",
    "validator_of",
    "webcal_url",
]

logger = logging.getLogger(__name__)

PURPOSE = "feed-token"
FEED_NAME = "Steadfast"
# secrets.token_urlsafe(32): 256 bits in 43 URL-safe characters; anything else is a guess.
TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")
GUESS_LIMIT = 20
GUESS_WINDOW = timedelta(minutes=10)


def _settings() -> Any:
    return current_app.extensions["settings"]


def new_token() -> str:
    """Return a fresh feed token with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def feed_url(token: str) -> str:
    """Return the https link of a feed."""
    return f"{_settings().PUBLIC_BASE_URL}/feeds/{token}.ics"


def webcal_url(token: str) -> str:
    """Return the webcal:// link that opens the subscribe dialog of calendar apps."""
    return "webcal://" + feed_url(token).split("://", 1)[1]


def token_of(row: FeedToken) -> str | None:
    """Decrypt a stored token (None when SECRET_KEY changed since it was issued)."""
    return crypto.decrypt(_settings().SECRET_KEY, PURPOSE, row.token_encrypted)


def _live(**owner: str) -> list[FeedToken]:
    column = FeedToken.client_id if "client_id" in owner else FeedToken.therapist_id
    stmt = select(FeedToken).where(column == next(iter(owner.values())))
    stmt = stmt.where(FeedToken.revoked_at.is_(None)).order_by(FeedToken.created_at.desc())
    return list(db.session.scalars(stmt))


def _revoke(rows: list[FeedToken], now: datetime) -> bool:
    for row in rows:
        row.revoked_at = now
    return bool(rows)


def _rotate(practice_id: str, now: datetime, **owner: str) -> str:
    _revoke(_live(**owner), now)
    token = new_token()
    db.session.add(
        FeedToken(
            id=new_id("ft"),
            practice_id=practice_id,
            digest=crypto.digest(token),
            token_encrypted=crypto.encrypt(_settings().SECRET_KEY, PURPOSE, token),
            created_at=now,
            poll_count=0,
            **owner,
        )
    )
    db.session.flush()
    return feed_url(token)


def _url(rows: list[FeedToken]) -> str | None:
    token = token_of(rows[0]) if rows else None
    return feed_url(token) if token else None


def rotate_client_feed(client: Client, *, now: datetime) -> str:
    """Issue a new feed link for a client (revoking the old one) and return its https URL."""
    return _rotate(client.practice_id, now, client_id=client.id)


def revoke_client_feed(client: Client, *, now: datetime) -> bool:
    """Revoke the client's feed link; return whether there was one."""
    return _revoke(_live(client_id=client.id), now)


def client_feed_url(client: Client) -> str | None:
    """Return the client's live feed link, or None."""
    return _url(_live(client_id=client.id))


def rotate_therapist_feed(therapist: Therapist, *, now: datetime) -> str:
    """Issue a new feed link for a therapist (revoking the old one) and return its URL."""
    return _rotate(therapist.practice_id, now, therapist_id=therapist.id)


def revoke_therapist_feed(therapist: Therapist, *, now: datetime) -> bool:
    """Revoke the therapist's feed link; return whether there was one."""
    return _revoke(_live(therapist_id=therapist.id), now)


def therapist_feed_url(therapist: Therapist) -> str | None:
    """Return the therapist's live feed link, or None."""
    return _url(_live(therapist_id=therapist.id))


def find_feed(token: str) -> FeedToken | None:
    """Return the live feed row of a token, or None for a malformed, unknown or revoked one."""
    if not isinstance(token, str) or not TOKEN_SHAPE.fullmatch(token):
        return None
    wanted = crypto.digest(token)
    row = db.session.scalar(select(FeedToken).where(FeedToken.digest == wanted))
    if row is None or not crypto.same(row.digest, wanted) or row.revoked_at is not None:
        return None
    return row


def feed_owner(row: FeedToken) -> Client | Therapist | None:
    """Return whose feed this is, or None once the care or the account has ended."""
    if row.client_id is not None:
        client = db.session.get(Client, row.client_id)
        return client if client is not None and client.status != "discharged" else None
    therapist = db.session.get(Therapist, row.therapist_id)
    return therapist if therapist is not None and therapist.active else None


POLL_RECORD_INTERVAL = timedelta(minutes=5)


def record_poll(row: FeedToken, *, now: datetime) -> None:
    """Count fetches of a feed, writing at most once per POLL_RECORD_INTERVAL per token.

    Calendar servers poll every feed about hourly; a write (and fsync) on every poll made
    polls cost a commit each. `poll_count` therefore counts recorded polls (at most one per
    interval), and `last_seen_at` is accurate to the interval. One conditional UPDATE, so
    concurrent polls never double-count.
    """
    if row.last_seen_at is not None and now - row.last_seen_at < POLL_RECORD_INTERVAL:
        return
    db.session.execute(
        update(FeedToken)
        .where(
            FeedToken.id == row.id,
            or_(
                FeedToken.last_seen_at.is_(None),
                FeedToken.last_seen_at <= now - POLL_RECORD_INTERVAL,
            ),
        )
        .values(poll_count=FeedToken.poll_count + 1, last_seen_at=now)
        .execution_options(synchronize_session=False)
    )


def _miss_key(remote_addr: str | None) -> str:
    return f"feed-miss:{remote_addr or 'unknown'}"


def guess_retry_after(remote_addr: str | None, *, now: datetime) -> int | None:
    """Return seconds until this address may miss again, or None while under the limit."""
    stmt = select(RateLimitBucket).where(RateLimitBucket.key == _miss_key(remote_addr))
    row = db.session.scalar(stmt.execution_options(populate_existing=True))
    if row is None or row.count < GUESS_LIMIT or row.window_start + GUESS_WINDOW <= now:
        return None
    return max(1, math.ceil((row.window_start + GUESS_WINDOW - now).total_seconds()))


def record_miss(remote_addr: str | None, *, now: datetime) -> None:
    """Count one failed lookup from this address (an upsert, safe across workers)."""
    insert = (
        postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    )
    expired = RateLimitBucket.window_start <= literal(now - GUESS_WINDOW, UTCDateTime())
    stmt = insert(RateLimitBucket).values(key=_miss_key(remote_addr), window_start=now, count=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[RateLimitBucket.key],
        set_={
            "count": case((expired, 1), else_=RateLimitBucket.count + 1),
            "window_start": case(
                (expired, literal(now, UTCDateTime())), else_=RateLimitBucket.window_start
            ),
        },
    )
    db.session.execute(stmt)


def feed_body(owner: Client | Therapist, *, now: datetime) -> bytes:
    """Render the iCalendar bytes of a client's or a therapist's feed."""
    events = (
        client_feed_events(owner, now=now)
        if isinstance(owner, Client)
        else therapist_feed_events(owner, now=now)
    )
    # The current year's zone rules, so a tzdata update reaches calendars within the year.
    return render_feed(name=FEED_NAME, events=events, reference_year=now.year)


def render_client_feed(client: Client, *, now: datetime) -> tuple[bytes, str, datetime]:
    """Render a client's feed: (iCalendar bytes, ETag, Last-Modified)."""
    validator = client_validator(client, now=now)
    return feed_body(client, now=now), validator.etag, validator.last_modified


def render_therapist_feed(therapist: Therapist, *, now: datetime) -> tuple[bytes, str, datetime]:
    """Render a therapist's feed: (iCalendar bytes, ETag, Last-Modified)."""
    validator = therapist_validator(therapist, now=now)
    return feed_body(therapist, now=now), validator.etag, validator.last_modified


def live_feeds() -> list[FeedToken]:
    """Return every live feed token (for `feeds publish`)."""
    stmt = select(FeedToken).where(FeedToken.revoked_at.is_(None)).order_by(FeedToken.id)
    return list(db.session.scalars(stmt))
