"""Planning: idempotent, horizon-bounded, from starts_on, never before created_at, DST-correct."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from service.db import db
from service.jobs import sweeps
from service.models import CheckIn, Event
from tests.factories import make_commitment, make_meeting, make_plan

T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # Tuesday 12:00 in New York


def rows(source_id: str) -> list[CheckIn]:
    return list(
        db.session.scalars(
            select(CheckIn).where(CheckIn.source_id == source_id).order_by(CheckIn.event_at)
        )
    )


def test_plan_ahead_materialises_the_horizon_and_is_idempotent(people):
    commitment = make_commitment(people.carol)
    db.session.commit()
    assert sweeps.plan_ahead(T0) == 2  # Dec 1 and Dec 2 at 20:00 are within 36 h
    assert sweeps.plan_ahead(T0) == 0
    assert sweeps.plan_ahead(T0 + timedelta(minutes=30)) == 0
    planned = rows(commitment.id)
    assert [r.occurrence for r in planned] == [
        datetime(2026, 12, 1, 20, 0),
        datetime(2026, 12, 2, 20, 0),
    ]
    assert all(r.event_at < T0 + timedelta(hours=36) for r in planned)
    assert planned[0].due_at == datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    assert planned[0].closes_at == planned[0].due_at + timedelta(minutes=120)
    events = db.session.scalar(select(func.count(Event.id)).where(Event.type == "checkin.planned"))
    assert events == 2


def test_planning_starts_at_starts_on_and_never_before_created_at(people):
    later = make_commitment(people.carol, starts_on=date(2026, 12, 2))
    created_late = make_commitment(
        people.carol, title="Read", created_at=datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
    )
    db.session.commit()
    sweeps.plan_ahead(T0)
    assert [r.occurrence.date() for r in rows(later.id)] == [date(2026, 12, 2)]
    # Created at 21:00 local on Dec 1: the 20:00 occurrence of that day was already past.
    assert [r.occurrence.date() for r in rows(created_late.id)] == [date(2026, 12, 2)]


def test_meeting_plan_is_due_when_the_meeting_ends_with_a_reminder_before(people):
    meeting = make_meeting(people.riverside.id, day=3, time="19:00", end_time="20:30")
    plan = make_plan(people.carol, meeting, remind_minutes_before=60)
    db.session.commit()
    sweeps.plan_ahead(T0)
    (row,) = rows(plan.id)
    assert row.occurrence == datetime(2026, 12, 2, 19, 0)
    assert row.event_at == datetime(2026, 12, 3, 0, 0, tzinfo=UTC)
    assert row.due_at == datetime(2026, 12, 3, 1, 30, tzinfo=UTC)
    assert row.reminder_at == datetime(2026, 12, 2, 23, 0, tzinfo=UTC)
    assert row.closes_at == row.due_at + timedelta(hours=12)


def test_a_daily_commitment_keeps_its_local_time_across_the_dst_change(people):
    carol = people.carol
    commitment = make_commitment(
        carol, starts_on=date(2026, 10, 30), created_at=datetime(2026, 10, 30, 12, tzinfo=UTC)
    )
    db.session.commit()
    for hour in range(0, 96, 12):
        sweeps.plan_ahead(datetime(2026, 10, 30, 12, tzinfo=UTC) + timedelta(hours=hour))
    planned = {r.occurrence.date(): r for r in rows(commitment.id)}
    before, after = planned[date(2026, 10, 31)], planned[date(2026, 11, 1)]
    assert before.occurrence.hour == after.occurrence.hour == 20
    assert before.event_at == datetime(2026, 11, 1, 0, 0, tzinfo=UTC)  # EDT, UTC-4
    assert after.event_at == datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # EST, UTC-5
