"""Calendar feed capabilities: tokens, links, the cheap validator and the rendered feeds."""

from __future__ import annotations

import hashlib
import logging
import math
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import tzdata
from flask import current_app
from sqlalchemy import case, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite

from service import crypto
from service.calendar import render_feed
from service.db import UTCDateTime, db, new_id
from service.feed_content import (
    checkin_filter,
    client_feed_events,
    pause_window,
    therapist_clients,
    therapist_feed_events,
)
from service.models import (
    Activity,
    Alert,
    CheckIn,
    Client,
    Commitment,
    FeedToken,
    Meeting,
    MeetingPlan,
    RateLimitBucket,
    Therapist,
)

__all__ = [
    "FeedValidator",
    "feed_body",
    "client_feed_events",
    "client_feed_url",
    "client_validator",
    "feed_owner",
    "feed_url",
    "find_feed",
    "live_feeds",
    "guess_retry_after",
    "record_miss",
    "record_poll",
    "render_client_feed",
    "render_therapist_feed",
    "revoke_client_feed",
    "revoke_therapist_feed",
    "rotate_client_feed",
    "rotate_therapist_feed",
    "therapist_feed_events",
    "therapist_clients",
    "therapist_feed_url",
    "therapist_validator",
    "token_of",
    "validator_of",
    "webcal_url",
]

logger = logging.getLogger(__name__)

PURPOSE = "feed-token"
FEED_NAME = "Steadfast"
# Bump when the rendering changes, so every ETag changes with it.
FORMAT_VERSION = 1
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


def record_poll(row: FeedToken, *, now: datetime) -> None:
    """Count one fetch of a feed (one atomic UPDATE: concurrent polls never lose a count)."""
    db.session.execute(
        update(FeedToken)
        .where(FeedToken.id == row.id)
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


@dataclass(frozen=True)
class FeedValidator:
    """What a conditional GET compares: the quoted ETag and the Last-Modified instant."""

    etag: str
    last_modified: datetime


def _aggregate(model: Any, owner: Any, *columns: str) -> list[Any]:
    """Return scalar subqueries count(*), then sum(revision) or max(column) of model's rows."""
    # Built from columns, never from select(model): that would list every column of the
    # table and cost more to construct than the query costs to run.
    parts = [select(func.count()).select_from(model).where(owner).scalar_subquery()]
    for name in columns:
        fn = func.sum if name == "revision" else func.max
        parts.append(select(fn(getattr(model, name))).where(owner).scalar_subquery())
    return parts


def _validator(values: list[Any], changed: list[datetime | None], now: datetime) -> FeedValidator:
    # The feed's bytes are a function of these rows, the current year (milestones listed,
    # the VTIMEZONE rules) and the zone database; so is the ETag, without rendering.
    key = repr((FORMAT_VERSION, tzdata.IANA_VERSION, now.year, values)).encode()
    etag = '"' + hashlib.sha256(key).hexdigest()[:32] + '"'
    # The representation also changes on New Year's Day (see above), so that counts as an edit.
    year_start = datetime(now.year, 1, 1, tzinfo=UTC)
    last = max([year_start, *(c for c in changed if c is not None)]).replace(microsecond=0)
    return FeedValidator(etag, last)


def client_validator(client: Client, *, now: datetime) -> FeedValidator:
    """Compute a client feed's validator from two small aggregate queries (no rendering)."""

    def planned(column: Any) -> Any:
        stmt = select(column).join_from(Meeting, MeetingPlan, MeetingPlan.meeting_id == Meeting.id)
        return stmt.where(MeetingPlan.client_id == client.id).scalar_subquery()

    sources = db.session.execute(
        select(
            *_aggregate(MeetingPlan, MeetingPlan.client_id == client.id, "updated_at", "revision", "paused_until"),
            *_aggregate(Commitment, Commitment.client_id == client.id, "updated_at", "revision", "paused_until"),
            *_aggregate(Activity, Activity.client_id == client.id, "updated_at", "revision"),
            planned(func.max(Meeting.updated_at)),
            planned(func.sum(Meeting.revision)),
            select(func.min(MeetingPlan.paused_until)).where(MeetingPlan.client_id == client.id).scalar_subquery(),
            select(func.min(Commitment.paused_until)).where(Commitment.client_id == client.id).scalar_subquery(),
        )
    ).one()  # fmt: skip
    pauses = [sources[3], sources[7], sources[13], sources[14]]
    if client.status == "paused":
        pauses.append(client.paused_until)
    window = pause_window(pauses)
    checkins = db.session.execute(
        select(func.count(), func.max(CheckIn.updated_at)).where(checkin_filter(client.id, window))
    ).one()
    own = (client.updated_at, client.revision, client.status, client.paused_until, client.discreet,
           client.timezone, client.sobriety_date)  # fmt: skip
    return _validator(
        [own, tuple(sources), tuple(checkins), window],
        [client.updated_at, sources[1], sources[5], sources[9], sources[11], checkins[1]],
        now,
    )


def therapist_validator(therapist: Therapist, *, now: datetime) -> FeedValidator:
    """Compute a therapist feed's validator from one aggregate query (no rendering)."""
    clients = select(Client.id).where(
        Client.therapist_id == therapist.id, Client.status != "discharged"
    )
    sessions = (Activity.client_id.in_(clients)) & (Activity.kind == "therapy_session")
    open_alerts = (Alert.client_id.in_(clients)) & (Alert.status == "open")
    row = db.session.execute(
        select(
            *_aggregate(Client, Client.id.in_(clients), "updated_at", "revision"),
            *_aggregate(Activity, sessions, "updated_at", "revision"),
            *_aggregate(Alert, open_alerts, "created_at"),
        )
    ).one()
    return _validator([therapist.active, tuple(row)], [row[1], row[4], row[7]], now)


def feed_body(owner: Client | Therapist, *, now: datetime) -> bytes:
    """Render the iCalendar bytes of a client's or a therapist's feed."""
    events = (
        client_feed_events(owner, now=now)
        if isinstance(owner, Client)
        else therapist_feed_events(owner, now=now)
    )
    # The current year's zone rules, so a tzdata update reaches calendars within the year.
    return render_feed(name=FEED_NAME, events=events, reference_year=now.year)


def validator_of(owner: Client | Therapist, *, now: datetime) -> FeedValidator:
    """Return the validator of a client's or a therapist's feed (no rendering)."""
    if isinstance(owner, Client):
        return client_validator(owner, now=now)
    return therapist_validator(owner, now=now)


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
