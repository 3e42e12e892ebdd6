"""Planning ahead: the sweep that keeps every live source materialised up to the horizon."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from service.db import db
from service.models import Client, Commitment, Meeting, MeetingPlan, SupportContact
from service.planning import IN_CHUNK, Source, sync_sources
from service.schedule import get_zone, resolve_local

# A scheduler that was down does not plan further back than this: the catch-up rows end
# `skipped`, and a month of them would say no more than a week does.
MAX_CATCH_UP = timedelta(days=7)


def horizon_hours() -> int:
    """Return how far ahead check-ins are materialised (PLAN_HORIZON_HOURS)."""
    return int(current_app.extensions["settings"].PLAN_HORIZON_HOURS)


def planning_start(source: Source, client: Client, now: datetime) -> datetime:
    """Return where planning resumes: the watermark, else when the source began to exist."""
    zone_start = resolve_local(
        datetime.combine(source.starts_on, datetime.min.time()), get_zone(client.timezone)
    )
    start = source.planned_until or max(source.created_at, zone_start)
    return max(start, now - MAX_CATCH_UP)


# A source is re-expanded only once its watermark lags the horizon by this much, so most
# planning sweeps touch no source at all; what is due within horizon - slack always exists.
PLANNING_SLACK = timedelta(hours=4)


def due_sources_stmt(model: type[Source], until: datetime) -> Select[tuple[Source]]:
    """Select the live sources whose planning watermark lags `until`, locking them."""
    stmt = (
        select(model)
        .join(Client, Client.id == model.client_id)
        .where(
            model.archived_at.is_(None),
            Client.status != "discharged",
            or_(model.planned_until.is_(None), model.planned_until < until - PLANNING_SLACK),
        )
        .order_by(model.id)
        .with_for_update(skip_locked=True, of=model)
    )
    if model is Commitment:
        # Bare `active`, not IS TRUE, so the planner can match the partial index's predicate.
        stmt = stmt.where(Commitment.active, Commitment.kind != "meeting_quota")
    return stmt


# Sources claimed, planned and committed together by the planning sweep.
PLAN_BATCH = 500


def plan_due_sources(now: datetime, *, horizon: timedelta) -> int:
    """Materialise check-ins up to now + horizon for every source whose watermark lags."""
    return sum(plan_due_batches(now, horizon=horizon))


def plan_due_batches(
    now: datetime, *, horizon: timedelta, batch: int | None = None
) -> Iterator[int]:
    """Plan the lagging sources a batch at a time, yielding each batch's count of new rows.

    The caller may commit after each yield (the sweep does): a batch's claims, check-ins
    and events are complete by then, and committing releases its row locks.
    """
    until = now + horizon
    batch = batch or PLAN_BATCH
    for model in (MeetingPlan, Commitment):
        after: str | None = None
        while True:
            stmt = due_sources_stmt(model, until).limit(batch)
            if after is not None:
                stmt = stmt.where(model.id > after)
            sources = list(db.session.scalars(stmt))
            if not sources:
                break
            after = sources[-1].id
            yield _plan_batch(model, sources, now, until)
            if len(sources) < batch:
                break


def _plan_batch(model: type[Source], sources: list[Source], now: datetime, until: datetime) -> int:
    """Claim a batch of sources (watermark compare-and-set) and plan the claimed ones."""
    clients = _load(Client, {source.client_id for source in sources})
    # Held while the batch is planned (the session's identity map is weak), so that
    # `source.meeting` and the verifier look-ups find them without a query each.
    meetings = _load(Meeting, {s.meeting_id for s in sources}) if model is MeetingPlan else {}
    contacts = _load(
        SupportContact, {s.verifier_contact_id for s in sources if s.verifier_contact_id}
    )
    work: list[tuple[Source, Client, datetime]] = []
    by_previous: dict[datetime | None, list[Source]] = {}
    for source in sources:
        by_previous.setdefault(source.planned_until, []).append(source)
    claimed: set[str] = set()
    for previous, group in by_previous.items():
        # Claimed only if the watermark is still the one read: a planner that got there
        # first moved it, and this one leaves the source to it.
        ids = [source.id for source in group]
        for start in range(0, len(ids), IN_CHUNK):
            result = db.session.execute(
                update(model)
                .where(
                    model.id.in_(ids[start : start + IN_CHUNK]),
                    model.planned_until.is_(None)
                    if previous is None
                    else model.planned_until == previous,
                )
                .values(planned_until=until)
                .returning(model.id)
                .execution_options(synchronize_session=False)
            )
            claimed.update(result.scalars())
    for source in sources:
        client = clients[source.client_id]
        lo = planning_start(source, client, now)
        if source.id in claimed:
            set_committed_value(source, "planned_until", until)
            work.append((source, client, lo))
        else:
            db.session.expire(source, ["planned_until"])
    created = sync_sources(work, until, now=now)
    del meetings, contacts
    return created


def _load(model: type[Any], ids: set[str]) -> dict[str, Any]:
    """Load rows by id into the session, a few IN queries for the lot."""
    found: dict[str, Any] = {}
    wanted = sorted(ids)
    for start in range(0, len(wanted), IN_CHUNK):
        for row in db.session.scalars(
            select(model).where(model.id.in_(wanted[start : start + IN_CHUNK]))
        ):
            found[row.id] = row
    return found
