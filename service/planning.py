"""Planning: expand meeting plans and commitments into check-in rows ahead of time."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from typing import Any

from sqlalchemy import select

from service.db import bind_processor, binder, db, id_in, insert_new_rows, new_ids
from service.escalation import occurrence_label
from service.events import (
    append_events,
    append_serialized_event_rows,
    bind_values,
)
from service.models import (
    CheckIn,
    Client,
    Commitment,
    Event,
    Meeting,
    MeetingPlan,
    SupportContact,
)
from service.quiet_hours import QuietHours, close_time, defer_question, place_reminder
from service.schedule import (
    Occurrence,
    expand,
    expand_weekly_meeting,
    get_zone,
    parse_local_time,
    resolve_local,
)
from service.serialize import iso

logger = logging.getLogger(__name__)

Source = MeetingPlan | Commitment


@dataclass(frozen=True)
class Slot:
    """One check-in a source should have: when it happens, is asked, closes, is reminded."""

    occurrence: datetime
    event_at: datetime
    due_at: datetime
    closes_at: datetime
    reminder_at: datetime | None
    verifier_contact_id: str | None


@dataclass(frozen=True, slots=True)
class MeetingFacts:
    """What planning reads of a meeting (the planning sweep's stand-in for the entity)."""

    active: bool
    day: int | None
    time: str | None
    end_time: str | None
    timezone: str


@dataclass(frozen=True, slots=True)
class ClientFacts:
    """What the sweeps read of a client: planning's and the send gate's stand-in for the entity.

    `phone` is read by the gate only (planning leaves it None).
    """

    id: str
    status: str
    paused_until: date | None
    timezone: str
    quiet_start: str
    quiet_end: str
    phone: str | None = None


@dataclass(frozen=True, slots=True)
class SourceFacts:
    """What planning reads of a meeting plan or commitment, from one Core row.

    The planning sweep reads thousands of sources; plain rows cost a fraction of entities.
    `verifier_timezone` is the verifier contact's own zone (None: the client's).
    """

    source_type: str
    id: str
    practice_id: str
    client_id: str
    verifier_contact_id: str | None
    starts_on: date
    paused_until: date | None
    archived_at: datetime | None
    planned_until: datetime | None
    created_at: datetime
    verifier_timezone: str | None
    # Meeting plans
    meeting: MeetingFacts | None = None
    remind_minutes_before: int = 0
    confirm_window_hours: int = 0
    # Commitments
    kind: str = ""
    rrule: str = ""
    time: str | None = None
    grace_minutes: int = 0
    active: bool = True

    @classmethod
    def from_row(cls, source_type: str, row: Any) -> SourceFacts:
        """Build from a row of `horizon.due_sources_stmt` (meeting columns `meeting_*`).

        Values are taken by position (one itemgetter per row layout): a SQLAlchemy row's
        attribute lookup costs about a microsecond a column, and sweeps read thousands.
        """
        return facts_reader(source_type, row._fields)(row)


# What SourceFacts.from_row reads, in field order, per source type (before / after `meeting`).
_FACTS_HEAD = ("id", "practice_id", "client_id", "verifier_contact_id", "starts_on",
               "paused_until", "archived_at", "planned_until", "created_at", "verifier_timezone")  # fmt: skip
_FACTS_MEETING = ("meeting_active", "meeting_day", "meeting_time", "meeting_end_time",
                  "meeting_timezone")  # fmt: skip
_FACTS_PLAN_TAIL = ("remind_minutes_before", "confirm_window_hours")
_FACTS_COMMITMENT_TAIL = ("kind", "rrule", "time", "grace_minutes", "active")


@functools.lru_cache(maxsize=64)
def facts_reader(source_type: str, fields: tuple[str, ...]) -> Callable[[Any], SourceFacts]:
    """Return row -> SourceFacts (`SourceFacts.from_row`) for rows whose columns are `fields`."""
    position = {name: index for index, name in enumerate(fields)}
    new = SourceFacts
    if source_type == "meeting_plan":
        take = itemgetter(
            *(position[n] for n in (*_FACTS_HEAD, *_FACTS_MEETING, *_FACTS_PLAN_TAIL))
        )
        head, meeting_end = len(_FACTS_HEAD), len(_FACTS_HEAD) + len(_FACTS_MEETING)

        def read_plan(row: Any) -> SourceFacts:
            values = take(row)
            return new(
                source_type,
                *values[:head],
                _meeting_facts(*values[head:meeting_end]),
                *values[meeting_end:],
            )

        return read_plan
    take = itemgetter(*(position[n] for n in (*_FACTS_HEAD, *_FACTS_COMMITMENT_TAIL)))
    head = len(_FACTS_HEAD)

    def read_commitment(row: Any) -> SourceFacts:
        values = take(row)
        return new(source_type, *values[:head], None, 0, 0, *values[head:])

    return read_commitment


_COMMON_COLUMNS = ("id", "practice_id", "client_id", "verifier_contact_id", "starts_on",
                   "paused_until", "archived_at", "planned_until", "created_at")  # fmt: skip
_SOURCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "meeting_plan": (*_COMMON_COLUMNS, "meeting_id", "remind_minutes_before",
                     "confirm_window_hours"),
    "commitment": (*_COMMON_COLUMNS, "kind", "rrule", "time", "grace_minutes", "active"),
}  # fmt: skip
_MEETING_COLUMNS = ("active", "day", "time", "end_time", "timezone")


def source_facts_select(model: type[Source]) -> tuple[list[Any], Any]:
    """Return the columns and FROM clause whose rows `SourceFacts.from_row` reads.

    The source's own columns, its meeting's as `meeting_*` (meeting plans) and its verifier
    contact's zone as `verifier_timezone`; callers add their own columns and conditions.
    """
    table = model.__table__
    contacts = SupportContact.__table__
    source_type = "meeting_plan" if model is MeetingPlan else "commitment"
    columns: list[Any] = [table.c[name] for name in _SOURCE_COLUMNS[source_type]]
    columns.append(contacts.c.timezone.label("verifier_timezone"))
    joined = table
    if model is MeetingPlan:
        meetings = Meeting.__table__
        columns += [meetings.c[name].label(f"meeting_{name}") for name in _MEETING_COLUMNS]
        joined = joined.join(meetings, meetings.c.id == table.c.meeting_id)
    joined = joined.outerjoin(contacts, contacts.c.id == table.c.verifier_contact_id)
    return columns, joined


@functools.lru_cache(maxsize=1024)
def _meeting_facts(
    active: bool, day: int | None, time: str | None, end_time: str | None, timezone: str
) -> MeetingFacts:
    return MeetingFacts(bool(active), day, time, end_time, timezone)


def _is_plan(source: Source | SourceFacts) -> bool:
    if type(source) is SourceFacts:
        return source.source_type == "meeting_plan"
    return isinstance(source, MeetingPlan)


def load_source(source_type: str, source_id: str) -> Source | None:
    """Return the meeting plan or commitment a check-in comes from."""
    model = MeetingPlan if source_type == "meeting_plan" else Commitment
    return db.session.get(model, source_id)


def source_type_of(source: Source) -> str:
    """Return "meeting_plan" or "commitment" for a source row."""
    return "meeting_plan" if _is_plan(source) else "commitment"


def not_plannable(source: Source, client: Client) -> str | None:
    """Return why a source plans nothing at all (archived, inactive …), or None."""
    if client.status == "discharged":
        return "client_discharged"
    if source.archived_at is not None:
        return "archived"
    if not _is_plan(source):
        if not source.active:
            return "inactive"
        if source.kind == "meeting_quota" or not source.time:
            return "no_prompts"
        return None
    meeting = source.meeting
    if not meeting.active or meeting.day is None or not meeting.time:
        return "meeting_inactive"
    return None


def paused_reason(source: Source, client: Client, occurrence: datetime) -> str | None:
    """Return why one occurrence is paused, or None; `paused_until` is the first day back."""
    day = occurrence.date()
    if source.paused_until is not None and day < source.paused_until:
        return "paused"
    if client.status == "paused" and (client.paused_until is None or day < client.paused_until):
        return "client_paused"
    return None


def quiet_hours_of(client: Client) -> QuietHours:
    """Return the client's quiet hours (a contact verifier shares them, in their own zone)."""
    return _quiet_hours(client.quiet_start, client.quiet_end)


@functools.lru_cache(maxsize=256)
def _quiet_hours(start: str, end: str) -> QuietHours:
    return QuietHours.from_strings(start, end)


def verifier_zone(client: Client, contact: SupportContact | None) -> str:
    """Return the zone a verifier lives in: the contact's own, else the client's."""
    return (contact.timezone if contact is not None else None) or client.timezone


def desired_slots(
    source: Source, client: Client, lo: datetime, hi: datetime, *, memo: Memo | None = None
) -> list[Slot]:
    """List the check-ins a source should have for occurrences in [lo, hi).

    `memo` (one dict per planning batch) shares the pure work between sources that ask the
    same thing: the expansion of one meeting's week, the quiet-hours placement of one time.
    """
    if not_plannable(source, client) is not None or hi <= lo:
        return []
    memo = {} if memo is None else memo
    quiet = quiet_hours_of(client)
    if type(source) is SourceFacts:
        zone = source.verifier_timezone or client.timezone
        # Sources asking the same question (a shared meeting or rule, zone, quiet hours,
        # timing, pauses) get the same slots but for their verifier: computed once a batch.
        key = _slots_key(source, client, lo, hi, zone, quiet)
        timings = memo.get(key)
        if timings is None:
            timings = memo[key] = [
                (slot.occurrence, slot.event_at, slot.due_at, slot.closes_at, slot.reminder_at)
                for slot in _slots(source, client, lo, hi, memo, zone, quiet)
            ]
        contact = source.verifier_contact_id
        return [Slot(*timing, contact) for timing in timings]
    contact = (
        db.session.get(SupportContact, source.verifier_contact_id)
        if source.verifier_contact_id
        else None
    )
    return _slots(source, client, lo, hi, memo, verifier_zone(client, contact), quiet)


def _slots_key(
    source: SourceFacts,
    client: ClientFacts,
    lo: datetime,
    hi: datetime,
    zone: str,
    quiet: QuietHours,
) -> tuple[object, ...]:
    """Everything but the verifier that `_slots` of a `SourceFacts` depends on.

    `created_at` matters only past `lo` (every occurrence is at or after `lo`); a meeting
    plan's start date only as `_occurrences` clamps it.
    """
    created = source.created_at if source.created_at > lo else None
    paused = (source.paused_until, client.status, client.paused_until)
    if source.source_type == "meeting_plan":
        return (
            "slots:meeting", source.meeting, max(source.starts_on, _weekly_start(lo)),
            source.remind_minutes_before, source.confirm_window_hours, client.timezone,
            zone, quiet, lo, hi, created, paused,
        )  # fmt: skip
    return (
        "slots:commitment", source.rrule, source.time, source.starts_on, source.grace_minutes,
        client.timezone, zone, quiet, lo, hi, created, paused,
    )  # fmt: skip


def _slots(
    source: Source,
    client: Client,
    lo: datetime,
    hi: datetime,
    memo: Memo,
    zone: str,
    quiet: QuietHours,
) -> list[Slot]:
    """`desired_slots` once the source is plannable and its verifier's zone known."""
    is_plan = _is_plan(source)
    slots = []
    for occ in _occurrences(source, client, lo, hi, memo):
        if occ.at < source.created_at or paused_reason(source, client, occ.local):
            continue
        if is_plan:
            meeting = source.meeting
            key: tuple[object, ...] = (
                "meeting", meeting.end_time, meeting.timezone, occ.local, occ.at,
                source.remind_minutes_before, source.confirm_window_hours, client.timezone,
                quiet, zone,
            )  # fmt: skip
            timing = memo.get(key)
            if timing is None:
                timing = memo[key] = _meeting_timing(source, client, occ, zone, quiet)
        else:
            key = ("commitment", occ.at, zone, quiet, source.grace_minutes)
            timing = memo.get(key)
            if timing is None:
                # Commitments get no reminder: the question at the promised time is the
                # nudge, and a second text a day would eat into SMS_DAILY_CAP.
                due_at = defer_question(occ.at, zone, quiet)
                timing = memo[key] = (
                    due_at,
                    close_time(due_at, grace_minutes=source.grace_minutes),
                    None,
                )
        slots.append(Slot(occ.local, occ.at, *timing, source.verifier_contact_id))
    return slots


# Per-batch results of pure functions, keyed by everything they depend on.
Memo = dict[tuple[object, ...], Any]
# A weekly rule on a fixed day has no phase, so its start may be moved to any day before
# the window without changing what falls inside: this far before `lo` is safely before it.
_WEEKLY_START_FLOOR = timedelta(days=8)


def _weekly_start(lo: datetime) -> date:
    return (lo - _WEEKLY_START_FLOOR).date()


def _occurrences(
    source: Source, client: Client, lo: datetime, hi: datetime, memo: Memo
) -> list[Occurrence]:
    """Expand a source's rule over [lo, hi), once per distinct rule in a batch."""
    if _is_plan(source):
        meeting: Meeting = source.meeting
        starts_on = max(source.starts_on, _weekly_start(lo))
        key: tuple[object, ...] = (
            "weekly",
            meeting.day,
            meeting.time,
            meeting.timezone,
            starts_on,
            lo,
            hi,
        )
        found = memo.get(key)
        if found is None:
            found = memo[key] = expand_weekly_meeting(
                meeting.day, parse_local_time(meeting.time), meeting.timezone, starts_on, lo, hi
            )
        return found
    key = ("rrule", source.rrule, source.time, client.timezone, source.starts_on, lo, hi)
    found = memo.get(key)
    if found is None:
        found = memo[key] = expand(
            source.rrule, parse_local_time(source.time), client.timezone, source.starts_on, lo, hi
        )
    return found


def _meeting_timing(
    source: MeetingPlan, client: Client, occ: Occurrence, zone: str, quiet: QuietHours
) -> tuple[datetime, datetime, datetime | None]:
    """Return (due_at, closes_at, reminder_at) of one meeting occurrence."""
    natural_due = _meeting_end(source.meeting, occ.local, occ.at)
    reminder_at = None
    if source.remind_minutes_before > 0:
        wanted = occ.at - timedelta(minutes=source.remind_minutes_before)
        reminder_at = place_reminder(wanted, occ.at, client.timezone, quiet)
    due_at = defer_question(natural_due, zone, quiet)
    closes_at = close_time(due_at, confirm_window_hours=source.confirm_window_hours)
    return due_at, closes_at, reminder_at


def _meeting_end(meeting: Meeting, local_start: datetime, start: datetime) -> datetime:
    """Return when one occurrence of a meeting ends (end_time, else an hour after it starts)."""
    if not meeting.end_time:
        return start + timedelta(hours=1)
    end_local = datetime.combine(local_start.date(), parse_local_time(meeting.end_time))
    if end_local <= local_start:
        end_local += timedelta(days=1)  # ends after midnight
    return resolve_local(end_local, get_zone(meeting.timezone))


def sync_source(
    source: Source, client: Client, lo: datetime, hi: datetime, *, now: datetime
) -> int:
    """Make the source's check-ins in [lo, hi) match its schedule; return how many were created.

    Existing rows are revised only while they are still in the future and unanswered:
    moved or dropped occurrences are cancelled, cancelled ones wanted again are revived.
    """
    return sync_sources([(source, client, lo)], hi, now=now)


def sync_sources(
    batch: Sequence[tuple[Source, Client, datetime]], hi: datetime, *, now: datetime
) -> int:
    """`sync_source` for many (source, client, lo) at once; return how many were created.

    A few queries per batch instead of several per source: the existing check-ins of all the
    sources in one SELECT, the new ones in one INSERT … ON CONFLICT DO NOTHING, and their
    events in one INSERT, all in the caller's transaction. The unique (source, occurrence)
    key stays the guard: a row another writer already planned is skipped, not duplicated.
    """
    existing = _existing_rows(batch, hi)
    events: list[dict[str, object]] = []
    new_rows: list[dict[str, object]] = []
    plans: list[tuple[Source, str, list[dict[str, object]]]] = []
    memo: Memo = {}
    for source, client, lo in batch:
        source_type = source_type_of(source)
        slots = {slot.occurrence: slot for slot in desired_slots(source, client, lo, hi, memo=memo)}
        rows = {
            row.occurrence: row
            for row in existing.get((source_type, source.id), ())
            if row.event_at >= lo
        }
        reason = not_plannable(source, client) if rows else None
        for occurrence, row in rows.items():
            if row.event_at <= now or row.status not in ("scheduled", "cancelled"):
                continue  # the past and the answered are history
            slot = slots.get(occurrence)
            if slot is None and row.status == "scheduled":
                why = reason or paused_reason(source, client, occurrence) or "rescheduled"
                events.append(_cancel(row, why, now))
            elif slot is not None:
                event = _revise(row, slot, now)
                if event is not None:
                    events.append(event)
        wanted = [
            _new_row(source, source_type, slot, now)
            for occurrence, slot in slots.items()
            if occurrence not in rows
        ]
        new_rows.extend(wanted)
        plans.append((source, source_type, wanted))
    # Ids are time-ordered only to the millisecond: sorted, they follow the order the rows
    # were made in (as ids made one INSERT apart did), which is what listings page by.
    for values, row_id in zip(new_rows, sorted(new_ids("ci", len(new_rows))), strict=True):
        values["id"] = row_id
    # Cancellations and revivals first, then the planned rows' events: the order made in.
    append_events(events)
    inserted = _write_planned(new_rows, now)
    created = 0
    for source, source_type, wanted in plans:
        for values in wanted:
            if values["id"] not in inserted:
                logger.info(
                    "planning: %s %s already planned by another writer", source_type, source.id
                )
                continue
            created += 1
    return created


def _existing_rows(
    batch: Sequence[tuple[Source, Client, datetime]], hi: datetime
) -> dict[tuple[str, str], list[CheckIn]]:
    """Load the check-ins of the batch's sources from the earliest `lo` up to `hi`."""
    by_type: dict[str, list[str]] = {}
    lows = [lo for _source, _client, lo in batch if lo < hi]
    if not lows:
        return {}
    for source, _client, lo in batch:
        if lo < hi:
            by_type.setdefault(source_type_of(source), []).append(source.id)
    found: dict[tuple[str, str], list[CheckIn]] = {}
    # What the ORM query would flush first, so the probe below sees the same rows.
    db.session.flush()
    for source_type, ids in by_type.items():
        # A sweep finds none past the watermarks it claimed: a Core probe says so without
        # loading (or, first in a process, configuring) the ORM; rows found load as entities.
        if not _any_rows(source_type, ids, min(lows), hi):
            continue
        stmt = select(CheckIn).where(*_existing_conditions(source_type, ids, min(lows), hi))
        for row in db.session.scalars(stmt):
            found.setdefault((row.source_type, row.source_id), []).append(row)
    return found


def _existing_conditions(
    source_type: str, ids: list[str], lo: datetime, hi: datetime
) -> tuple[Any, ...]:
    """The sources' check-ins with their instant in [lo, hi), as WHERE conditions."""
    table = CheckIn.__table__
    return (
        table.c.source_type == source_type,
        id_in(table.c.source_id, ids),
        # The local occurrence is within a UTC offset of its instant in any zone;
        # bounding it too lets the unique (source, occurrence) index range-scan.
        table.c.occurrence >= _naive(lo) - _OCCURRENCE_MARGIN,
        table.c.occurrence < _naive(hi) + _OCCURRENCE_MARGIN,
        table.c.event_at >= lo,
        table.c.event_at < hi,
    )


def _any_rows(source_type: str, ids: list[str], lo: datetime, hi: datetime) -> bool:
    """Report whether any of the sources has a check-in with its instant in [lo, hi).

    PostgreSQL probes each source's own range of the unique (source, occurrence) index (a
    LATERAL per id): a bitmap scan of every source's occurrences in the window, which the
    planner prefers for a long id array, grows with the population instead of the batch.
    SQLite and PostgreSQL run `_existing_conditions` as fixed driver SQL, values bound as
    their columns bind them: nothing built or compiled per batch. PostgreSQL's id array
    goes in binary (a text array literal of 1,000 ids costs psycopg ~2.6 ms to write out,
    the binary array ~0.5 ms).
    """
    dialect = db.session.get_bind().dialect
    probe = _PROBES.get(dialect.name)
    if probe is None:
        conditions = _existing_conditions(source_type, ids, lo, hi)
        stmt = select(CheckIn.__table__.c.id).where(*conditions).limit(1)
        return db.session.execute(stmt).first() is not None
    conn = db.session.connection()
    table = CheckIn.__table__
    occurrence = binder(table.c.occurrence, dialect)
    instant = binder(table.c.event_at, dialect)
    found = conn.exec_driver_sql(
        probe,
        {
            "source_type": source_type,
            "ids": json.dumps(ids) if dialect.name == "sqlite" else ids,
            "occurrence_lo": occurrence(_naive(lo) - _OCCURRENCE_MARGIN),
            "occurrence_hi": occurrence(_naive(hi) + _OCCURRENCE_MARGIN),
            "lo": instant(lo),
            "hi": instant(hi),
        },
    )
    return found.first() is not None


_PROBES = {
    "sqlite": (
        "SELECT checkins.id FROM checkins WHERE checkins.source_type = :source_type"
        " AND checkins.source_id IN (SELECT value FROM json_each(:ids))"
        " AND checkins.occurrence >= :occurrence_lo AND checkins.occurrence < :occurrence_hi"
        " AND checkins.event_at >= :lo AND checkins.event_at < :hi LIMIT 1"
    ),
    "postgresql": """
    SELECT 1 FROM unnest(%(ids)b::varchar[]) AS source (id)
    CROSS JOIN LATERAL (
      SELECT 1 FROM checkins
       WHERE checkins.source_type = %(source_type)s AND checkins.source_id = source.id
         AND checkins.occurrence >= %(occurrence_lo)s::timestamp
         AND checkins.occurrence < %(occurrence_hi)s::timestamp
         AND checkins.event_at >= %(lo)s::timestamptz AND checkins.event_at < %(hi)s::timestamptz
       LIMIT 1) AS hit
    LIMIT 1
    """,
}


# How far a check-in's local occurrence can lie from its instant (UTC): its zone's UTC offset,
# -12 h … +14 h. A wall time in a DST gap does not widen that: `resolve_local` reads it with
# the offset in force before the gap, so occurrence - instant is still a real offset. One
# hour to spare. Not days: the probe and the existing-rows query read every index entry of a
# source in [lo - margin, hi + margin) and fetch its row to test `event_at`, so a 3-day
# margin fetched ~3 past rows per daily commitment where 15 h fetches fewer than one.
_OCCURRENCE_MARGIN = timedelta(hours=15)


def _naive(instant: datetime) -> datetime:
    return instant.astimezone(UTC).replace(tzinfo=None)


# Ids per IN list: well inside SQLite's and PostgreSQL's bound-parameter limits.
IN_CHUNK = 500
# Rows per INSERT statement of new check-ins (each runs as multi-row VALUES batches).
INSERT_CHUNK = 1000
# Rows per PostgreSQL statement of new check-ins and their events (arrays: one parameter each).
PG_INSERT_CHUNK = 5000


def _cancel(row: CheckIn, why: str, now: datetime) -> dict[str, object]:
    row.status = "cancelled"
    row.skip_reason = why
    row.updated_at = now
    return checkin_event_values("checkin.cancelled", row, now, {"reason": why})


def _revise(row: CheckIn, slot: Slot, now: datetime) -> dict[str, object] | None:
    revived = row.status == "cancelled"
    changes = {
        "event_at": slot.event_at,
        "due_at": slot.due_at,
        "closes_at": slot.closes_at,
        "verifier_contact_id": slot.verifier_contact_id,
    }
    if row.reminder_sent_at is None:
        changes["reminder_at"] = slot.reminder_at
    if revived:
        changes.update(status="scheduled", skip_reason=None, prompt_code=None)
    if all(getattr(row, key) == value for key, value in changes.items()):
        return None
    for key, value in changes.items():
        setattr(row, key, value)
    row.updated_at = now
    if revived:
        return checkin_event_values(
            "checkin.planned", row, now, {"revived": True, "due_at": iso(slot.due_at)}
        )
    return None


def _new_row(source: Source, source_type: str, slot: Slot, now: datetime) -> dict[str, object]:
    return {
        "id": None,  # set by sync_sources
        "practice_id": source.practice_id,
        "client_id": source.client_id,
        "source_type": source_type,
        "source_id": source.id,
        "occurrence": slot.occurrence,
        "event_at": slot.event_at,
        "due_at": slot.due_at,
        "closes_at": slot.closes_at,
        "reminder_at": slot.reminder_at,
        "verifier_contact_id": slot.verifier_contact_id,
        "status": "scheduled",
        "created_at": now,
        "updated_at": now,
    }


def _write_planned(rows: list[dict[str, object]], now: datetime) -> set[str]:
    """Insert new check-ins and a `checkin.planned` event for each one written; return its ids.

    ON CONFLICT DO NOTHING on the unique key instead of a savepoint per row: a concurrent
    planner that wrote the same occurrence costs that row only (and gets no event), and on
    PostgreSQL the INSERT waits for that planner's transaction to end before deciding, as a
    savepoint did. Rows go in key order, so two writers meeting on several keys take them
    in one order; events go in id order, the order the rows were made in.

    PostgreSQL: one statement per chunk (arrays unnested, the events inserted from the
    check-ins' RETURNING). SQLite: the driver's executemany of values bound through the
    columns' own types. Both store exactly what `_write_planned_generic` does.
    """
    if not rows:
        return set()
    rows = sorted(rows, key=_row_key)
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        return _write_planned_postgresql(rows, now)
    if dialect == "sqlite":
        return _write_planned_sqlite(rows, now)
    return _write_planned_generic(rows, now)


def _row_key(row: Mapping[str, object]) -> tuple[object, ...]:
    return row["source_type"], row["source_id"], row["occurrence"]


def _planned_event(values: Mapping[str, object], now: datetime) -> dict[str, object]:
    return _event_values("checkin.planned", values, now, {"due_at": iso(values["due_at"])})  # type: ignore[arg-type]


def _write_planned_generic(rows: list[dict[str, object]], now: datetime) -> set[str]:
    """`_write_planned` through SQLAlchemy's INSERT and `append_events` (the reference)."""
    rows = sorted(rows, key=_row_key)
    inserted = insert_new_rows(
        CheckIn.__table__, rows, ["source_type", "source_id", "occurrence"], chunk=INSERT_CHUNK
    )
    append_events([_planned_event(v, now) for v in sorted(rows, key=_id_of) if v["id"] in inserted])
    return inserted


def _id_of(row: Mapping[str, object]) -> str:
    return row["id"]  # type: ignore[return-value]


# Columns of a new check-in, in the order `_write_planned`'s statements bind them.
_NEW_COLUMNS = (
    "id", "practice_id", "client_id", "source_type", "source_id", "occurrence", "event_at",
    "due_at", "closes_at", "reminder_at", "verifier_contact_id", "status", "created_at",
    "updated_at",
)  # fmt: skip


def _bound_columns(rows: list[dict[str, object]], dialect: Any) -> list[list[object]]:
    """Each `_NEW_COLUMNS` column of `rows`, bound through the column's type as SQLAlchemy does.

    Converted once per distinct value: rows share their few instants (meeting times, `now`).
    """
    table = CheckIn.__table__
    columns = []
    for name in _NEW_COLUMNS:
        values = [row[name] for row in rows]
        process = bind_processor(table.c[name], dialect)
        columns.append(bind_values(process, values))
    return columns


_SQLITE_INSERT = (
    "INSERT INTO checkins (id, practice_id, client_id, source_type, source_id, occurrence,"
    " event_at, due_at, closes_at, reminder_at, verifier_contact_id, status, created_at,"
    " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (source_type, source_id, occurrence) DO NOTHING"
)


def _write_planned_sqlite(rows: list[dict[str, object]], now: datetime) -> set[str]:
    conn = db.session.connection()
    db.session.flush()
    bound = list(zip(*_bound_columns(rows, conn.dialect), strict=True))
    count = 0
    for start in range(0, len(bound), INSERT_CHUNK):
        count += conn.exec_driver_sql(_SQLITE_INSERT, bound[start : start + INSERT_CHUNK]).rowcount
    ids = [row["id"] for row in rows]
    if count == len(ids):
        inserted = set(ids)
    else:
        table = CheckIn.__table__
        inserted = set()
        for start in range(0, len(ids), IN_CHUNK):
            found = select(table.c.id).where(id_in(table.c.id, ids[start : start + IN_CHUNK]))
            inserted.update(db.session.scalars(found))
    written = [values for values in sorted(rows, key=_id_of) if values["id"] in inserted]
    serialize = getattr(conn.dialect, "_json_serializer", None) or json.dumps
    events = [
        ("checkin.planned", values["practice_id"], values["client_id"], "checkin", values["id"],
         payload, now)
        for values, payload in zip(written, _planned_payloads(written, serialize), strict=True)
    ]  # fmt: skip
    append_serialized_event_rows(events)
    return inserted  # type: ignore[return-value]


def _planned_payloads(rows: list[dict[str, object]], serialize: Any) -> list[str]:
    """Each row's `checkin.planned` payload (`_planned_event`'s) as `serialize` writes it.

    With json.dumps (the default), the text is put together from each value's JSON string,
    encoded once per distinct value (rows share source types, occurrences and due times):
    the same text `json.dumps` makes of the payload dict, without building the dict.
    """
    if serialize is not json.dumps:
        return [serialize(_planned_event(values, None)["payload"]) for values in rows]  # type: ignore[arg-type]
    encode = _encode_string
    done: dict[object, str] = {}
    out = []
    for values in rows:
        source_type, source_id = values["source_type"], values["source_id"]
        occurrence, due_at = values["occurrence"], values["due_at"]
        if not (
            type(source_type) is str
            and type(source_id) is str
            and type(occurrence) is datetime
            and type(due_at) is datetime
        ):
            out.append(serialize(_planned_event(values, None)["payload"]))  # type: ignore[arg-type]
            continue
        # Naive occurrences: equal ones print alike. Instants also by zone, which `==` ignores.
        label = done.get(occurrence)
        if label is None:
            label = done[occurrence] = encode(occurrence_label(occurrence))
        key = (due_at, due_at.tzinfo)
        due = done.get(key)
        if due is None:
            due = done[key] = encode(iso(due_at))  # type: ignore[arg-type]
        kind = done.get(source_type)
        if kind is None:
            kind = done[source_type] = encode(source_type)
        out.append(
            f'{{"source_type": {kind}, "source_id": {encode(source_id)},'
            f' "occurrence": {label}, "due_at": {due}}}'
        )
    return out


# The string encoder json.dumps uses with its defaults (ensure_ascii).
_encode_string = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


# New check-ins as arrays, inserted in key order skipping taken keys, and the event of each
# row written, in id order, from the INSERT's RETURNING: one round trip, one transaction.
_POSTGRESQL_INSERT = """
WITH incoming AS (
  SELECT * FROM unnest(
    %(id)b::varchar[], %(practice_id)b::varchar[], %(client_id)b::varchar[],
    %(source_type)b::varchar[], %(source_id)b::varchar[], %(occurrence)b::timestamp[],
    %(event_at)b::timestamptz[], %(due_at)b::timestamptz[], %(closes_at)b::timestamptz[],
    %(reminder_at)b::timestamptz[], %(verifier_contact_id)b::varchar[], %(status)b::varchar[],
    %(created_at)b::timestamptz[], %(updated_at)b::timestamptz[], %(payload)b::text[]
  ) WITH ORDINALITY AS n (id, practice_id, client_id, source_type, source_id, occurrence,
    event_at, due_at, closes_at, reminder_at, verifier_contact_id, status, created_at,
    updated_at, payload, position)
), written AS (
  INSERT INTO checkins (id, practice_id, client_id, source_type, source_id, occurrence,
    event_at, due_at, closes_at, reminder_at, verifier_contact_id, status, created_at,
    updated_at)
  SELECT id, practice_id, client_id, source_type, source_id, occurrence, event_at, due_at,
    closes_at, reminder_at, verifier_contact_id, status, created_at, updated_at
  FROM incoming ORDER BY position
  ON CONFLICT (source_type, source_id, occurrence) DO NOTHING
  RETURNING id
)
INSERT INTO events (txid, type, practice_id, client_id, subject_type, subject_id, payload,
  occurred_at)
SELECT pg_current_xact_id()::text::bigint, 'checkin.planned', incoming.practice_id, incoming.client_id,
  'checkin', incoming.id, incoming.payload::json, %(occurred_at)s
FROM incoming JOIN written ON written.id = incoming.id
ORDER BY incoming.id
RETURNING subject_id
"""


def _write_planned_postgresql(rows: list[dict[str, object]], now: datetime) -> set[str]:
    conn = db.session.connection()
    db.session.flush()
    dialect = conn.dialect
    serialize = getattr(dialect, "_json_serializer", None) or json.dumps
    occurred_at = bind_processor(Event.__table__.c.occurred_at, dialect)
    inserted: set[str] = set()
    for start in range(0, len(rows), PG_INSERT_CHUNK):
        chunk = rows[start : start + PG_INSERT_CHUNK]
        params: dict[str, object] = dict(
            zip(_NEW_COLUMNS, _bound_columns(chunk, dialect), strict=True)
        )
        params["payload"] = _planned_payloads(chunk, serialize)
        params["occurred_at"] = occurred_at(now) if occurred_at is not None else now
        inserted.update(conn.exec_driver_sql(_POSTGRESQL_INSERT, params).scalars().all())
    return inserted


def checkin_event_values(
    kind: str, row: CheckIn, now: datetime, extra: dict[str, object]
) -> dict[str, object]:
    """Return the event (for `append_events`) of a check-in naming its source and occurrence."""
    return _event_values(
        kind,
        {
            "id": row.id,
            "practice_id": row.practice_id,
            "client_id": row.client_id,
            "source_type": row.source_type,
            "source_id": row.source_id,
            "occurrence": row.occurrence,
        },
        now,
        extra,
    )


def _event_values(
    kind: str, row: Mapping[str, object], now: datetime, extra: dict[str, object]
) -> dict[str, object]:
    return {
        "type": kind,
        "occurred_at": now,
        "practice_id": row["practice_id"],
        "client_id": row["client_id"],
        "subject_type": "checkin",
        "subject_id": row["id"],
        "payload": {
            "source_type": row["source_type"],
            "source_id": row["source_id"],
            "occurrence": occurrence_label(row["occurrence"]),  # type: ignore[arg-type]
            **extra,
        },
    }
