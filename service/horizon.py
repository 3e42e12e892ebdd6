"""Planning ahead: the sweep that keeps every live source materialised up to the horizon."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Select, or_, select, update

from service.db import db
from service.models import Client, Commitment, MeetingPlan
from service.planning import Source, sync_source
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


def plan_due_sources(now: datetime, *, horizon: timedelta) -> int:
    """Materialise check-ins up to now + horizon for every source whose watermark lags."""
    until = now + horizon
    created = 0
    for model in (MeetingPlan, Commitment):
        for source in db.session.scalars(due_sources_stmt(model, until)).all():
            client = db.session.get(Client, source.client_id)
            lo = planning_start(source, client, now)
            previous = source.planned_until
            claimed = db.session.execute(
                update(model)
                .where(
                    model.id == source.id,
                    model.planned_until.is_(None)
                    if previous is None
                    else model.planned_until == previous,
                )
                .values(planned_until=until)
                .execution_options(synchronize_session=False)
            )
            db.session.expire(source, ["planned_until"])
            if claimed.rowcount == 1:
                created += sync_source(source, client, lo, until, now=now)
    return created
