"""Quotas, batched alert texts, crisis re-sends to on-call, and the daily digest."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from service import checkins
from service.alerts import acknowledge_alert, raise_alert
from service.db import db
from service.jobs import sweeps
from tests.engine.conftest import alerts, checkins_of, outbox, send_queued
from tests.factories import make_client, make_commitment, make_meeting, make_plan

MON_DEC_7 = datetime(2026, 12, 7, 5, 0, tzinfo=UTC)  # Monday 00:00 New York


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def raise_some(client, n: int, now: datetime, kind: str = "missed") -> None:
    for i in range(n):
        raise_alert(kind=kind, client=client, source_type="commitment", source_id=f"cm_{i}",
                    occurrence=f"{now:%Y-%m-%dT%H:%M}", detail={}, now=now)  # fmt: skip
    db.session.commit()


def test_an_unmet_weekly_quota_alerts_once_at_the_end_of_the_local_week(people):
    carol = people.carol
    quota = make_commitment(carol, kind="meeting_quota", title="Meetings", rrule="FREQ=WEEKLY",
                            time=None, target=2, starts_on=date(2026, 11, 30),
                            created_at=utc("2026-11-27T17:00"))  # fmt: skip
    meeting = make_meeting(people.riverside.id, day=2, time="17:00", end_time="18:00")
    plan = make_plan(
        carol, meeting, starts_on=date(2026, 11, 30), created_at=utc("2026-11-27T17:00")
    )
    db.session.commit()
    sweeps.plan_ahead(utc("2026-11-30T12:00"))
    row = checkins_of(plan.id)[0]  # Tuesday Dec 1
    checkins.record_reply(row, "confirm", responder=carol.phone, channel="dashboard",
                          now=utc("2026-12-01T23:30"))  # fmt: skip
    db.session.commit()
    assert sweeps.evaluate_quotas(MON_DEC_7 - timedelta(minutes=1)) == 0  # Sunday 23:59 local
    assert sweeps.evaluate_quotas(MON_DEC_7 + timedelta(minutes=5)) == 1
    assert sweeps.evaluate_quotas(MON_DEC_7 + timedelta(minutes=10)) == 0
    (alert,) = alerts(kind="quota_unmet")
    assert (alert.occurrence, alert.source_id) == ("2026-W49", quota.id)
    assert alert.detail == {"count": 1, "target": 2, "week_start": "2026-11-30"}
    db.session.refresh(quota)
    assert quota.quota_evaluated_week == "2026-11-30"


def _monday_meetings_with_a_quota(people, *, quota_starts: date):
    """Carol with a weekly quota of 1 meeting and a Monday 19:00 meeting plan from Nov 30,
    planned through the week of Nov 30 and judged once it ended; return (quota, plan)."""
    carol = people.carol
    quota = make_commitment(carol, kind="meeting_quota", title="Meetings", rrule="FREQ=WEEKLY",
                            time=None, target=1, starts_on=quota_starts,
                            created_at=utc("2026-11-20T17:00"))  # fmt: skip
    meeting = make_meeting(people.riverside.id, day=0, time="19:00", end_time="20:00")
    plan = make_plan(
        carol, meeting, starts_on=date(2026, 11, 30), created_at=utc("2026-11-27T17:00")
    )
    db.session.commit()
    return quota, plan


def _judge_the_week_and_confirm_sunday_late(plan, responder: str) -> None:
    for hour in range(0, 24 * 7, 12):
        sweeps.plan_ahead(utc("2026-11-30T12:00") + timedelta(hours=hour))
    sweeps.evaluate_quotas(MON_DEC_7 + timedelta(minutes=5))
    sunday = checkins_of(plan.id)[0]  # Sunday Dec 6 19:00, confirmed on Monday morning
    checkins.record_reply(sunday, "confirm", responder=responder, channel="api",
                          now=MON_DEC_7 + timedelta(hours=4))  # fmt: skip
    db.session.commit()


def test_a_met_quota_raises_nothing_and_a_late_confirmation_resolves_an_unmet_one(people):
    _quota, plan = _monday_meetings_with_a_quota(people, quota_starts=date(2026, 11, 30))
    _judge_the_week_and_confirm_sunday_late(plan, people.carol.phone)
    (alert,) = alerts(kind="quota_unmet")
    assert alert.status == "resolved" and alert.resolved_by == "quota_met"


def test_a_late_confirmation_resolves_its_weeks_unmet_quota_only(people):
    quota, plan = _monday_meetings_with_a_quota(people, quota_starts=date(2026, 11, 23))
    # Last week's quota went unmet, and its alert is still open.
    last_week = raise_alert(kind="quota_unmet", client=people.carol, source_type="commitment",
                            source_id=quota.id, occurrence="2026-W48", detail={},
                            now=utc("2026-11-30T05:10"))  # fmt: skip
    db.session.commit()
    _judge_the_week_and_confirm_sunday_late(plan, people.carol.phone)
    by_week = {a.occurrence: (a.status, a.resolved_by) for a in alerts(kind="quota_unmet")}
    assert by_week == {"2026-W48": ("open", None), "2026-W49": ("resolved", "quota_met")}
    assert last_week.id in {a.id for a in alerts(kind="quota_unmet")}


def test_therapist_gets_one_text_per_window_with_a_count_and_no_names(people):
    carol = people.carol
    now = utc("2026-12-01T15:00")  # 10:00 New York
    raise_some(carol, 3, now)
    assert sweeps.escalate_and_notify(now) == 1
    (text,) = outbox(purpose="alert")
    assert text.to_number == people.alice.therapist.phone
    assert "3 new alerts" in text.body and "https://steadfast.example.org/" in text.body
    assert "Carol" not in text.body
    raise_some(carol, 1, now + timedelta(minutes=5))
    assert sweeps.escalate_and_notify(now + timedelta(minutes=5)) == 0
    assert sweeps.escalate_and_notify(now + timedelta(minutes=14)) == 0
    assert sweeps.escalate_and_notify(now + timedelta(minutes=15)) == 1
    assert "1 new alert." in outbox(purpose="alert")[-1].body
    assert sweeps.escalate_and_notify(now + timedelta(minutes=40)) == 0


def test_alert_texts_wait_for_morning_and_skip_a_therapist_without_a_phone(people):
    carol = people.carol
    raise_some(carol, 1, utc("2026-12-02T03:00"))  # 22:00 New York
    assert sweeps.escalate_and_notify(utc("2026-12-02T03:00")) == 0
    assert sweeps.escalate_and_notify(utc("2026-12-02T13:00")) == 1  # 08:00
    people.alice.therapist.phone = None
    db.session.commit()
    raise_some(carol, 2, utc("2026-12-02T15:00"))
    assert sweeps.escalate_and_notify(utc("2026-12-02T15:00")) == 0
    assert all(a.notified_at is not None for a in alerts())


def test_a_crisis_is_texted_at_once_and_goes_to_on_call_if_unacknowledged(people):
    carol = people.carol
    people.riverside.on_call_phone = "+15005550199"
    db.session.commit()
    now = utc("2026-12-02T08:00")  # 03:00 New York: crises ignore quiet hours
    raise_some(carol, 1, now, kind="crisis")
    (first,) = outbox(purpose="alert")
    assert first.template == "crisis_therapist" and first.to_number == people.alice.therapist.phone
    assert sweeps.escalate_and_notify(now + timedelta(minutes=14)) == 0
    assert sweeps.escalate_and_notify(now + timedelta(minutes=15)) == 1
    assert sweeps.escalate_and_notify(now + timedelta(minutes=30)) == 0
    oncall = outbox(template="crisis_oncall")
    assert [m.to_number for m in oncall] == ["+15005550199"]
    assert "15 min" in oncall[0].body and "Carol" not in oncall[0].body
    (alert,) = alerts()
    assert alert.escalated_at == now + timedelta(minutes=15)


def test_an_acknowledged_crisis_does_not_go_to_on_call(people):
    people.riverside.on_call_phone = "+15005550199"
    db.session.commit()
    now = utc("2026-12-02T15:00")
    raise_some(people.carol, 1, now, kind="crisis")
    acknowledge_alert(alerts()[0], therapist_id=people.alice.id, now=now + timedelta(minutes=3))
    db.session.commit()
    assert sweeps.escalate_and_notify(now + timedelta(minutes=20)) == 0
    assert outbox(template="crisis_oncall") == []


def test_the_daily_digest_goes_once_after_eight_local_with_counts_only(people):
    carol = people.carol
    make_client(people.alice.therapist, display_name="Ann B.", phone="+15005550120")
    commitment = make_commitment(carol)
    db.session.commit()
    sweeps.plan_ahead(utc("2026-12-01T17:00"))
    sweeps.send_reminders_and_prompts(utc("2026-12-02T01:00"))
    send_queued(utc("2026-12-02T01:00"))
    sweeps.detect_misses_and_skips(utc("2026-12-02T03:01"))
    assert checkins_of(commitment.id)[0].status == "missed"
    assert sweeps.send_digests(utc("2026-12-02T12:59")) == 0  # 07:59 New York
    assert sweeps.send_digests(utc("2026-12-02T13:01")) == 1
    assert sweeps.send_digests(utc("2026-12-02T18:00")) == 0
    (digest,) = outbox(purpose="digest")
    assert digest.to_number == people.alice.therapist.phone
    assert "0 check-ins confirmed, 1 missed, 1 open alerts" in digest.body
    assert "Carol" not in digest.body and "Ann" not in digest.body
    assert (
        sweeps.send_digests(utc("2026-12-03T13:05")) == 1
    )  # the next day: the alert is still open
