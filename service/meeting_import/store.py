"""Upsert parsed meeting feeds into a practice's directory, one feed at a time.

Policies (DESIGN):
- Identity is (feed, slug). A record whose stored content hash matches is left untouched.
- A meeting the feed no longer lists (or lists as BMLT-unpublished) becomes `active=false`;
  its `attendance` keeps the feed's last word on *how* one attends, so `active` alone says
  "no longer listed" and a meeting that comes back needs no other repair (it is re-activated
  under its old id and counted as `updated`). A row the feed still lists but that was
  skipped this time (a typo'd day) is left as it was.
- Every live plan on a deactivated meeting raises one `meeting_inactive` alert (deduplicated
  per plan and deactivation) and is re-planned, which cancels its future check-ins.
- A feed that yields no meetings at all while its meetings are live is refused: an empty
  answer from a broken WordPress site must not deactivate a whole directory.
- Nothing here commits: the caller's unit of work does.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

from flask import current_app
from sqlalchemy import JSON, String, insert, select
from sqlalchemy.exc import DBAPIError

from service import checkins
from service.alerts import raise_alert
from service.db import bind_processor, db, new_id, new_ids
from service.events import append_event
from service.meeting_import.mapping import (
    MAX_SLUG,
    ImportFailed,
    check_feed_key,
    check_timezone,
    fellowship_for_table,
    meeting_values,
    resolve_fellowship,
    stored_slug,
)
from service.meeting_import.records import (
    SKIP_DUPLICATE_SLUG,
    SKIP_NO_TIMEZONE,
    SKIP_UNPUBLISHED,
    MeetingRecord,
    ParseResult,
    Skipped,
)
from service.models import Client, Meeting, MeetingFeed, MeetingPlan, Practice

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]  # (records handled so far, total records)

BATCH = 500
_SCHEDULE = ("day", "time", "end_time", "timezone")
_EXPANDED = re.compile(r"^(?P<base>.+)-[0-6]$")  # TSML day arrays become "{slug}-{day}"


@dataclass
class ImportReport:
    """What one import did; `as_dict()` is the API, CLI and dashboard shape."""

    feed_id: str
    feed_key: str
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    alerts: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Return {"created", "updated", "unchanged", "deactivated", "skipped": [...]}."""
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "deactivated": self.deactivated,
            "skipped": [{"slug": s.slug, "reason": s.reason} for s in self.skipped],
        }


def practice_id_of(practice: Practice | str) -> str:
    """Return the id of a Practice or pass an id through."""
    return practice if isinstance(practice, str) else practice.id


def find_feed(practice_id: str, key: str) -> MeetingFeed | None:
    """Return the practice's remembered feed with this key, if any."""
    return db.session.scalar(
        select(MeetingFeed).where(MeetingFeed.practice_id == practice_id, MeetingFeed.key == key)
    )


def refresh_interval() -> timedelta:
    """Return how long a URL feed rests between refreshes (MEETING_FEED_REFRESH_HOURS)."""
    return timedelta(hours=int(current_app.extensions["settings"].MEETING_FEED_REFRESH_HOURS))


def import_records(
    *,
    practice: Practice | str,
    feed_key: str,
    result: ParseResult,
    source_url: str | None = None,
    default_timezone: str | None,
    fellowship: str | None,
    now: datetime,
    progress: Progress | None = None,
) -> ImportReport:
    """Upsert a parsed feed into the practice's directory by (feed, slug); add and flush only."""
    practice_id = practice_id_of(practice)
    key = check_feed_key(feed_key)
    zone = check_timezone(default_timezone)
    path, _table = resolve_fellowship(fellowship)
    feed = find_feed(practice_id, key)
    # (slug, id, content_hash, active) only: no ORM objects for the unchanged majority.
    existing: dict[str, tuple[str, str | None, bool]] = {}
    if feed is not None:
        rows = db.session.execute(
            select(Meeting.slug, Meeting.id, Meeting.content_hash, Meeting.active).where(
                Meeting.feed_id == feed.id
            )
        )
        existing = {slug: (mid, digest, active) for slug, mid, digest, active in rows if slug}
    if progress is not None or db.session.get_bind().dialect.name != "postgresql":
        # The progress bar needs the record count. And only PostgreSQL inserts beside the
        # parsing (in the server's process); SQLite's inserts are this process's own work,
        # so interleaving gains nothing there: parse first, as before.
        _parse_more(result, everything=True)
    while not result.records and _parse_more(result):
        pass  # a streamed parse: up to its first record (or its end) before anything is written
    if not result.records and any(active for _id, _hash, active in existing.values()):
        raise ImportFailed(
            "the feed lists no meetings; refusing to deactivate the whole feed", reason="empty"
        )

    feed = _remember_feed(feed, practice_id, key, result, source_url, zone, path, now)
    report = ImportReport(feed_id=feed.id, feed_key=key)
    rejected: list[Skipped] = []  # reported after the parser's own skips, as they always were
    changed: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    total = len(result.records)
    with _Inserter(practice_id, feed.id, now) as inserts:
        for index, record in enumerate(_records(result), start=1):
            timezone = record.timezone or zone
            slug = record.slug if len(record.slug) <= MAX_SLUG else stored_slug(record.slug)
            if timezone is None:
                rejected.append(Skipped(slug=record.slug, reason=SKIP_NO_TIMEZONE))
            elif slug in seen:
                rejected.append(Skipped(slug=record.slug, reason=SKIP_DUPLICATE_SLUG))
            else:
                seen.add(slug)
                values = meeting_values(
                    record, timezone, path or fellowship_for_table(record.fellowship)
                )
                known = existing.get(slug)
                if known is None:
                    inserts.add(slug, values)
                elif known[1] == values["content_hash"] and known[2]:
                    report.unchanged += 1
                else:
                    changed[known[0]] = values
            if len(inserts.rows) >= BATCH:
                report.created += inserts.flush()
            if progress is not None and (index % BATCH == 0 or index == total):
                progress(index, total)
        report.created += inserts.flush()
    report.skipped = [*result.skipped, *rejected]

    report.updated = _apply_changes(changed, now)
    gone = _vanished(existing, seen, result.skipped)
    report.deactivated, report.alerts = _deactivate(gone, feed, now)
    append_event(
        "meetings.imported", now=now, practice_id=practice_id,
        subject_type="meeting_feed", subject_id=feed.id,
        payload={"feed_key": key, **report.as_dict(), "skipped": len(report.skipped)},
    )  # fmt: skip
    db.session.flush()
    logger.info(
        "feed %s: %d created, %d updated, %d unchanged, %d deactivated, %d skipped",
        feed.id, report.created, report.updated, report.unchanged, report.deactivated,
        len(report.skipped),
    )  # fmt: skip
    return report


def _parse_more(result: ParseResult, *, everything: bool = False) -> bool:
    """Parse more of a streamed feed (all of it with `everything`); False once all is parsed.

    A row never fails a parse; should one ever raise what a whole-feed parse error raises,
    it is the same ImportFailed (the caller's unit of work rolls back what was written).
    """
    try:
        if everything:
            result.finish()
            return False
        return result.parse_more()
    except ValueError as exc:  # FeedError included
        result.pending = None
        raise ImportFailed(str(exc), reason="parse") from None


def _records(result: ParseResult) -> Iterator[MeetingRecord]:
    """Yield a result's records in order, parsing a streamed feed's rows as they are needed.

    The database inserts one batch (pipeline mode) while the next rows are parsed here.
    """
    records, done = result.records, 0
    while True:
        yield from records[done:]
        done = len(records)
        if not _parse_more(result):
            return


def _remember_feed(
    feed: MeetingFeed | None,
    practice_id: str,
    key: str,
    result: ParseResult,
    source_url: str | None,
    zone: str | None,
    path: str | None,
    now: datetime,
) -> MeetingFeed:
    if feed is None:
        feed = MeetingFeed(id=new_id("mf"), practice_id=practice_id, key=key, created_at=now)
        db.session.add(feed)
    feed.format = result.format or feed.format
    if path is None:
        # The parser's own default: NA for BMLT, Meeting Guide (AA) codes for the rest.
        table = result.records[0].fellowship if result.records else None
        path = fellowship_for_table(table or ("na" if result.format == "bmlt" else "aa"))
    feed.fellowship = path
    if zone is not None:
        feed.default_timezone = zone
    # A file or inline import under a URL feed's key is a one-off snapshot: the URL stays
    # remembered and its next refresh wins.
    if source_url is not None:
        feed.url = source_url
    if feed.url is not None:
        feed.next_refresh_at = now + refresh_interval()
    feed.last_imported_at = now
    feed.last_error = None
    db.session.flush()
    return feed


class _Inserter:
    """Insert new meetings of one feed in batches, one statement per batch, no ORM objects.

    SQLite: one driver-level executemany of the compiled INSERT. Each column's bind
    processing (JSON, UTC datetimes, booleans) is done here: once for the values every row
    shares (practice, feed, timestamps, active, revision) and once per distinct `types`
    list, instead of per row and column by SQLAlchemy's executemany.
    PostgreSQL: one INSERT ... SELECT FROM ROWS FROM(json_array_elements_text(one JSON array
    per column)), since an executemany is one server-side statement per row there. The
    batches go through psycopg's pipeline mode: each is sent without waiting for its answer,
    so the server inserts one batch while the next is normalised here (the two halves of an
    import took about as long each; one after the other they added up). Leaving the `with`
    block waits for every answer and raises a failed batch's error as SQLAlchemy's own
    exception (an IntegrityError stays an IntegrityError); an error inside the block drops
    the pipeline's answers and lets that error through.
    Either way the stored rows are what `insert(Meeting.__table__)` stores
    (tests/imports/test_fast_paths.py compares them).
    """

    def __init__(self, practice_id: str, feed_id: str, now: datetime) -> None:
        self.rows: list[dict[str, Any]] = []
        self._ids: list[str] = []  # made BATCH at a time (new_ids), handed out by add()
        self._shared = {"practice_id": practice_id, "feed_id": feed_id, "active": True,
                        "created_at": now, "updated_at": now, "revision": 0}  # fmt: skip
        self._statement: tuple[str, Callable[[dict[str, Any]], Any]] | None = None
        self._shared_bound: dict[str, Any] = {}
        self._types_bound: dict[tuple[Any, ...], Any] = {}
        self._types_processor: Callable[[Any], Any] | None = None
        self._recordset: tuple[str, list[str], dict[str, Any]] | None = None
        self._pipeline: Any = None  # psycopg's pipeline, open while batches are in flight

    def __enter__(self) -> _Inserter:
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, traceback: Any) -> None:
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is None:
            return
        if exc is not None:
            pipeline.__exit__(exc_type, exc, traceback)  # logs its own error, if any
            return
        try:
            pipeline.__exit__(None, None, None)
        except Exception as error:
            raise self._wrapped(error) from None

    def add(self, slug: str, values: dict[str, Any]) -> None:
        """Queue one new meeting; `values` (from meeting_values) becomes the queued row."""
        if not self._ids:
            self._ids = new_ids("mt", BATCH)
        values["id"] = self._ids.pop()
        values["slug"] = slug
        self.rows.append(values)

    def flush(self) -> int:
        """Insert the queued rows; return how many."""
        count = len(self.rows)
        if not count:
            return 0
        connection = db.session.connection()
        if connection.dialect.name == "postgresql":
            self._flush_recordset(connection)
            return count
        if self._statement is None:
            self._prepare(connection.dialect)
        assert self._statement is not None
        sql, parameters = self._statement
        shared, bind_types = self._shared_bound, self._bind_types
        params: list[Any] = []
        for row in self.rows:
            row["types"] = bind_types(row["types"])
            row.update(shared)
            params.append(parameters(row))
        connection.exec_driver_sql(sql, params)
        self.rows.clear()
        return count

    def _prepare(self, dialect: Any) -> None:
        table = Meeting.__table__
        keys = [column.key for column in table.columns]
        compiled = insert(table).compile(dialect=dialect, column_keys=keys)
        if compiled.positional:  # a tuple in the statement's order (sqlite's qmark)
            parameters: Callable[[dict[str, Any]], Any] = itemgetter(*compiled.positiontup or ())
        else:  # a named paramstyle: the row itself
            parameters = dict
        self._statement = (compiled.string, parameters)
        for key, value in self._shared.items():
            process = bind_processor(table.c[key], dialect)
            self._shared_bound[key] = value if process is None else process(value)
        self._types_processor = bind_processor(table.c.types, dialect)

    def _flush_recordset(self, connection: Any) -> None:
        if self._recordset is None:
            self._recordset = self._recordset_statement(connection.dialect)
        sql, varying, shared = self._recordset
        rows, dumps = self.rows, json.dumps
        # One JSON array per column: no key repeated per row, and json_array_elements_text
        # reads it more cheaply than json_to_recordset reads an array of objects.
        params = {f"c_{key}": dumps(list(map(itemgetter(key), rows))) for key in varying}
        params.update(shared)
        self.rows.clear()
        driver = connection.connection.driver_connection
        try:
            if self._pipeline is None:
                self._pipeline = driver.pipeline()
                self._pipeline.__enter__()
            driver.execute(sql, params)  # sent; its answer is read later
        except Exception as error:
            raise self._wrapped(error) from None

    def _wrapped(self, error: Exception) -> Exception:
        """Return a driver error as SQLAlchemy's exception for it; anything else as it is."""
        connection = db.session.connection()
        dialect = connection.dialect
        dbapi_error = dialect.loaded_dbapi.Error
        if not isinstance(error, dbapi_error):
            return error
        if dialect.is_disconnect(error, connection.connection.dbapi_connection, None):
            connection.invalidate(error)
        statement = self._recordset[0] if self._recordset else None
        return DBAPIError.instance(statement, None, error, dbapi_error, dialect=dialect)

    def _recordset_statement(self, dialect: Any) -> tuple[str, list[str], dict[str, Any]]:
        """Return (INSERT SQL, the columns sent as JSON arrays, the shared values bound)."""
        table = Meeting.__table__
        quote = dialect.identifier_preparer.quote
        varying = [column.key for column in table.columns if column.key not in self._shared]

        def sql_type(key: str) -> str:
            # Strings stay TEXT so that the INSERT's own assignment cast checks lengths
            # (an explicit ::VARCHAR(n) would cut silently).
            column_type = table.c[key].type
            return "TEXT" if isinstance(column_type, String) else column_type.compile(dialect)

        def elements(key: str) -> str:
            if isinstance(table.c[key].type, JSON):  # each element is the column's JSON value
                return f"json_array_elements(%(c_{key})s::json)"
            return f"json_array_elements_text(%(c_{key})s::json)"

        def picked(key: str) -> str:
            kind = sql_type(key)
            return f"r.{quote(key)}" if kind in ("TEXT", "JSON") else f"r.{quote(key)}::{kind}"

        columns = ", ".join(quote(key) for key in [*varying, *self._shared])
        # Only the table's own names and types are formatted in; every value is bound.
        values = ", ".join(
            [*map(picked, varying), *(f"%({key})s::{sql_type(key)}" for key in self._shared)]
        )
        # ROWS FROM zips the column arrays back into rows, in order.
        arrays = ", ".join(map(elements, varying))
        names = ", ".join(map(quote, varying))
        sql = f"INSERT INTO {quote(table.name)} ({columns}) SELECT {values} "  # noqa: S608
        sql += f"FROM ROWS FROM ({arrays}) AS r({names})"
        params: dict[str, Any] = {}
        for key, value in self._shared.items():
            process = bind_processor(table.c[key], dialect)
            params[key] = value if process is None else process(value)
        return sql, varying, params

    def _bind_types(self, types: list[str]) -> Any:
        process = self._types_processor
        if process is None:
            return types
        key = tuple(types)
        bound = self._types_bound.get(key)
        if bound is None:
            bound = self._types_bound[key] = process(types)
        return bound


def _batches(items: Iterable[str]) -> Iterable[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _live_plans(meeting_ids: list[str]) -> list[MeetingPlan]:
    return list(
        db.session.scalars(
            select(MeetingPlan).where(
                MeetingPlan.meeting_id.in_(meeting_ids), MeetingPlan.archived_at.is_(None)
            )
        )
    )


def _apply_changes(changed: dict[str, dict[str, Any]], now: datetime) -> int:
    """Write changed and returning meetings; re-plan plans whose meeting moved or came back."""
    for ids in _batches(changed):
        moved: list[str] = []
        for meeting in db.session.scalars(select(Meeting).where(Meeting.id.in_(ids))):
            values = changed[meeting.id]
            if not meeting.active or any(getattr(meeting, k) != values[k] for k in _SCHEDULE):
                moved.append(meeting.id)
            for column, value in values.items():
                setattr(meeting, column, value)
            meeting.active = True
            meeting.updated_at = now
            meeting.revision = (meeting.revision or 0) + 1
        db.session.flush()
        if moved:
            for plan in _live_plans(moved):
                checkins.replan_source("meeting_plan", plan.id, now=now)
    return len(changed)


def _vanished(
    existing: dict[str, tuple[str, str | None, bool]], seen: set[str], skipped: list[Skipped]
) -> list[str]:
    """Return the ids of live meetings the feed no longer lists (or lists as unpublished)."""
    still_listed = {s.slug for s in skipped if s.slug and s.reason != SKIP_UNPUBLISHED}
    gone = []
    for slug, (meeting_id, _hash, active) in existing.items():
        if not active or slug in seen:
            continue
        expanded = _EXPANDED.match(slug)
        if slug in still_listed or (expanded and expanded["base"] in still_listed):
            continue
        gone.append(meeting_id)
    return gone


def _deactivate(meeting_ids: list[str], feed: MeetingFeed, now: datetime) -> tuple[int, int]:
    """Deactivate meetings; alert each live plan's therapist once and re-plan the plan."""
    alerts = 0
    occurrence = now.strftime("%Y-%m-%dT%H:%M")
    for ids in _batches(meeting_ids):
        meetings = {m.id: m for m in db.session.scalars(select(Meeting).where(Meeting.id.in_(ids)))}
        for meeting in meetings.values():
            meeting.active = False
            meeting.updated_at = now
            meeting.revision = (meeting.revision or 0) + 1
            append_event(
                "meeting.deactivated", now=now, practice_id=meeting.practice_id,
                subject_type="meeting", subject_id=meeting.id,
                payload={"feed_id": feed.id, "slug": meeting.slug, "reason": "not_in_feed"},
            )  # fmt: skip
        db.session.flush()
        for plan in _live_plans(ids):
            client = db.session.get(Client, plan.client_id)
            if client is None or client.status == "discharged":
                continue
            meeting = meetings[plan.meeting_id]
            alert = raise_alert(
                kind="meeting_inactive", client=client, source_type="meeting_plan",
                source_id=plan.id, occurrence=occurrence, now=now,
                detail={"meeting_id": meeting.id, "meeting_name": meeting.name,
                        "feed_id": feed.id, "feed_key": feed.key},
            )  # fmt: skip
            alerts += alert is not None
            checkins.replan_source("meeting_plan", plan.id, now=now)
    return len(meeting_ids), alerts
