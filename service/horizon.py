"""Planning ahead: the sweep that keeps every live source materialised up to the horizon."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from operator import itemgetter
from typing import Any

from flask import current_app
from sqlalchemy import Select, bindparam, or_, select

from service.db import binder, db
from service.models import Client, Commitment, MeetingPlan
from service.planning import (
    ClientFacts,
    Source,
    facts_reader,
    source_facts_select,
    sync_sources,
)
from service.schedule import get_zone, resolve_local

# A scheduler that was down does not plan further back than this: the catch-up rows end
# `skipped`, and a month of them would say no more than a week does.
MAX_CATCH_UP = timedelta(days=7)


def horizon_hours() -> int:
    """Return how far ahead check-ins are materialised (PLAN_HORIZON_HOURS)."""
    return int(current_app.extensions["settings"].PLAN_HORIZON_HOURS)


def planning_start(
    source: Source,
    client: Client,
    now: datetime,
    *,
    memo: dict[tuple[date, str], datetime] | None = None,
) -> datetime:
    """Return where planning resumes: the watermark, else when the source began to exist.

    `memo` (one dict per planning batch) keeps each (starts_on, zone) midnight resolved once.
    """
    key = (source.starts_on, client.timezone)
    zone_start = memo.get(key) if memo is not None else None
    if zone_start is None:
        zone_start = resolve_local(
            datetime.combine(source.starts_on, datetime.min.time()), get_zone(client.timezone)
        )
        if memo is not None:
            memo[key] = zone_start
    start = source.planned_until or max(source.created_at, zone_start)
    return max(start, now - MAX_CATCH_UP)


# A source is re-expanded only once its watermark lags the horizon by this much, so most
# planning sweeps touch no source at all; what is due within horizon - slack always exists.
PLANNING_SLACK = timedelta(hours=4)


def due_sources_stmt(model: type[Source], until: datetime) -> Select[Any]:
    """Select the live sources whose planning watermark lags `until`, locking them.

    Core columns, not entities: each row carries what planning needs of its source, its
    client, its meeting and its verifier's zone (one query instead of four, no ORM objects).
    """
    table = model.__table__
    clients = Client.__table__
    columns, joined = source_facts_select(model)
    columns += [clients.c[name].label(f"client_{name}") for name in _CLIENT_COLUMNS]
    joined = joined.join(clients, clients.c.id == table.c.client_id)
    stmt = (
        select(*columns)
        .select_from(joined)
        .where(
            table.c.archived_at.is_(None),
            clients.c.status != "discharged",
            or_(table.c.planned_until.is_(None), table.c.planned_until < until - PLANNING_SLACK),
        )
        .order_by(table.c.id)
        .with_for_update(skip_locked=True, of=table)
    )
    if model is Commitment:
        # Bare `active`, not IS TRUE, so the planner can match the partial index's predicate.
        stmt = stmt.where(table.c.active, table.c.kind != "meeting_quota")
    return stmt


_CLIENT_COLUMNS = ("status", "paused_until", "timezone", "quiet_start", "quiet_end")


# Sources claimed, planned and committed together by the planning sweep: each batch pays a
# few statements and a commit whatever its size. Not larger: at 100,000 clients on
# PostgreSQL, 5,000 a batch took 83 s against 44 s for 1,000 (bench scale profile, same
# population), though it saves a commit at the quick size.
PLAN_BATCH = 1000


def plan_due_sources(now: datetime, *, horizon: timedelta) -> int:
    """Materialise check-ins up to now + horizon for every source whose watermark lags."""
    return sum(plan_due_batches(now, horizon=horizon))


def plan_due_batches(
    now: datetime, *, horizon: timedelta, batch: int | None = None
) -> Iterator[int]:
    """Plan the lagging sources a batch at a time, yielding each batch's count of new rows.

    The caller may commit after each yield (the sweep does): a batch's claims, check-ins
    and events are complete by then, and committing releases its row locks. A batch holds
    at most `batch` sources; the meeting plans' last, partial one is filled up with
    commitments before it is yielded, so a sweep commits no more often than it must.
    """
    until = now + horizon
    batch = batch or PLAN_BATCH
    created, room = 0, batch
    for model in (MeetingPlan, Commitment):
        table = model.__table__
        # One statement shape from the first page on (every id sorts after ""): compiled
        # once per process, not once more for the pages after the first.
        stmt = due_sources_stmt(model, until).where(table.c.id > bindparam("after"))
        after = ""
        while True:
            rows = db.session.execute(stmt.limit(room), {"after": after}).all()
            if rows:
                after = rows[-1].id
                created += _plan_batch(model, rows, now, until)
                room -= len(rows)
            if room:
                break  # fewer than asked for: none of this kind left
            yield created
            created, room = 0, batch
    if room < batch:
        yield created


def _plan_batch(model: type[Source], rows: list[Any], now: datetime, until: datetime) -> int:
    """Claim a batch of sources (watermark compare-and-set) and plan the claimed ones."""
    source_type = "meeting_plan" if model is MeetingPlan else "commitment"
    # By position, not attribute: a row's attribute lookup costs about a microsecond.
    fields = rows[0]._fields
    facts = list(map(facts_reader(source_type, fields), rows))
    client_values = itemgetter(*(fields.index(f"client_{name}") for name in _CLIENT_COLUMNS))
    by_previous: dict[datetime | None, list[str]] = {}
    for source in facts:
        by_previous.setdefault(source.planned_until, []).append(source.id)
    claimed = _claim(model, by_previous, until)
    clients: dict[str, ClientFacts] = {}
    work: list[tuple[Source, Client, datetime]] = []
    starts: dict[tuple[date, str], datetime] = {}
    for row, source in zip(rows, facts, strict=True):
        if source.id not in claimed:
            continue
        client = clients.get(source.client_id)
        if client is None:
            client = clients[source.client_id] = ClientFacts(source.client_id, *client_values(row))
        work.append((source, client, planning_start(source, client, now, memo=starts)))  # type: ignore[arg-type]
    # The ORM copies of these sources (if this session holds any) may lag the database.
    held = [obj for obj in db.session.identity_map.values() if isinstance(obj, model)]
    if held:
        batch_ids = {source.id for source in facts}
        for obj in held:
            if obj.id in batch_ids:
                db.session.expire(obj, ["planned_until"])
    return sync_sources(work, until, now=now)  # type: ignore[arg-type]


def _claim(
    model: type[Source], by_previous: dict[datetime | None, list[str]], until: datetime
) -> set[str]:
    """Move the watermarks of the sources still at the one read to `until`; return their ids.

    Claimed only if the watermark is still the one read: a planner that got there first
    moved it, and this one leaves the source to it. One driver-level statement per
    previous watermark, its SQL fixed per table and dialect: nothing built or compiled per
    batch (the ORM copies are expired by the caller).
    """
    conn = db.session.connection()
    dialect = conn.dialect
    table = model.__table__.name
    bind = binder(model.__table__.c.planned_until, dialect)  # UTC; naive on SQLite
    claimed: set[str] = set()
    for previous, ids in by_previous.items():
        if dialect.name == "postgresql":
            sql, params = _CLAIM_POSTGRESQL, {"ids": ids}
        else:
            sql, params = _CLAIM_SQLITE, {"ids": json.dumps(ids)}
        params.update(until=bind(until), previous=bind(previous))
        keyword = "IS NULL" if previous is None else "= " + _PARAM[dialect.name]
        claimed.update(
            conn.exec_driver_sql(sql.format(table=table, previous=keyword), params).scalars().all()
        )
    return claimed


# The claim: `planned_until` moved where it is still the one read (NULL: never planned).
# PostgreSQL's ids go as a binary array: psycopg writes 1,000 ids ~5x faster than as text.
_CLAIM_POSTGRESQL = (
    "UPDATE {table} SET planned_until = %(until)s WHERE id = ANY(%(ids)b::varchar[])"
    " AND planned_until {previous} RETURNING id"
)
_CLAIM_SQLITE = (
    "UPDATE {table} SET planned_until = :until WHERE id IN (SELECT value FROM json_each(:ids))"
    " AND planned_until {previous} RETURNING id"
)
_PARAM = {"postgresql": "%(previous)s", "sqlite": ":previous"}
