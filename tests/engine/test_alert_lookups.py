"""A late yes finds exactly the miss alert it concerns (alerts.unresolved; the quota side is
in test_alerting)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from service import checkins
from service.alerts import raise_alert
from service.db import db
from service.jobs import sweeps
from tests.engine.conftest import alerts, checkins_of
from tests.factories import make_meeting, make_plan


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_late_yes_resolves_the_alert_of_its_own_occurrence_only(people):
    carol = people.carol
    meeting = make_meeting(people.riverside.id, day=0, time="19:00", end_time="20:00")
    plan = make_plan(
        carol, meeting, starts_on=date(2026, 11, 30), created_at=utc("2026-11-27T17:00")
    )
    db.session.commit()
    for hour in range(0, 24 * 14, 12):
        sweeps.plan_ahead(utc("2026-11-30T12:00") + timedelta(hours=hour))
    first, second = checkins_of(plan.id)[:2]
    for row in (first, second):
        row.status = "missed"
        raise_alert(kind="missed", client=carol, source_type=row.source_type,
                    source_id=row.source_id, occurrence=checkins.occurrence_label(row.occurrence),
                    detail={}, now=row.event_at + timedelta(hours=3))  # fmt: skip
    db.session.commit()
    checkins.record_reply(second, "confirm", responder=carol.phone, channel="sms",
                          now=second.event_at + timedelta(hours=4))  # fmt: skip
    db.session.commit()
    by_occurrence = {a.occurrence: a.status for a in alerts(kind="missed")}
    assert by_occurrence == {
        checkins.occurrence_label(first.occurrence): "open",
        checkins.occurrence_label(second.occurrence): "resolved",
    }
