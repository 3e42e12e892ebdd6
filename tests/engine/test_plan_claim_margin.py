"""The occurrence margin of planning's existing-rows queries loses no check-in.

`planning._existing_conditions` and the probe `_any_rows` bound a check-in's local
`occurrence` to [lo - margin, hi + margin) so the unique (source, occurrence) index can
range-scan. That is only right if no check-in's occurrence lies further than the margin from
its instant: here against the same query bounded by `event_at` alone, for check-ins at the
extreme UTC offsets (+14 h, -12 h) and at a wall time a DST gap skips, in one-hour windows.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from service import planning
from service.db import db
from service.jobs import sweeps
from service.models import CheckIn, Commitment, MeetingPlan
from tests.factories import make_client, make_commitment, make_meeting, make_plan

# New York springs forward at 02:00 local on 2027-03-14: 02:30 that night never shows.
NOW = datetime(2027, 3, 13, 12, tzinfo=UTC)
ZONES = ["Pacific/Kiritimati", "Etc/GMT+12", "America/New_York"]  # +14 h, -12 h, DST
CREATED = datetime(2027, 3, 1, tzinfo=UTC)


def _population(people) -> None:
    for index, zone in enumerate(ZONES):
        client = make_client(
            people.alice.therapist,
            timezone=zone,
            phone=f"+1500555060{index}",
            created_at=CREATED,
            updated_at=CREATED,
        )
        for time in ("00:30", "02:30", "12:00", "23:30"):
            make_commitment(client, time=time, starts_on=date(2027, 3, 1), created_at=CREATED)
        # Sunday 2027-03-14 (day 6) 02:30, in the gap in New York.
        meeting = make_meeting(
            people.riverside.id, day=6, time="02:30", end_time="03:30", timezone=zone
        )
        make_plan(client, meeting, starts_on=date(2027, 3, 1), created_at=CREATED)
    db.session.commit()


def _offset(row: CheckIn) -> timedelta:
    return row.occurrence - row.event_at.astimezone(UTC).replace(tzinfo=None)


def test_no_check_in_lies_outside_the_occurrence_margin(people):
    _population(people)
    sweeps.plan_ahead(NOW)
    table = CheckIn.__table__
    rows = db.session.scalars(select(CheckIn)).all()
    offsets = {_offset(row) for row in rows}
    # The extremes are there: a check-in 14 h ahead of UTC, one 12 h behind, and the gap's
    # 02:30 read with New York's offset before the gap (-5 h), an hour after the wall time.
    assert max(offsets) == timedelta(hours=14) and min(offsets) == timedelta(hours=-12)
    gap = [r for r in rows if r.occurrence == datetime(2027, 3, 14, 2, 30)]
    assert any(r.event_at == datetime(2027, 3, 14, 7, 30, tzinfo=UTC) for r in gap)
    assert all(abs(offset) < planning._OCCURRENCE_MARGIN for offset in offsets)
    found = 0
    for model, source_type in ((Commitment, "commitment"), (MeetingPlan, "meeting_plan")):
        ids = list(db.session.scalars(select(model.id).order_by(model.id)))
        # One-hour windows over every planned instant (the catch-up week and the horizon).
        first = min(row.event_at for row in rows).replace(minute=0)
        for hour in range(int((max(r.event_at for r in rows) - first) / timedelta(hours=1)) + 1):
            lo = first + timedelta(hours=hour)
            hi = lo + timedelta(hours=1)
            plain = set(
                db.session.scalars(
                    select(table.c.id).where(
                        table.c.source_type == source_type,
                        table.c.source_id.in_(ids),
                        table.c.event_at >= lo,
                        table.c.event_at < hi,
                    )
                )
            )
            bounded = set(
                db.session.scalars(
                    select(table.c.id).where(
                        *planning._existing_conditions(source_type, ids, lo, hi)
                    )
                )
            )
            assert bounded == plain, (source_type, lo)
            assert planning._any_rows(source_type, ids, lo, hi) == bool(plain), (source_type, lo)
            found += len(plain)
    assert found == len(rows)
