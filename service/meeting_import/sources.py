"""Fetch or read a meeting feed, parse it and upsert it; refresh remembered URL feeds when due.

Feed key (DESIGN): the URL for a URL feed, the file name without its extension for a file;
inline bodies (API, dashboard upload without a name) must name their key. A re-import under
a known key reuses the feed's remembered default timezone and fellowship unless told anew.
"""

from __future__ import annotations

import gc
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import select

from service.db import db
from service.fetch import FetchError, fetch_url
from service.meeting_import.bmlt import parse_bmlt
from service.meeting_import.csvfeed import parse_csv
from service.meeting_import.detect import _looks_like_bmlt, parse_feed
from service.meeting_import.mapping import (
    ImportFailed,
    check_feed_key,
    check_timezone,
    resolve_fellowship,
)
from service.meeting_import.records import FeedError, ParseResult
from service.meeting_import.store import (
    ImportReport,
    Progress,
    find_feed,
    import_records,
    practice_id_of,
    refresh_interval,
)
from service.meeting_import.tsml import stream_tsml
from service.models import MeetingFeed, Practice

logger = logging.getLogger(__name__)

MAX_FEED_BYTES = 20 * 1024 * 1024
REFRESH_BATCH = 20  # feeds per sweep, so one tick stays bounded in time
RETRY_AFTER = timedelta(hours=1)  # a failed refresh tries again sooner than a good one
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_CONTENT_TYPES = {".csv": "text/csv", ".tsv": "text/csv", ".json": "application/json"}


def is_url(source: str) -> bool:
    """Return whether a source string is a URL (anything with a scheme) rather than a path."""
    return bool(_URL.match(source))


def default_feed_key(source: str) -> str:
    """Return the feed key a source gets when none is given: the URL, or the file's stem."""
    return source if is_url(source) else Path(source).stem


def _defaults(
    practice_id: str, key: str, default_timezone: str | None, fellowship: str | None
) -> tuple[str | None, str | None, str | None]:
    """Return (zone, directory fellowship, type table), falling back to the remembered feed."""
    zone = check_timezone(default_timezone)
    path, table = resolve_fellowship(fellowship)
    feed = find_feed(practice_id, key)
    if feed is not None:
        zone = zone or feed.default_timezone
        if path is None and feed.fellowship:
            path, table = resolve_fellowship(feed.fellowship)
    return zone, path, table


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector while one feed is parsed and upserted.

    A 10,000-meeting feed allocates a few hundred thousand dicts, lists and records, none of
    them in reference cycles, and each burst of allocations triggered collections that
    re-walked the growing, still-live feed: 15-20 % of an import's CPU, measured. Reference
    counting frees everything as before; only the cycle detector waits until the end.
    The switch is process-wide, so only whoever found it on turns it back on (an import that
    starts while another holds it off leaves it alone).
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _parse(parse: Callable[[], ParseResult]) -> ParseResult:
    try:
        return parse()
    except FeedError as exc:
        raise ImportFailed(str(exc), reason="parse") from None
    except ValueError as exc:  # a default zone or fellowship the parser refused
        raise ImportFailed(str(exc), reason="parse") from None


def _read(source: str | bytes, *, allow_private: bool) -> tuple[bytes, str | None, str | None]:
    """Return (body, content type, URL or None) for a URL, a file path or raw bytes."""
    if isinstance(source, bytes):
        return source, None, None
    if is_url(source):
        try:
            document = fetch_url(source, allow_private=allow_private, max_bytes=MAX_FEED_BYTES)
        except FetchError as exc:
            raise ImportFailed(exc.message, reason=exc.reason) from None
        return document.body, document.content_type, source
    path = Path(source)
    try:
        if path.stat().st_size > MAX_FEED_BYTES:
            raise ImportFailed(
                f"{source} is larger than {MAX_FEED_BYTES} bytes", reason="too_large"
            )
        body = path.read_bytes()
    except OSError as exc:
        raise ImportFailed(f"cannot read {source}: {exc.strerror or exc}", reason="file") from None
    return body, _CONTENT_TYPES.get(path.suffix.lower()), None


def import_source(
    *,
    practice: Practice | str,
    source: str | bytes,
    feed_key: str | None = None,
    default_timezone: str | None = None,
    fellowship: str | None = None,
    allow_private: bool,
    now: datetime,
    progress: Progress | None = None,
) -> ImportReport:
    """Fetch (URL) or read (file path, bytes) a feed, parse it and upsert it; add and flush only.

    Raises ImportFailed before anything is written when the feed cannot be fetched or parsed.
    """
    practice_id = practice_id_of(practice)
    if isinstance(source, bytes):
        key = check_feed_key(feed_key)
    else:
        key = check_feed_key(feed_key or default_feed_key(source))
    zone, path, table = _defaults(practice_id, key, default_timezone, fellowship)
    body, content_type, url = _read(source, allow_private=allow_private)
    with _collector_paused():
        result = _parse(
            partial(
                parse_feed, body, content_type=content_type, default_timezone=zone,
                fellowship=table, stream=True,
            )
        )  # fmt: skip
        del body  # the raw bytes are not needed while upserting
        return import_records(
            practice=practice_id, feed_key=key, result=result, source_url=url,
            default_timezone=zone, fellowship=path, now=now, progress=progress,
        )  # fmt: skip


def import_decoded(
    *,
    practice: Practice | str,
    data: Any,
    feed_key: str,
    default_timezone: str | None = None,
    fellowship: str | None = None,
    now: datetime,
    progress: Progress | None = None,
) -> ImportReport:
    """Import an already decoded feed: a TSML/BMLT JSON value, or CSV text (a str)."""
    practice_id = practice_id_of(practice)
    key = check_feed_key(feed_key)
    zone, path, table = _defaults(practice_id, key, default_timezone, fellowship)

    def parse() -> ParseResult:
        if isinstance(data, str):
            return parse_csv(data, default_timezone=zone, fellowship=table or "aa")
        if _looks_like_bmlt(data):
            return parse_bmlt(data, default_timezone=zone, fellowship=table or "na")
        return stream_tsml(data, default_timezone=zone, fellowship=table or "aa")

    with _collector_paused():
        return import_records(
            practice=practice_id, feed_key=key, result=_parse(parse), default_timezone=zone,
            fellowship=path, now=now, progress=progress,
        )  # fmt: skip


def _allow_private() -> bool:
    return bool(current_app.extensions["settings"].ALLOW_PRIVATE_FEED_URLS)


def import_feed(
    *,
    practice_id: str,
    url: str | None = None,
    body: bytes | None = None,
    filename: str | None = None,
    default_timezone: str | None = None,
    fellowship: str | None = None,
    feed_key: str | None = None,
    now: datetime,
) -> ImportReport:
    """Import a URL or an uploaded body (the dashboard's form); the key defaults to URL or file stem."""
    if url:
        source: str | bytes = url
    elif body is not None:
        source = body
        feed_key = feed_key or (Path(filename).stem if filename else None)
    else:
        raise ImportFailed("give a feed URL or a file")
    return import_source(
        practice=practice_id, source=source, feed_key=feed_key, default_timezone=default_timezone,
        fellowship=fellowship, allow_private=_allow_private(), now=now,
    )  # fmt: skip


def refresh_due_feeds(now: datetime, *, limit: int = REFRESH_BATCH) -> int:
    """Re-import the remembered URL feeds due at `now`; return how many were refreshed.

    Unit of work: the sweep's. Each feed runs inside its own SAVEPOINT, so a feed that fails
    (fetch, parse or database) rolls back alone and gets `last_error` and a retry in an hour,
    while the others stand; the caller (jobs.sweeps.refresh_meeting_feeds) commits once.
    """
    due = list(
        db.session.scalars(
            select(MeetingFeed)
            .where(MeetingFeed.url.is_not(None), MeetingFeed.next_refresh_at <= now)
            .order_by(MeetingFeed.next_refresh_at, MeetingFeed.id)
            .limit(limit)
        )
    )
    allow_private = _allow_private()
    refreshed = 0
    for feed in due:
        feed_id, url, key, practice_id = feed.id, feed.url, feed.key, feed.practice_id
        assert url is not None  # selected by url IS NOT NULL
        try:
            with db.session.begin_nested():
                import_source(
                    practice=practice_id, source=url, feed_key=key,
                    allow_private=allow_private, now=now,
                )  # fmt: skip
        except ImportFailed as exc:
            _failed(feed_id, exc.message, now)
        except Exception as exc:  # noqa: BLE001 - one broken feed must not stop the others
            logger.exception("refreshing meeting feed %s failed", feed_id)
            _failed(feed_id, f"internal error: {type(exc).__name__}", now)
        else:
            refreshed += 1
    return refreshed


def _failed(feed_id: str, message: str, now: datetime) -> None:
    """Record a failed refresh on the feed and schedule the retry."""
    logger.info("meeting feed %s not refreshed: %s", feed_id, message)
    feed = db.session.get(MeetingFeed, feed_id)
    if feed is not None:
        feed.last_error = message[:2000]
        feed.next_refresh_at = now + min(RETRY_AFTER, refresh_interval())
