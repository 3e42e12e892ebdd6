"""Replies, late replies and therapist corrections; escalation thresholds and dedup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from service import checkins
from service.db import db
from service.jobs import sweeps
from service.models import AuditEntry, Event
from tests.engine.conftest import alerts, checkins_of, send_queued
from tests.factories import make_commitment

T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
ASK = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # 20:00 New York on Dec 1


def prompted(carol, **fields):
    commitment = make_commitment(carol, **fields)
    db.session.commit()
    sweeps.plan_ahead(T0)
    sweeps.send_reminders_and_prompts(ASK)
    send_queued(ASK)
    return commitment, checkins_of(commitment.id)[0]


def event_types() -> list[str]:
    return [e.type for e in db.session.scalars(select(Event).order_by(Event.id))]


def test_a_confirmation_by_sms_closes_the_prompt(people):
    carol = people.carol
    _, row = prompted(carol)
    assert checkins.open_prompts_for(carol.phone, ASK) == [row]
    checkins.record_reply(row, "confirm", responder=carol.phone, channel="sms", now=ASK)
    db.session.commit()
    assert (row.status, row.channel, row.responded_by) == ("confirmed", "sms", carol.phone)
    assert checkins.open_prompts_for(carol.phone, ASK) == []
    assert "checkin.confirmed" in event_types()
    assert sweeps.detect_misses_and_skips(ASK + timedelta(hours=3)) == 0


def test_a_decline_alerts_the_therapist_at_once_and_only_once(people):
    carol = people.carol
    _, row = prompted(carol)
    checkins.record_reply(row, "decline", responder=carol.phone, channel="sms", now=ASK)
    checkins.record_reply(row, "decline", responder=carol.phone, channel="sms", now=ASK)
    db.session.commit()
    (alert,) = alerts()
    assert (alert.kind, alert.occurrence, alert.therapist_id) == (
        "declined",
        "2026-12-01T20:00",
        people.alice.id,
    )
    assert row.status == "declined"


def test_sms_cannot_answer_an_unasked_check_in_but_the_dashboard_can(people):
    carol = people.carol
    commitment = make_commitment(carol)
    db.session.commit()
    sweeps.plan_ahead(T0)
    row = checkins_of(commitment.id)[0]
    checkins.record_reply(row, "confirm", responder=carol.phone, channel="sms", now=T0)
    assert row.status == "scheduled"
    checkins.record_reply(row, "confirm", responder=people.alice.id, channel="dashboard", now=T0)
    db.session.commit()
    assert row.status == "confirmed"
    assert sweeps.send_reminders_and_prompts(ASK) == 0


def test_a_late_reply_is_recorded_and_lowers_the_alert_but_keeps_the_miss(people):
    carol = people.carol
    _, row = prompted(carol)
    sweeps.detect_misses_and_skips(ASK + timedelta(hours=2, minutes=1))
    (alert,) = alerts(kind="missed")
    late = ASK + timedelta(hours=5)
    checkins.record_reply(row, "confirm", responder=carol.phone, channel="sms", now=late)
    db.session.commit()
    assert (row.status, row.late_reply, row.late_reply_at) == ("missed", "confirmed", late)
    db.session.refresh(alert)
    assert alert.status == "resolved" and alert.detail["late_reply"] == "confirmed"
    assert "checkin.late_reply" in event_types()
    assert checkins.late_reply_candidates(carol.phone, late) == [row]


def test_a_late_no_marks_the_alert_and_leaves_it_open(people):
    carol = people.carol
    _, row = prompted(carol)
    sweeps.detect_misses_and_skips(ASK + timedelta(hours=3))
    checkins.record_reply(row, "decline", responder=carol.phone, channel="sms",
                          now=ASK + timedelta(hours=4))  # fmt: skip
    db.session.commit()
    (alert,) = alerts()
    assert alert.status == "open" and alert.detail["late_reply"] == "declined"


def test_a_therapist_correction_is_evented_and_resolves_the_alert(people):
    carol = people.carol
    _, row = prompted(carol)
    sweeps.detect_misses_and_skips(ASK + timedelta(hours=3))
    checkins.correct_checkin(row, status="confirmed", note="He called from the hospital",
                             actor=people.alice.id, now=ASK + timedelta(hours=6))  # fmt: skip
    db.session.commit()
    assert (row.status, row.note) == ("confirmed", "He called from the hospital")
    (alert,) = alerts()
    assert alert.status == "resolved" and alert.resolved_by == people.alice.id
    corrected = db.session.scalars(select(Event).where(Event.type == "checkin.corrected")).one()
    assert corrected.payload["from"] == "missed" and corrected.payload["to"] == "confirmed"
    with pytest.raises(ValueError):
        checkins.correct_checkin(row, status="missed", note=None, actor="x", now=ASK)


def test_patch_checkin_corrects_audits_and_hides_other_practices(people, client):
    carol = people.carol
    _, row = prompted(carol)
    url = f"/api/v1/checkins/{row.id}"
    assert (
        client.patch(url, json={"status": "excused"}, headers=people.bob.headers).status_code == 404
    )
    answer = client.patch(
        url, json={"status": "excused", "note": "Flu"}, headers=people.alice.headers
    )
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["status"] == "excused" and answer.get_json()["note"] == "Flu"
    bad = client.patch(url, json={"status": "missed"}, headers=people.alice.headers)
    assert bad.status_code == 422 and bad.mimetype == "application/problem+json"
    audit = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "checkin.correct")
    ).one()
    assert audit.detail == {"from": "prompted", "to": "excused"}
    assert "checkin.excused" in event_types()


def test_list_checkins_filters_and_shapes(people, client):
    carol = people.carol
    commitment, row = prompted(carol, verifier_contact_id=people.dave.id)
    url = f"/api/v1/clients/{carol.id}/checkins"
    page = client.get(url, headers=people.alice.headers).get_json()
    assert [item["occurrence"] for item in page["items"]] == [
        "2026-12-01T20:00",
        "2026-12-02T20:00",
    ]
    first = page["items"][0]
    assert first["verifier"] == people.dave.id and first["status"] == "prompted"
    assert first["due_at"] == "2026-12-02T01:00:00Z" and first["source_id"] == commitment.id
    only = client.get(f"{url}?status=scheduled", headers=people.alice.headers).get_json()
    assert [i["occurrence"] for i in only["items"]] == ["2026-12-02T20:00"]
    dated = client.get(f"{url}?from=2026-12-02&to=2026-12-02", headers=people.alice.headers)
    assert [i["occurrence"] for i in dated.get_json()["items"]] == ["2026-12-02T20:00"]
    assert client.get(url, headers=people.bob.headers).status_code == 404
    assert client.get(f"{url}?from=tomorrow", headers=people.alice.headers).status_code == 422


def test_escalation_waits_for_the_threshold_and_never_duplicates(people):
    carol = people.carol
    commitment = make_commitment(carol, escalate_after_misses=2)
    db.session.commit()
    for day in range(3):
        ask = ASK + timedelta(days=day)
        sweeps.plan_ahead(ask - timedelta(hours=8))
        sweeps.send_reminders_and_prompts(ask)
        send_queued(ask)
        for _ in range(2):  # ticking twice never raises twice
            sweeps.detect_misses_and_skips(ask + timedelta(hours=2, minutes=1))
        if day == 0:
            assert alerts() == []
    assert [a.occurrence for a in alerts(kind="missed")] == ["2026-12-02T20:00", "2026-12-03T20:00"]
    assert [a.detail["consecutive"] for a in alerts()] == [2, 3]
    assert [r.status for r in checkins_of(commitment.id)[:3]] == ["missed"] * 3


def test_a_confirmation_resets_the_run_of_misses(people):
    carol = people.carol
    commitment = make_commitment(carol, escalate_after_misses=2)
    db.session.commit()
    for day, answer in enumerate((None, "confirm", None)):
        ask = ASK + timedelta(days=day)
        sweeps.plan_ahead(ask - timedelta(hours=8))
        sweeps.send_reminders_and_prompts(ask)
        send_queued(ask)
        if answer:
            row = checkins_of(commitment.id)[day]
            checkins.record_reply(row, answer, responder=carol.phone, channel="sms", now=ask)
            db.session.commit()
        sweeps.detect_misses_and_skips(ask + timedelta(hours=3))
    assert alerts() == []


def test_a_miss_tells_a_consenting_sponsor_when_asked_to(people):
    carol = people.carol
    prompted(carol, notify_sponsor=True)
    sweeps.detect_misses_and_skips(ASK + timedelta(hours=2, minutes=1))  # 22:01, quiet hours
    from tests.engine.conftest import outbox

    (notice,) = outbox(template="miss_notice_contact")
    assert notice.to_number == people.dave.phone
    assert notice.send_after == datetime(2026, 12, 2, 13, 0, tzinfo=UTC)  # 08:00 local
    assert "Carol" not in notice.body and "C." in notice.body


def test_a_miss_after_the_client_was_discharged_raises_no_alert(people):
    carol = people.carol
    _, row = prompted(carol)
    carol.status = "discharged"
    db.session.commit()
    sweeps.detect_misses_and_skips(ASK + timedelta(hours=3))
    db.session.refresh(row)
    assert row.status == "missed" and alerts() == []
