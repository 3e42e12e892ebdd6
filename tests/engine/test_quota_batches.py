"""The quota sweep reads only quotas that may have a finished week, a batch at a time."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from service import quotas
from service.db import db
from service.jobs import sweeps
from service.models import Alert, Commitment
from tests.factories import make_client, make_commitment

MON_DEC_7 = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)  # Monday 00:00 New York


def _quotas(therapist, zones: list[str]) -> list[Commitment]:
    rows = []
    for i, zone in enumerate(zones):
        client = make_client(therapist, display_name=f"Q{i}", phone=f"+1500555{7000 + i}",
                             timezone=zone)  # fmt: skip
        rows.append(make_commitment(client, kind="meeting_quota", title="Meetings",
                                    rrule="FREQ=WEEKLY", time=None, target=1,
                                    starts_on=date(2026, 11, 30),
                                    created_at=datetime(2026, 11, 27, 17, tzinfo=UTC)))  # fmt: skip
    db.session.commit()
    return rows


def test_newest_finished_monday_is_the_first_zone_to_end_its_week():
    # Sunday 10:00 UTC is already Monday 00:00 at UTC+14 (Kiritimati): that week has ended.
    assert quotas.newest_finished_monday(datetime(2026, 12, 6, 10, 0, tzinfo=UTC)) == date(
        2026, 11, 30
    )
    assert quotas.newest_finished_monday(datetime(2026, 12, 6, 9, 59, tzinfo=UTC)) == date(
        2026, 11, 23
    )


def test_every_quota_is_judged_across_batches_once(people):
    zones = ["America/New_York", "Europe/London", "Asia/Kolkata", "Pacific/Honolulu", "UTC"]
    rows = _quotas(people.alice.therapist, zones)
    after_all_zones = MON_DEC_7 + timedelta(hours=6)  # Honolulu's Monday 01:00
    judged = list(quotas.due_quota_batches(after_all_zones, batch=2))
    assert judged == [2, 2, 1]
    db.session.commit()
    unmet = db.session.scalars(select(Alert.source_id).where(Alert.kind == "quota_unmet")).all()
    assert sorted(unmet) == sorted(r.id for r in rows)
    # Up to date everywhere: the next sweep loads nothing (the filter is in SQL).
    assert list(quotas.due_quota_batches(after_all_zones + timedelta(minutes=5), batch=2)) == []


def test_a_quota_is_not_judged_before_its_own_zone_ends_the_week(people):
    (ny,) = _quotas(people.alice.therapist, ["America/New_York"])
    before = MON_DEC_7 - timedelta(minutes=1)  # Sunday 23:59 in New York, Monday elsewhere
    # Loaded (the week has ended at UTC+14) but not judged: its own week is not over.
    assert sweeps.evaluate_quotas(before) == 0
    db.session.refresh(ny)
    assert ny.quota_evaluated_week is None
    assert sweeps.evaluate_quotas(MON_DEC_7 + timedelta(minutes=1)) == 1
    db.session.refresh(ny)
    assert ny.quota_evaluated_week == "2026-11-30"
