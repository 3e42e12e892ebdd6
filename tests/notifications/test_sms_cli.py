"""`flask sms receive | outbox | test`: the webhook's handler, the outbox list, a one-off test text."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from service.db import db
from service.jobs import sweeps
from service.models import CheckIn, Message, OptOut
from service.notifications.providers import FakeProvider
from tests.factories import make_commitment
from tests.notifications.sms_support import T0, outbound, queue

ASK = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def sms(runner, *args):
    return runner.invoke(args=["sms", *args], catch_exceptions=False)


def test_receive_prints_the_answer_the_webhook_would_give(runner, people):
    result = sms(runner, "receive", "--from", people.carol.phone, "--body", "HELP")
    assert result.exit_code == 0
    assert "STOP" in result.output
    (reply,) = outbound(purpose="reply")
    assert reply.body == result.output.strip()


def test_receive_answers_a_prompt_and_prints_nothing(runner, people):
    commitment = make_commitment(people.carol)
    db.session.commit()
    sweeps.plan_ahead(T0)
    sweeps.send_reminders_and_prompts(ASK)
    result = sms(runner, "receive", "--from", "(500) 555-0101", "--body", "1",
                 "--now", "2026-12-02T01:05:00Z")  # fmt: skip
    assert (result.exit_code, result.output) == (0, "")
    row = db.session.scalar(
        select(CheckIn)
        .where(CheckIn.source_id == commitment.id)
        .order_by(CheckIn.event_at)
        .limit(1)
    )
    db.session.refresh(row)
    assert row.status == "confirmed"


def test_receive_from_a_stranger_exits_zero(runner, people):
    first = sms(runner, "receive", "--from", "+15005550999", "--body", "who is this")
    second = sms(runner, "receive", "--from", "+15005550999", "--body", "hello")
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert "don't recognize" in first.output and second.output == ""


def test_receive_stop_opts_out_and_prints_nothing(runner, people):
    result = sms(runner, "receive", "--from", people.carol.phone, "--body", "STOP")
    assert (result.exit_code, result.output) == (0, "")
    assert db.session.get(OptOut, people.carol.phone) is not None


def test_outbox_masks_numbers_and_never_shows_bodies(runner, people):
    message = queue(people.carol.phone, body="Steadfast: a private body")
    db.session.commit()
    result = sms(runner, "outbox", "--limit", "5")
    assert result.exit_code == 0
    assert "0101" in result.output and people.carol.phone not in result.output
    assert message.body not in result.output and "queued" in result.output


def test_test_sends_one_text_and_prints_the_sid(app, runner, people, monkeypatch):
    provider = FakeProvider(seed=5)
    monkeypatch.setitem(app.extensions, "sms", provider)
    result = sms(runner, "test", "(500) 555-0177")
    assert result.exit_code == 0, result.output
    (sent,) = provider.sent
    assert result.output.strip() == sent.sid
    assert sent.to == "+15005550177" and "test message" in sent.body
    (row,) = db.session.scalars(select(Message).where(Message.purpose == "test"))
    assert (row.status, row.provider_sid) == ("sent", sent.sid)


def test_test_fails_with_the_reason_and_is_not_retried_later(app, runner, people, monkeypatch):
    provider = FakeProvider(seed=5)
    provider.fail_next(status=503)
    monkeypatch.setitem(app.extensions, "sms", provider)
    result = runner.invoke(args=["sms", "test", "+15005550177"])
    assert result.exit_code != 0
    assert "HTTP 503" in result.output
    (row,) = db.session.scalars(select(Message).where(Message.purpose == "test"))
    db.session.refresh(row)
    assert row.status == "failed"


def test_test_refuses_a_malformed_number(runner, people):
    result = runner.invoke(args=["sms", "test", "not a number"])
    assert result.exit_code != 0
