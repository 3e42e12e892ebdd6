"""Calendar feed capabilities: tokens and links, lookups, guess limits and the rendered feeds."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import psycopg
from flask import current_app
from psycopg import pq
from psycopg.adapt import Transformer
from sqlalchemy import Engine, case, event, literal, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from service import crypto
from service.calendar import render_feed
from service.db import UTCDateTime, db, new_id
from service.feed_content import client_feed_events
from service.feed_therapist import therapist_clients, therapist_feed_events
from service.feed_validators import (
    POLL_STATE,
    POLL_STATE_LATERAL,
    TOKEN_STATE,
    TOKEN_WIDTH,
    FeedValidator,
    Prepared,
    client_etag_of,
    client_validator,
    client_validator_of,
    own_of,
    sources_of,
    standalone_first,
    therapist_validator,
    validator_of,
)
from service.models import Client, FeedToken, RateLimitBucket, Therapist

__all__ = [
    "FeedBodyCache",
    "FeedValidator",
    "LiveFeed",
    "PollReader",
    "client_feed_events",
    "client_feed_url",
    "client_validator",
    "cached_feed_body",
    "feed_body",
    "feed_owner",
    "feed_url",
    "find_feed",
    "guess_retry_after",
    "live_feed",
    "live_feeds",
    "poll_etag",
    "poll_due",
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


@dataclass(frozen=True)
class LiveFeed:
    """A live feed found by its token, with its validator: what a poll needs, in one query."""

    id: str  # the feed token row's id
    last_seen_at: datetime | None
    client_id: str | None
    therapist_id: str | None
    validator: FeedValidator
    therapist: Therapist | None = None  # loaded already for a therapist's feed

    def owner(self) -> Client | Therapist:
        """Load whose feed this is (only a render needs the row itself)."""
        if self.therapist is not None:
            return self.therapist
        client = db.session.get(Client, self.client_id)
        assert client is not None  # live_feed saw it in this transaction
        return client


def live_feed(token: str, *, now: datetime) -> LiveFeed | None:
    """Find a live feed and compute its validator, or None for a miss (as find_feed/feed_owner).

    A client's feed costs one query: the token row by digest joined with its client and the
    validator's aggregates (see service.feed_validators); a pause on record adds one more.
    """
    if not isinstance(token, str) or not TOKEN_SHAPE.fullmatch(token):
        return None
    wanted = crypto.digest(token)
    # Its own autocommit connection: a poll that records nothing never opens the session's.
    values = standalone_first(TOKEN_STATE, digest=wanted)
    if values is None:
        return None
    token_id, digest, revoked_at, last_seen_at, client_id, therapist_id = values[:TOKEN_WIDTH]
    if not crypto.same(digest, wanted) or revoked_at is not None:
        return None
    if client_id is not None:
        client = values[TOKEN_WIDTH:]
        own = own_of(client)
        if own[2] is None or own[2] == "discharged":  # no such client, or care has ended
            return None
        validator = client_validator_of(client_id, own, sources_of(client), now=now)
        return LiveFeed(token_id, last_seen_at, client_id, None, validator)
    therapist = db.session.get(Therapist, therapist_id)
    if therapist is None or not therapist.active:
        return None
    validator = therapist_validator(therapist, now=now)
    return LiveFeed(token_id, last_seen_at, None, therapist.id, validator, therapist)


# A pyformat placeholder of a compiled statement, or an escaped percent sign.
_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s")


@dataclass(frozen=True)
class _Statement:
    """A Prepared's SQL for a server-side prepared statement: $n placeholders, its name."""

    name: bytes
    sql: bytes
    params: tuple[str, ...]
    defaults: dict[str, Any]
    convert: tuple[tuple[int, Any], ...]  # (column, result processor) where there is one


class PollReader:
    """Runs POLL_STATE for poll_etag on PostgreSQL on a connection kept per thread, in autocommit.

    A pooled checkout and return (SQLAlchemy's Connection, the isolation level set and reset,
    the reset on return) cost a poll more CPU than the query; so did psycopg's cursor
    (the query's conversion, the prepared-statement cache, its wait loop) against libpq's
    own blocking call. Here each serving thread keeps one connection, made by the engine's
    pool (so it is set up exactly as pooled ones are) and then detached from it: the pool
    neither counts nor lends it. The statement is prepared once per connection and run by
    libpq (PQexecPrepared, without the GIL); the row is loaded by the connection's own
    psycopg loaders and then by the columns' result processors, as Prepared.first does.

    The read is one statement in autocommit, as standalone_first runs it: it sees the
    database as it is now (one snapshot, no transaction left open), and nothing but the
    connection is kept between polls. A connection the server dropped (a restart, a
    terminated backend) fails the statement: it is closed and the read repeated once on a
    new connection; any other error closes the connection and is raised (the fast path then
    leaves the poll to the route). A connection is replaced after the pool's recycle time,
    never used by a process it was not made in (a fork), and closed once the engine is
    disposed (by the thread that owns it, at once or at its next poll: a connection is only
    ever touched by its own thread).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._local = threading.local()
        self._lock = threading.Lock()
        self._statements: dict[Prepared, _Statement] = {}
        self._generation = 0  # bumped when the engine is disposed
        self._recycle = engine.pool._recycle  # noqa: SLF001 - the pool's own setting
        event.listen(engine, "engine_disposed", self._dispose)

    def first(self, prepared: Prepared, **params: str) -> tuple[Any, ...] | None:
        """Run prepared with params (strings); return its first row, processed as
        Prepared.first processes it, or None."""
        statement = self._statement(prepared)
        values = {**statement.defaults, **params}
        args = [values[name].encode() for name in statement.params]
        for attempt in (1, 2):
            held = self._connection()
            pgconn = held.connection.pgconn
            try:
                if statement.name not in held.prepared:
                    _succeeded(pgconn.prepare(statement.name, statement.sql))
                    held.prepared.add(statement.name)
                result = _succeeded(pgconn.exec_prepared(statement.name, args))
            except Exception:
                broken = pgconn.status != pq.ConnStatus.OK
                self._discard()
                if broken and attempt == 1:
                    continue  # the server dropped it: once more on a new connection
                raise
            if result.ntuples == 0:
                return None
            held.transformer.set_pgresult(result)
            row = list(held.transformer.load_row(0, tuple))
            for i, process in statement.convert:
                row[i] = process(row[i])
            return tuple(row)
        raise AssertionError("not reached")

    def _statement(self, prepared: Prepared) -> _Statement:
        statement = self._statements.get(prepared)
        if statement is not None:
            return statement
        sql, defaults, order, processors = prepared._form(self.engine.dialect)  # noqa: SLF001
        if order is not None:
            raise ValueError("PollReader runs statements compiled with named parameters")
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None:
                return "%"
            if name not in names:
                names.append(name)
            return f"${names.index(name) + 1}"

        text = _PLACEHOLDER.sub(number, sql)
        convert = tuple((i, fn) for i, fn in enumerate(processors) if fn is not None)
        with self._lock:
            statement = self._statements.get(prepared)
            if statement is None:
                name = f"steadfast_feeds_{len(self._statements)}".encode()
                statement = _Statement(name, text.encode(), tuple(names), defaults, convert)
                self._statements[prepared] = statement
        return statement

    def _connection(self) -> _Held:
        held: _Held | None = getattr(self._local, "held", None)
        if held is not None and (
            held.pid != os.getpid()  # made before a fork: the parent's, never touched here
            or held.generation != self._generation  # the engine was disposed since
            or held.connection.pgconn.status != pq.ConnStatus.OK
            or (self._recycle >= 0 and time.monotonic() - held.made > self._recycle)
        ):
            self._discard()
            held = None
        if held is None:
            generation = self._generation
            proxied = self.engine.raw_connection()
            try:
                connection = proxied.driver_connection
                proxied.detach()
                connection.autocommit = True
                held = _Held(proxied, connection, Transformer(connection), generation)
            except BaseException:
                proxied.close()
                raise
            self._local.held = held
        return held

    def _discard(self) -> None:
        held: _Held | None = getattr(self._local, "held", None)
        self._local.held = None
        if held is not None:
            held.close()

    def _dispose(self, _engine: Engine) -> None:
        self._generation += 1
        self._discard()  # this thread's at once; each other thread's at its next poll

    def close(self) -> None:
        """Close this thread's connection; the others' are closed at their next use."""
        self._dispose(self.engine)


_INHERITED: list[Any] = []  # connections a forked process inherited (see _Held.close)


class _Held:
    """One thread's connection of a PollReader; closed when discarded, or when its thread ends
    (its thread-local storage is dropped), never by another thread while in use."""

    def __init__(self, proxied: Any, connection: Any, transformer: Any, generation: int) -> None:
        self.proxied = proxied  # detached from the pool: closing it closes the connection
        self.connection = connection
        self.transformer = transformer
        self.prepared: set[bytes] = set()
        self.generation = generation
        self.pid = os.getpid()
        self.made = time.monotonic()

    def close(self) -> None:
        if self.proxied is not None and self.pid != os.getpid():
            # Made before a fork: the socket is the parent's. Closing (or finalizing) the
            # connection here would end the parent's session, so it is kept, untouched.
            _INHERITED.append(self.connection)
        elif self.proxied is not None:
            with contextlib.suppress(Exception):
                self.proxied.close()
        self.proxied = None

    def __del__(self) -> None:
        self.close()


def _succeeded(result: Any) -> Any:
    """Return a libpq result that succeeded, or raise its error."""
    if result.status not in (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK):
        message = (result.error_message or b"no result").decode("utf-8", "replace").strip()
        raise psycopg.DatabaseError(message)
    return result


def poll_etag(
    token: str, *, engine: Engine, now: datetime, reader: PollReader | None = None
) -> tuple[str, datetime | None] | None:
    """For a poll with If-None-Match: (ETag, the token's last_seen_at) of a live client feed
    with no pause on record, from one query that leaves out what only Last-Modified needs
    (POLL_STATE) and without the session; None when live_feed must decide instead (a miss,
    a therapist's feed, a pause on record). The ETag is live_feed's validator's. On
    PostgreSQL the query is POLL_STATE_LATERAL (its cheaper form there, the same values).
    With a reader (PostgreSQL), it runs on its thread's connection; else on the engine's
    pool (standalone_first).
    """
    if not isinstance(token, str) or not TOKEN_SHAPE.fullmatch(token):
        return None
    wanted = crypto.digest(token)
    poll = POLL_STATE_LATERAL if engine.dialect.name == "postgresql" else POLL_STATE
    if reader is not None:
        values = reader.first(poll, digest=wanted)
    else:
        values = standalone_first(poll, engine, digest=wanted)
    if values is None:
        return None
    _id, digest, revoked_at, last_seen_at, client_id = values[:5]
    if client_id is None or revoked_at is not None or not crypto.same(digest, wanted):
        return None
    client = values[TOKEN_WIDTH:]
    own = own_of(client)
    if own[2] is None or own[2] == "discharged":
        return None
    etag = client_etag_of(own, sources_of(client), now=now)
    return None if etag is None else (etag, last_seen_at)


class _Polled(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def last_seen_at(self) -> datetime | None: ...


POLL_RECORD_INTERVAL = timedelta(minutes=5)


def poll_due(last_seen_at: datetime | None, *, now: datetime) -> bool:
    """Return whether a poll now is to be recorded (record_poll writes)."""
    return last_seen_at is None or now - last_seen_at >= POLL_RECORD_INTERVAL


def record_poll(row: _Polled, *, now: datetime) -> bool:
    """Count fetches of a feed, writing at most once per POLL_RECORD_INTERVAL per token.

    Calendar servers poll every feed about hourly; a write (and fsync) on every poll made
    polls cost a commit each. `poll_count` therefore counts recorded polls (at most one per
    interval), and `last_seen_at` is accurate to the interval. One conditional UPDATE, so
    concurrent polls never double-count. Return whether it wrote (so there is a commit due).
    """
    if not poll_due(row.last_seen_at, now=now):
        return False
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
    return True


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


class FeedBodyCache:
    """A bounded LRU of rendered feed bodies keyed by (feed token id, ETag).

    The ETag is a function of everything the body is made of, so a body cached under the
    ETag just computed from the database is the body a render would give now (the same
    promise a 304 makes). The token is looked up, and checked live, before this is asked:
    a revoked or rotated token never reaches a cached body. Bodies stay in this process's
    memory only, at most max_entries of them and max_bytes in all.
    """

    def __init__(self, max_entries: int = 256, max_bytes: int = 32 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._bodies: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._bodies)

    def get(self, key: tuple[str, str]) -> bytes | None:
        """Return the cached body of key (marking it recently used), or None."""
        with self._lock:
            body = self._bodies.get(key)
            if body is not None:
                self._bodies.move_to_end(key)
            return body

    def put(self, key: tuple[str, str], body: bytes) -> None:
        """Keep body under key, dropping the least recently used bodies beyond the bounds."""
        if len(body) > self.max_bytes:
            return
        with self._lock:
            old = self._bodies.pop(key, None)
            self._size += len(body) - (len(old) if old is not None else 0)
            self._bodies[key] = body
            while len(self._bodies) > self.max_entries or self._size > self.max_bytes:
                _, dropped = self._bodies.popitem(last=False)
                self._size -= len(dropped)

    def clear(self) -> None:
        """Forget every cached body."""
        with self._lock:
            self._bodies.clear()
            self._size = 0


def _body_cache() -> FeedBodyCache:
    cache = current_app.extensions.get("feed_bodies")
    if cache is None:
        cache = current_app.extensions.setdefault("feed_bodies", FeedBodyCache())
    return cache


def cached_feed_body(feed: LiveFeed, *, now: datetime) -> bytes:
    """Return the feed's body: cached under (token id, ETag), else rendered and kept."""
    cache = _body_cache()
    key = (feed.id, feed.validator.etag)
    body = cache.get(key)
    if body is None:
        body = feed_body(feed.owner(), now=now)
        cache.put(key, body)
    return body


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
