"""Re-planning after edits, pauses, archive and discharge: the future changes, the past stays."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from service import checkins
from service.db import db
from service.jobs import sweeps
from service.models import Event
from tests.engine.conftest import checkins_of, send_queued
from tests.factories import make_commitment

T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
DAY2 = datetime(2026, 12, 2, 17, 0, tzinfo=UTC)  # Wednesday noon, after the first call


def answered_yesterday_and_planned_ahead(carol):
    commitment = make_commitment(carol)
    db.session.commit()
    sweeps.plan_ahead(T0)
    sweeps.send_reminders_and_prompts(T0.replace(day=2, hour=1))
    send_queued(T0.replace(day=2, hour=1))
    first = checkins_of(commitment.id)[0]
    checkins.record_reply(first, "confirm", responder=carol.phone, channel="sms",
                          now=T0.replace(day=2, hour=1, minute=5))  # fmt: skip
    db.session.commit()
    sweeps.plan_ahead(DAY2)
    return commitment


def test_changing_the_time_cancels_future_check_ins_and_plans_new_ones(people):
    commitment = answered_yesterday_and_planned_ahead(people.carol)
    commitment.time = "18:30"
    checkins.replan_source("commitment", commitment.id, now=DAY2)
    db.session.commit()
    by_occurrence = {(r.occurrence, r.status) for r in checkins_of(commitment.id)}
    assert (datetime(2026, 12, 1, 20, 0), "confirmed") in by_occurrence  # past: untouched
    assert (datetime(2026, 12, 2, 20, 0), "cancelled") in by_occurrence
    assert (datetime(2026, 12, 3, 20, 0), "cancelled") in by_occurrence
    assert (datetime(2026, 12, 2, 18, 30), "scheduled") in by_occurrence
    assert (datetime(2026, 12, 3, 18, 30), "scheduled") in by_occurrence
    cancelled = db.session.scalars(select(Event).where(Event.type == "checkin.cancelled")).all()
    assert {e.payload["reason"] for e in cancelled} == {"rescheduled"}


def test_pausing_cancels_the_paused_days_and_unpausing_revives_them(people):
    commitment = answered_yesterday_and_planned_ahead(people.carol)
    commitment.paused_until = date(2026, 12, 3)
    checkins.replan_source("commitment", commitment.id, now=DAY2)
    db.session.commit()
    status = {r.occurrence.date(): r.status for r in checkins_of(commitment.id)}
    assert status == {
        date(2026, 12, 1): "confirmed",
        date(2026, 12, 2): "cancelled",
        date(2026, 12, 3): "scheduled",  # paused_until is the first day back
    }
    commitment.paused_until = None
    checkins.replan_source("commitment", commitment.id, now=DAY2)
    db.session.commit()
    assert checkins_of(commitment.id)[1].status == "scheduled"


def test_an_inactive_commitment_stops_prompting(people):
    commitment = answered_yesterday_and_planned_ahead(people.carol)
    commitment.active = False
    checkins.replan_source("commitment", commitment.id, now=DAY2)
    db.session.commit()
    assert [r.status for r in checkins_of(commitment.id)] == ["confirmed", "cancelled", "cancelled"]
    assert sweeps.plan_ahead(DAY2 + timedelta(days=3)) == 0
    assert sweeps.send_reminders_and_prompts(DAY2 + timedelta(hours=8)) == 0


def test_pausing_or_discharging_the_client_cancels_only_the_future(people):
    carol = people.carol
    commitment = answered_yesterday_and_planned_ahead(carol)
    carol.status, carol.paused_until = "paused", date(2026, 12, 3)
    checkins.replan_client(carol.id, now=DAY2)
    db.session.commit()
    rows = checkins_of(commitment.id)
    assert [r.status for r in rows] == ["confirmed", "cancelled", "scheduled"]
    assert rows[1].skip_reason == "client_paused"
    carol.status, carol.paused_until, carol.discharged_at = "discharged", None, DAY2
    checkins.replan_client(carol.id, now=DAY2)
    db.session.commit()
    assert [r.status for r in checkins_of(commitment.id)] == ["confirmed", "cancelled", "cancelled"]
    assert sweeps.plan_ahead(DAY2 + timedelta(days=2)) == 0


def test_a_pending_prompt_for_a_discharged_client_is_never_sent(people):
    carol = people.carol
    commitment = make_commitment(carol)
    db.session.commit()
    sweeps.plan_ahead(T0)
    # Discharged without a re-plan (say, by hand in the database): the prompt sweep checks.
    carol.status = "discharged"
    db.session.commit()
    assert sweeps.send_reminders_and_prompts(T0.replace(day=2, hour=1)) == 0
    assert checkins_of(commitment.id)[0].skip_reason == "client_discharged"


def test_the_api_edit_path_replans_through_the_contract(people, client):
    carol = people.carol
    created = client.post(
        f"/api/v1/clients/{carol.id}/commitments",
        json={"kind": "sponsor_call", "title": "Call", "schedule": {"rrule": "FREQ=DAILY",
              "time": "19:00"}},
        headers=people.alice.headers,
    )  # fmt: skip
    assert created.status_code == 201, created.get_json()
    source_id = created.get_json()["id"]
    assert [r.occurrence for r in checkins_of(source_id)] == [
        datetime(2026, 12, 1, 19, 0),
        datetime(2026, 12, 2, 19, 0),
    ]
