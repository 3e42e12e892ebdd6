"""record_reply on a check-in read closed: one conditional UPDATE records the late reply,
with the same outcome as the general path (the answer's UPDATE failing, a refresh, then
the late reply)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm.attributes import set_committed_value

from service import checkins
from service.db import db
from service.jobs import sweeps
from service.models import CheckIn, Event
from tests.engine.conftest import alerts, checkins_of, send_queued
from tests.factories import make_commitment

T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
ASK = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # 20:00 New York on Dec 1
LATE = ASK + timedelta(hours=5)


def two_missed(carol) -> tuple[CheckIn, CheckIn]:
    """Two check-ins of the same evening, prompted, then missed (each with its miss alert)."""
    first, second = make_commitment(carol), make_commitment(carol, title="Call Eve")
    db.session.commit()
    sweeps.plan_ahead(T0)
    sweeps.send_reminders_and_prompts(ASK)
    send_queued(ASK)
    sweeps.detect_misses_and_skips(ASK + timedelta(hours=2, minutes=1))
    db.session.commit()
    return checkins_of(first.id)[0], checkins_of(second.id)[0]


def statements(run) -> list[str]:
    seen: list[str] = []

    def record(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        run()
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return seen


def outcome(row: CheckIn) -> dict:
    """What a late reply leaves: the check-in (in the session and stored), its events, its
    miss alert."""
    kept = (row.status, row.late_reply, row.late_reply_at, row.updated_at, row.responded_at)
    db.session.expire_all()
    stored = db.session.get(CheckIn, row.id)
    events = [
        (e.type, e.client_id, e.subject_type, {**e.payload, "source_id": None}, e.occurred_at)
        for e in db.session.scalars(
            select(Event).where(Event.subject_id == row.id).order_by(Event.id)
        )
    ]
    (alert,) = alerts(kind="missed", source_id=row.source_id)
    return {
        "session": kept,
        "stored": (
            stored.status,
            stored.late_reply,
            stored.late_reply_at,
            stored.updated_at,
            stored.responded_at,
        ),  # fmt: skip
        "events": events,
        "alert": (alert.status, alert.resolved_by, {**alert.detail, "checkin_id": None}),
    }


@pytest.mark.parametrize("answer", ["confirm", "decline"])
def test_a_check_in_read_closed_gets_the_general_paths_late_reply(people, answer):
    carol = people.carol
    fast, general = two_missed(carol)
    assert (fast.status, general.status) == ("missed", "missed")
    # The general path: a check-in read while still prompted, missed since.
    set_committed_value(general, "status", "prompted")

    def reply(row):
        return lambda: checkins.record_reply(
            row, answer, responder=carol.phone, channel="sms", now=LATE
        )

    fast_sql = statements(reply(fast))
    general_sql = statements(reply(general))
    db.session.commit()
    # The fast path neither tries the answer's UPDATE nor reads the check-in back.
    assert not any(s.lstrip().upper().startswith("SELECT") and "FROM checkins" in s
                   for s in fast_sql)  # fmt: skip
    assert sum("UPDATE checkins" in s for s in fast_sql) == 1
    assert any("FROM checkins" in s for s in general_sql)
    status = checkins.ANSWERS[answer]
    assert (fast.status, fast.late_reply, fast.late_reply_at) == ("missed", status, LATE)
    assert outcome(fast) == outcome(general)


def test_a_check_in_answered_since_it_was_read_closed_is_left_as_it_is(people):
    carol = people.carol
    row, _ = two_missed(carol)
    # Corrected by the therapist after the webhook read it as missed.
    db.session.execute(
        CheckIn.__table__.update()
        .where(CheckIn.__table__.c.id == row.id)
        .values(status="confirmed", responded_by="therapist")
    )
    assert row.status == "missed"  # as read
    checkins.record_reply(row, "decline", responder=carol.phone, channel="sms", now=LATE)
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(CheckIn, row.id)
    assert (stored.status, stored.late_reply, stored.responded_by) == (
        "confirmed",
        None,
        "therapist",
    )
    assert not db.session.scalars(select(Event).where(Event.type == "checkin.late_reply")).all()


def test_a_skipped_check_in_takes_the_late_reply_too(people):
    carol = people.carol
    row, _ = two_missed(carol)
    db.session.execute(
        CheckIn.__table__.update().where(CheckIn.__table__.c.id == row.id).values(status="skipped")
    )
    assert row.status == "missed"  # as read: the UPDATE returns what it is now
    checkins.record_reply(row, "confirm", responder=carol.phone, channel="sms", now=LATE)
    assert (row.status, row.late_reply, row.late_reply_at) == ("skipped", "confirmed", LATE)
    db.session.commit()
    db.session.expire_all()
    stored = db.session.get(CheckIn, row.id)
    assert (stored.status, stored.late_reply, stored.late_reply_at) == (
        "skipped",
        "confirmed",
        LATE,
    )
