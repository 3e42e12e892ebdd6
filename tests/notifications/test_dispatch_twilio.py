"""Dispatch through the real twilio library and the fake Twilio server: fields, pacing, timeouts."""

from __future__ import annotations

import time

import pytest

from service.db import db
from service.notifications.dispatch import dispatch_outbox
from service.notifications.providers import FakeProvider, TwilioProvider
from tests.notifications.sms_support import (
    ACCOUNT_SID,
    OUR_NUMBER,
    T0,
    TOKEN,
    created_by_server,
    fake_server_fixture,  # noqa: F401 - the fake_server fixture
    later,
    queue,
    reload,
)


@pytest.fixture
def settings(app):
    return app.extensions["settings"]


def provider_for(server, timeout=2.0):
    return TwilioProvider.from_settings(ACCOUNT_SID, TOKEN, from_number=OUR_NUMBER,
                                        base_url=server.base_url, timeout=timeout)  # fmt: skip


def test_status_callback_validity_and_sender_as_twilio_saw_them(people, fake_server, settings):
    people.riverside.sms_from_number = "+15005550077"
    message = queue(people.carol.phone, practice_id=people.carol.practice_id, purpose="prompt",
                    template="prompt_meeting_self", client_id=people.carol.id,
                    expires_at=later(T0, minutes=90))  # fmt: skip
    db.session.commit()
    with provider_for(fake_server) as provider:
        assert dispatch_outbox(now=T0, provider=provider, settings=settings) == 1
    (post,) = fake_server.posts()
    assert post.form["StatusCallback"] == "https://steadfast.example.org/twilio/status"
    assert post.form["ValidityPeriod"] == "5400"
    assert post.form["From"] == "+15005550077"
    assert (post.form["To"], post.form["Body"]) == (people.carol.phone, message.body)
    assert (post.username, post.password) == (ACCOUNT_SID, TOKEN)
    (created,) = created_by_server(fake_server)
    assert reload(message).provider_sid == created["sid"]


def test_the_token_bucket_paces_twilio_sends_at_sms_mps(people, fake_server, settings, monkeypatch):
    monkeypatch.setattr(settings, "SMS_MPS", 4.0)
    for n in range(4):
        queue(f"+1500555{4000 + n}")
    db.session.commit()
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    started = time.monotonic()
    with provider_for(fake_server) as provider:
        dispatch_outbox(now=T0, provider=provider, settings=settings, sleep=sleep)
    elapsed = time.monotonic() - started
    assert len(fake_server.posts()) == 4
    # Four sends at 4 per second span at least three quarter-second gaps.
    assert elapsed >= 0.75 - 0.02
    # A slot is reserved when the text is handed to a sender; at most two are reserved
    # ahead at this rate, so no sender waits longer than two gaps.
    assert waits and all(0 < w <= 2 * 0.25 + 1e-6 for w in waits)


def test_console_and_fake_backends_are_not_rate_limited(people, settings, monkeypatch):
    monkeypatch.setattr(settings, "SMS_MPS", 1.0)
    for n in range(4):
        queue(f"+1500555{4100 + n}")
    db.session.commit()
    waits: list[float] = []
    dispatch_outbox(now=T0, provider=FakeProvider(), settings=settings, sleep=waits.append)
    assert waits == []


def test_a_timed_out_send_that_twilio_created_is_reconciled_not_resent(
    people, fake_server, settings, clock
):
    message = queue("+15005554200")
    db.session.commit()
    fake_server.timeout_next(1, seconds=0.6)
    with provider_for(fake_server, timeout=0.2) as provider:
        assert dispatch_outbox(now=T0, provider=provider, settings=settings) == 0
    assert reload(message).status == "sending"
    deadline = time.monotonic() + 5
    while not fake_server.messages and time.monotonic() < deadline:
        time.sleep(0.05)  # the stalled request is answered (and the text created) late
    clock.set(later(T0, minutes=3))
    with provider_for(fake_server) as fresh:  # a new process: no in-memory dedupe
        assert dispatch_outbox(now=later(T0, minutes=3), provider=fresh, settings=settings) == 1
    (created,) = created_by_server(fake_server)
    assert len(fake_server.posts()) == 1
    assert (reload(message).status, reload(message).provider_sid) == ("sent", created["sid"])


def test_a_5xx_that_created_nothing_is_sent_exactly_once_after_reconciling(
    people, fake_server, settings, clock
):
    message = queue("+15005554300")
    db.session.commit()
    fake_server.fail_next(1, status=500)
    with provider_for(fake_server) as provider:
        dispatch_outbox(now=T0, provider=provider, settings=settings)
        assert reload(message).status == "sending"  # a 500 may hide a created message
        clock.set(later(T0, minutes=3))
        dispatch_outbox(now=later(T0, minutes=3), provider=provider, settings=settings)
    assert len(fake_server.posts()) == 2
    (created,) = created_by_server(fake_server)
    assert (reload(message).status, reload(message).provider_sid) == ("sent", created["sid"])
    assert reload(message).attempts == 2
