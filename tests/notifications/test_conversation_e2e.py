"""A whole conversation through the engine's ticks, the real twilio library and a fake Twilio.

Consent → opt-in confirmation → reminder → prompt → "1" → next prompt → no reply (missed,
therapist alerted) → sponsor prompt answered "2" → URGE → STOP (nothing more is sent) → START.
Then the same machinery under a 20% transient failure rate: every text ends final, none twice.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from service.consent import record_sms_consent
from service.db import db
from service.jobs.tick import tick
from service.models import Alert, CheckIn, Message, OptOut
from service.notifications import gsm
from service.notifications.templates import forbidden_words
from tests.factories import (
    make_client,
    make_commitment,
    make_contact,
    make_meeting,
    make_plan,
    make_therapist,
)
from tests.notifications.sms_support import (
    OUR_NUMBER,
    T0,
    answer_of,
    fake_server_fixture,  # noqa: F401 - the fake_server fixture
    inbound_params,
    post_signed,
    queue,
    run_fake_server,
    twilio_overrides,
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


class Conversation:
    """Drives the Twilio-backed app: ticks at chosen instants, signed inbound texts."""

    def __init__(self, app, server, clock):
        self.app, self.server, self.clock = app, server, clock
        self.web = app.test_client()

    def tick(self, when: str) -> dict[str, int]:
        now = self.clock.set(utc(when))
        with self.app.app_context():
            counts = tick(now)
            db.session.remove()
        return counts

    def text(self, when: str, from_: str, body: str) -> str | None:
        self.clock.set(utc(when))
        response = post_signed(self.web, "/twilio/inbound", inbound_params(from_, body))
        return answer_of(response)

    def posts_to(self, number: str) -> list[str]:
        return [p.form["Body"] for p in self.server.posts() if p.form["To"] == number]


@pytest.fixture
def cast(app):
    alice = make_therapist()
    carol = make_client(alice.therapist, sms_consent=False)
    dave = make_contact(carol, sms_consent=False)
    meeting = make_meeting(carol.practice_id)  # Thursdays 19:00-20:00 in New York
    make_plan(carol, meeting, starts_on=date(2026, 12, 1))
    make_commitment(carol, kind="practice", title="Breathing", time="12:00",
                    starts_on=date(2026, 12, 4))  # fmt: skip
    make_commitment(carol, kind="sponsor_call", title="Call Dave", time="18:00",
                    verifier_contact_id=dave.id, starts_on=date(2026, 12, 4))  # fmt: skip
    db.session.commit()
    return alice, carol, dave


def checkin_statuses(carol_id: str) -> list[str]:
    db.session.expire_all()
    rows = db.session.scalars(
        select(CheckIn).where(CheckIn.client_id == carol_id).order_by(CheckIn.event_at)
    )
    return [f"{r.source_type}:{r.status}" for r in rows]


def test_the_whole_conversation(app, make_app, fake_server, clock, cast):
    alice, carol, dave = cast
    convo = Conversation(
        make_app(**twilio_overrides(fake_server, TWILIO_FROM_NUMBER=OUR_NUMBER)), fake_server, clock
    )
    therapist_phone = alice.therapist.phone

    # Consent: each subject gets one opt-in confirmation with STOP and HELP instructions.
    for subject in (carol, dave):
        record_sms_consent(practice_id=carol.practice_id, subject=subject, granted=True,
                           method="written", recorded_by="alice", now=T0)  # fmt: skip
    db.session.commit()
    convo.tick("2026-12-01T17:00")
    for number in (carol.phone, dave.phone):
        (confirmation,) = convo.posts_to(number)
        assert "STOP" in confirmation and "HELP" in confirmation

    # Thursday: the reminder an hour before the meeting, the question when it ends.
    convo.tick("2026-12-02T17:00")
    convo.tick("2026-12-03T23:00")
    assert "reminder: meeting at 7:00 PM today" in convo.posts_to(carol.phone)[-1]
    convo.tick("2026-12-04T01:00")
    assert "did you make it to your 7:00 PM meeting" in convo.posts_to(carol.phone)[-1]
    assert convo.text("2026-12-04T01:05", carol.phone, "1") is None
    assert checkin_statuses(carol.id)[0] == "meeting_plan:confirmed"

    # Friday noon: the next question goes unanswered; the therapist hears of the miss.
    convo.tick("2026-12-04T17:00")
    assert "did you do your practice today" in convo.posts_to(carol.phone)[-1]
    convo.tick("2026-12-04T19:00")
    convo.tick("2026-12-04T19:01")
    assert [a.kind for a in db.session.scalars(select(Alert))] == ["missed"]
    (alert_text,) = [b for b in convo.posts_to(therapist_phone) if "new alert" in b]
    assert "1 new alert" in alert_text

    # Friday evening: Dave is asked about Carol's call and answers no.
    convo.tick("2026-12-04T23:00")
    (sponsor_prompt,) = convo.posts_to(dave.phone)[1:]
    assert "did C. call you today?" in sponsor_prompt and "Carol" not in sponsor_prompt
    assert convo.text("2026-12-04T23:05", dave.phone, "2") is None
    assert "commitment:declined" in checkin_statuses(carol.id)

    # Saturday morning: URGE gets her plan and Dave's number, and Dave is asked to call.
    answer = convo.text("2026-12-05T15:00", carol.phone, "URGE")
    assert "walk around the block" in answer and dave.phone in answer
    convo.tick("2026-12-05T15:01")
    assert "C. asked for a call" in convo.posts_to(dave.phone)[-1]

    # STOP: nothing answered, nothing more sent to her, whatever the engine does next.
    assert convo.text("2026-12-05T16:00", carol.phone, "STOP") is None
    posts_before = len(convo.posts_to(carol.phone))
    for when in ("2026-12-05T17:00", "2026-12-05T19:00", "2026-12-06T17:00", "2026-12-06T19:05"):
        convo.tick(when)
    assert len(convo.posts_to(carol.phone)) == posts_before
    assert db.session.get(OptOut, carol.phone) is not None
    assert "opted_out" in [a.kind for a in db.session.scalars(select(Alert))]

    # START: opted back in without an answer; the next question reaches her again.
    assert convo.text("2026-12-07T15:00", carol.phone, "START") is None
    assert db.session.get(OptOut, carol.phone) is None
    convo.tick("2026-12-07T17:00")
    assert len(convo.posts_to(carol.phone)) == posts_before + 1

    # Each POST is one recorded text (none twice), and every text is discreet and GSM-7.
    db.session.expire_all()
    sids = db.session.scalars(
        select(Message.provider_sid).where(
            Message.direction == "outbound", Message.provider_sid.is_not(None)
        )
    )
    assert sorted(sids) == sorted(fake_server.messages)
    assert len(fake_server.posts()) == len(fake_server.messages)
    assert_every_text_is_discreet()


def assert_every_text_is_discreet():
    db.session.expire_all()
    staff = {"alert_batch_therapist", "crisis_therapist", "crisis_oncall", "digest_therapist"}
    texts = db.session.scalars(select(Message).where(Message.direction == "outbound")).all()
    assert len(texts) >= 10
    for message in texts:
        assert gsm.is_gsm7(message.body), message.template
        assert forbidden_words(message.body, staff=message.template in staff) == [], message.body


@pytest.fixture
def flaky_server(clock, monkeypatch):
    yield from run_fake_server(clock, monkeypatch, failure_rate=0.2, seed=20261201)


def test_a_fifth_of_provider_calls_failing_loses_and_duplicates_nothing(
    app, make_app, flaky_server, clock, cast
):
    _, carol, dave = cast
    for subject in (carol, dave):
        record_sms_consent(practice_id=carol.practice_id, subject=subject, granted=True,
                           method="written", recorded_by="alice", now=T0)  # fmt: skip
    ids = [queue(f"+1500555{6000 + n}", body=f"Steadfast: note {n}").id for n in range(40)]
    db.session.commit()
    convo = Conversation(make_app(**twilio_overrides(flaky_server)), flaky_server, clock)
    for minute in range(240):
        settled_at = f"2026-12-01T{17 + minute // 60:02d}:{minute % 60:02d}"
        convo.tick(settled_at)
        db.session.expire_all()
        pending = db.session.scalars(
            select(Message.id).where(Message.status.in_(("queued", "sending")))
        ).all()
        if not pending:
            break
    assert not pending, f"{len(pending)} texts never settled"
    rows = db.session.scalars(
        select(Message).where(Message.direction == "outbound", Message.purpose != "reply")
    ).all()
    created = {m["sid"]: m for m in flaky_server.messages.values()}
    sent = [m for m in rows if m.status == "sent"]
    assert {m.status for m in rows} <= {"sent", "failed"}
    assert all(created[m.provider_sid]["body"] == m.body for m in sent)
    assert len(created) == len(sent)  # nothing created twice, nothing sent unrecorded
    assert set(ids) <= {m.id for m in sent}
    posts = len(flaky_server.posts())
    failures = posts - len(created)
    assert posts <= 2 * len(rows)  # bounded: no retry storm
    lookups = sum(1 for r in flaky_server.requests if r.method == "GET")
    print(f"fault test: {len(rows)} texts, {posts} POSTs ({failures} failed), {lookups} lookups, "
          f"{len(sent)} sent once, 0 duplicates, 0 lost, all settled by {settled_at}Z")  # fmt: skip
