"""Closing many check-ins in one sweep: each once, one event each, escalation counted in order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from service import alerts as alerts_module
from service.db import db
from service.jobs import sweeps
from service.models import Event, OptOut
from tests.engine.conftest import alerts, checkins_of, outbox, send_queued
from tests.factories import make_client, make_commitment, make_contact

ASK = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # 20:00 New York on Dec 1


def _events(kind: str) -> list[Event]:
    return list(db.session.scalars(select(Event).where(Event.type == kind).order_by(Event.id)))


def test_three_misses_closed_in_one_sweep_count_their_run_in_order(people):
    commitment = make_commitment(people.carol, escalate_after_misses=2)
    db.session.commit()
    for day in range(3):  # asked three evenings; nothing closes them until the end
        ask = ASK + timedelta(days=day)
        sweeps.plan_ahead(ask - timedelta(hours=8))
        sweeps.send_reminders_and_prompts(ask)
        send_queued(ask)
    rows = checkins_of(commitment.id)[:3]
    assert [row.status for row in rows] == ["prompted"] * 3

    later = ASK + timedelta(days=2, hours=3)
    assert sweeps.detect_misses_and_skips(later) == 3
    assert sweeps.detect_misses_and_skips(later) == 0  # a second tick closes nothing
    for row in rows:
        db.session.refresh(row)
    assert [row.status for row in rows] == ["missed"] * 3
    assert [row.updated_at for row in rows] == [later] * 3
    missed = _events("checkin.missed")
    assert sorted(event.subject_id for event in missed) == sorted(row.id for row in rows)
    # Counted in occurrence order within the batch: the first miss is below the threshold,
    # the second makes a run of 2 and the third a run of 3 (each further miss alerts again).
    raised = [(a.kind, a.detail["checkin_id"], a.detail["consecutive"]) for a in alerts()]
    assert sorted(raised, key=lambda r: r[2]) == [
        ("missed", rows[1].id, 2),
        ("missed", rows[2].id, 3),
    ]


def test_a_batch_mixes_misses_skips_and_extensions(people):
    missed = make_commitment(people.carol, time="20:00", grace_minutes=60)
    undelivered = make_commitment(people.carol, time="20:00", grace_minutes=60)
    late = make_commitment(people.carol, time="20:00", grace_minutes=60)
    db.session.commit()
    sweeps.plan_ahead(ASK - timedelta(hours=8))
    assert sweeps.send_reminders_and_prompts(ASK) == 3
    rows = {source.id: checkins_of(source.id)[0] for source in (missed, undelivered, late)}
    for message in outbox(purpose="prompt"):
        if message.checkin_id == rows[missed.id].id:
            message.status, message.sent_at = "sent", ASK
        elif message.checkin_id == rows[undelivered.id].id:
            message.status = "failed"
        else:
            message.status, message.sent_at = "sent", ASK + timedelta(minutes=50)  # sent late
    db.session.commit()

    at = ASK + timedelta(minutes=61)
    assert sweeps.detect_misses_and_skips(at) == 2
    for row in rows.values():
        db.session.refresh(row)
    assert rows[missed.id].status == "missed"
    assert rows[undelivered.id].status == "skipped"
    assert rows[undelivered.id].skip_reason is not None
    # The late text keeps its check-in open for the whole grace from when it went out.
    assert rows[late.id].status == "prompted"
    assert rows[late.id].closes_at == ASK + timedelta(minutes=110)
    skipped = _events("checkin.skipped")
    assert [event.subject_id for event in skipped] == [rows[undelivered.id].id]
    assert [event.subject_id for event in _events("checkin.missed")] == [rows[missed.id].id]


def test_the_miss_notice_goes_to_the_first_sponsor_who_may_be_told(people):
    carol = people.carol
    db.session.add(OptOut(phone=people.dave.phone, reason="opt_out", created_at=ASK))  # STOPped
    make_contact(carol, display_name="Erin", phone="+15005550103", disclosure_scope=["checkins"])
    make_contact(carol, display_name="Gus", phone="+15005550105", sms_consent=False)
    finn = make_contact(carol, display_name="Finn", phone="+15005550104")
    other = make_client(people.alice.therapist, display_name="Olga P.", phone="+15005550110")
    make_contact(other, display_name="Pat", phone="+15005550106")
    for client in (carol, other):
        make_commitment(client, notify_sponsor=True, escalate_after_misses=1)
    db.session.commit()
    sweeps.plan_ahead(ASK - timedelta(hours=8))
    sweeps.send_reminders_and_prompts(ASK)
    send_queued(ASK)

    assert sweeps.detect_misses_and_skips(ASK + timedelta(hours=2, minutes=1)) == 2
    notices = outbox(template="miss_notice_contact")
    # Carol's: Dave opted out, Erin may not hear of misses, Gus never agreed to texts.
    assert sorted(notice.to_number for notice in notices) == ["+15005550104", "+15005550106"]
    (to_finn,) = [notice for notice in notices if notice.client_id == carol.id]
    assert to_finn.contact_id == finn.id
    assert len(alerts()) == 2


def test_raise_alerts_raises_each_key_once_and_records_one_event_each(people):
    carol = people.carol
    spec = {"kind": "missed", "client": carol, "source_type": "commitment", "source_id": "cm_x",
            "occurrence": "2026-12-01T20:00", "detail": {"consecutive": 2}}  # fmt: skip
    other = {**spec, "occurrence": "2026-12-02T20:00"}
    first = alerts_module.raise_alerts([spec, other, spec], now=ASK)
    assert first[0] is not None and first[1] is not None and first[2] is None
    assert alerts_module.raise_alerts([spec], now=ASK) == [None]  # already raised
    with pytest.raises(ValueError):
        alerts_module.raise_alerts([{**spec, "kind": "crisis"}], now=ASK)
    db.session.commit()
    assert sorted(alert.id for alert in alerts()) == sorted(first[:2])
    assert all(alert.therapist_id == carol.therapist_id for alert in alerts())
    raised = _events("alert.raised")
    assert sorted(event.subject_id for event in raised) == sorted(first[:2])
    assert raised[0].payload["source_id"] == "cm_x"
