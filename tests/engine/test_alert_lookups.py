"""A late reply or confirmation finds exactly the alerts it concerns (alerts.unresolved)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from service import checkins
from service.alerts import raise_alert
from service.db import db
from service.jobs import sweeps
from tests.engine.conftest import alerts, checkins_of
from tests.factories import make_commitment, make_meeting, make_plan

MON_DEC_7 = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)  # Monday 00:00 New York


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_late_confirmation_resolves_its_weeks_unmet_quota_only(people):
    carol = people.carol
    quota = make_commitment(carol, kind="meeting_quota", title="Meetings", rrule="FREQ=WEEKLY",
                            time=None, target=1, starts_on=date(2026, 11, 23),
                            created_at=utc("2026-11-20T17:00"))  # fmt: skip
    meeting = make_meeting(people.riverside.id, day=0, time="19:00", end_time="20:00")
    plan = make_plan(
        carol, meeting, starts_on=date(2026, 11, 30), created_at=utc("2026-11-27T17:00")
    )
    # Last week's quota went unmet and its alert is still open; so is a resolved one's twin.
    last_week = raise_alert(kind="quota_unmet", client=carol, source_type="commitment",
                            source_id=quota.id, occurrence="2026-W48", detail={},
                            now=utc("2026-11-30T05:10"))  # fmt: skip
    db.session.commit()
    for hour in range(0, 24 * 7, 12):
        sweeps.plan_ahead(utc("2026-11-30T12:00") + timedelta(hours=hour))
    sweeps.evaluate_quotas(MON_DEC_7 + timedelta(minutes=5))
    (this_week,) = [a for a in alerts(kind="quota_unmet") if a.occurrence == "2026-W49"]
    sunday = checkins_of(plan.id)[0]  # Sunday Dec 6 19:00, confirmed on Monday morning
    checkins.record_reply(sunday, "confirm", responder=carol.phone, channel="api",
                          now=MON_DEC_7 + timedelta(hours=4))  # fmt: skip
    db.session.commit()
    db.session.refresh(this_week)
    db.session.refresh(last_week)
    assert this_week.status == "resolved" and this_week.resolved_by == "quota_met"
    assert last_week.status == "open"


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
