"""Weekly meeting quotas: count confirmed meetings per local week (Mon–Sun) against the target."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta

from sqlalchemy import Select, bindparam, func, or_, select, update

from service import alerts
from service.db import db
from service.escalation import iso_week_label
from service.events import append_event
from service.models import Alert, CheckIn, Client, Commitment
from service.schedule import get_zone, resolve_local

logger = logging.getLogger(__name__)

# After an outage, weeks further back than this are not evaluated (nor alerted) late.
MAX_WEEKS_CATCH_UP = 4


def week_start(day: date) -> date:
    """Return the Monday of the week containing `day`."""
    return day - timedelta(days=day.weekday())


def week_bounds(monday: date, zone: str) -> tuple[datetime, datetime]:
    """Return the UTC instants of Monday 00:00 and the next Monday 00:00 in `zone`."""
    tz = get_zone(zone)
    start = resolve_local(datetime.combine(monday, time()), tz)
    end = resolve_local(datetime.combine(monday + timedelta(days=7), time()), tz)
    return start, end


def weeks_to_evaluate(commitment: Commitment, zone: str, now: datetime) -> list[date]:
    """List the Mondays of the finished local weeks not yet evaluated, oldest first.

    Only whole weeks inside the commitment's life count: a quota set on a Wednesday is
    first judged on the following full week.
    """
    tz = get_zone(zone)
    last = week_start(now.astimezone(tz).date()) - timedelta(days=7)
    created = commitment.created_at.astimezone(tz).date()
    first = week_start(max(commitment.starts_on, created) + timedelta(days=6))
    if commitment.quota_evaluated_week:
        done = date.fromisoformat(commitment.quota_evaluated_week)
        first = max(first, done + timedelta(days=7))
    first = max(first, last - timedelta(weeks=MAX_WEEKS_CATCH_UP - 1))
    weeks = []
    monday = first
    while monday <= last:
        weeks.append(monday)
        monday += timedelta(days=7)
    return weeks


def confirmed_meetings(client_id: str, start: datetime, end: datetime) -> int:
    """Count the client's confirmed meeting check-ins whose meeting began in [start, end)."""
    return int(
        db.session.scalar(
            select(func.count(CheckIn.id)).where(
                CheckIn.client_id == client_id,
                CheckIn.source_type == "meeting_plan",
                CheckIn.status == "confirmed",
                CheckIn.event_at >= start,
                CheckIn.event_at < end,
            )
        )
        or 0
    )


def _paused_during(commitment: Commitment, client: Client, monday: date) -> bool:
    if commitment.paused_until is not None and commitment.paused_until > monday:
        return True
    return client.status == "paused" and (
        client.paused_until is None or client.paused_until > monday
    )


def evaluate_commitment(commitment: Commitment, client: Client, *, now: datetime) -> int:
    """Evaluate a quota's finished weeks (claimed by compare-and-set); return weeks evaluated."""
    weeks = weeks_to_evaluate(commitment, client.timezone, now)
    if not weeks:
        return 0
    previous = commitment.quota_evaluated_week
    claimed = db.session.execute(
        update(Commitment)
        .where(
            Commitment.id == commitment.id,
            Commitment.quota_evaluated_week.is_(None)
            if previous is None
            else Commitment.quota_evaluated_week == previous,
        )
        .values(quota_evaluated_week=weeks[-1].isoformat())
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:
        return 0
    db.session.refresh(commitment)
    for monday in weeks:
        _evaluate_week(commitment, client, monday, now)
    return len(weeks)


def _evaluate_week(commitment: Commitment, client: Client, monday: date, now: datetime) -> None:
    label = iso_week_label(monday)
    if _paused_during(commitment, client, monday):
        payload = {"week": label, "paused": True}
    else:
        count = confirmed_meetings(client.id, *week_bounds(monday, client.timezone))
        target = commitment.target or 0
        payload = {"week": label, "count": count, "target": target, "met": count >= target}
        if count < target:
            alerts.raise_alert(
                kind="quota_unmet",
                client=client,
                source_type="commitment",
                source_id=commitment.id,
                occurrence=label,
                detail={"count": count, "target": target, "week_start": monday.isoformat()},
                now=now,
            )
    append_event(
        "commitment.quota_evaluated",
        now=now,
        practice_id=commitment.practice_id,
        client_id=commitment.client_id,
        subject_type="commitment",
        subject_id=commitment.id,
        payload=payload,
    )


def recheck_after_confirmation(checkin: CheckIn, *, now: datetime) -> None:
    """Resolve a week's quota_unmet alert once a late confirmation brings it up to target."""
    if checkin.source_type != "meeting_plan":
        return
    # Most confirmations find no unmet quota: looked for first, without loading the client.
    open_alerts = alerts.unresolved(_UNMET_QUOTAS, {"client_id": checkin.client_id})
    client = db.session.get(Client, checkin.client_id) if open_alerts else None
    if client is None:
        return
    monday = week_start(checkin.event_at.astimezone(get_zone(client.timezone)).date())
    week = iso_week_label(monday)
    open_alerts = [alert for alert in open_alerts if alert.occurrence == week]
    if not open_alerts:
        return
    count = confirmed_meetings(client.id, *week_bounds(monday, client.timezone))
    for alert in open_alerts:
        commitment = db.session.get(Commitment, alert.source_id)
        if commitment is not None and count >= (commitment.target or 0):
            alert.detail = {**(alert.detail or {}), "count": count}
            alerts.resolve_alert(alert, therapist_id="quota_met", now=now)


# The client's unresolved quota_unmet alerts, of any week (ix_alerts_client_id).
_UNMET_QUOTAS = select(Alert.__table__.c.id).where(
    Alert.__table__.c.client_id == bindparam("client_id"),
    Alert.__table__.c.kind == "quota_unmet",
    Alert.__table__.c.status != "resolved",
)


def live_quotas_stmt() -> Select[tuple[Commitment]]:
    """Select the live weekly meeting quotas, locking them (SKIP LOCKED) for this sweep."""
    return (
        select(Commitment)
        .where(
            Commitment.kind == "meeting_quota",
            # Bare, not IS TRUE, so the planner can match the partial index's predicate.
            Commitment.active,
            Commitment.archived_at.is_(None),
        )
        .order_by(Commitment.id)
        .with_for_update(skip_locked=True)
    )


QUOTA_BATCH = 500


def newest_finished_monday(now: datetime) -> date:
    """The latest Monday whose local week has ended somewhere (the first zone is UTC+14).

    A quota evaluated through this week is up to date in every zone, so the sweep skips it
    in SQL instead of loading it: in the steady state it reads only what is due.
    """
    return week_start((now + timedelta(hours=14)).date()) - timedelta(days=7)


def due_quota_batches(now: datetime, batch: int = QUOTA_BATCH) -> Iterator[int]:
    """Evaluate the quotas that may have a finished week, a batch at a time.

    Yields the weeks judged per batch; the caller commits between batches, so a sweep over
    100,000 quotas holds neither every row lock nor every loaded row until it ends.
    """
    newest = newest_finished_monday(now).isoformat()
    after = ""
    while True:
        stmt = (
            live_quotas_stmt()
            .where(
                or_(
                    Commitment.quota_evaluated_week.is_(None),
                    Commitment.quota_evaluated_week < newest,
                ),
                Commitment.id > after,
            )
            .limit(batch)
        )
        rows = db.session.scalars(stmt).all()
        if not rows:
            return
        after = rows[-1].id
        wanted = {row.client_id for row in rows}
        clients = {c.id: c for c in db.session.scalars(select(Client).where(Client.id.in_(wanted)))}
        evaluated = 0
        for commitment in rows:
            client = clients.get(commitment.client_id)
            if client is not None and client.status != "discharged":
                evaluated += evaluate_commitment(commitment, client, now=now)
        yield evaluated
        if len(rows) < batch:
            return


def evaluate_due_quotas(now: datetime) -> int:
    """Evaluate every active quota's finished weeks; return how many weeks were judged."""
    return sum(due_quota_batches(now))
