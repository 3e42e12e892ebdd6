"""One contract, run against every SMS provider: console, fake, and Twilio via the fake server."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from service.notifications import gsm
from service.notifications.providers import (
    ConsoleProvider,
    DeliveryError,
    FakeProvider,
    SmsProvider,
    TwilioProvider,
)
from tests.fake_twilio import FakeTwilio

TO = "+15551234567"
OTHER = "+15557654321"
BODY = "Steadfast: did you make it to your 7:00 PM meeting? Reply 1 = yes, 2 = no"


@dataclass
class Harness:
    """A provider plus, where it can fail on demand, a way to script its next failure."""

    provider: SmsProvider
    # fail(code=, status=, retry_after=) scripts the next send to fail; None: it cannot.
    fail: Callable[..., None] | None


def _build(kind: str, request: pytest.FixtureRequest) -> Iterator[Harness]:
    if kind == "console":
        yield Harness(ConsoleProvider(), None)
    elif kind == "fake":
        fake = FakeProvider()

        def fail_fake(code: int | None = None, status: int | None = None, retry_after=None):
            fake.fail_next(code=code, status=status, retry_after=retry_after)

        yield Harness(fake, fail_fake)
    else:
        server: FakeTwilio = request.getfixturevalue("fake_twilio")
        provider = TwilioProvider.from_settings(
            server.account_sid,
            server.auth_token,
            from_number="+15550001111",
            base_url=server.base_url,
            timeout=2,
        )

        def fail_server(code: int | None = None, status: int | None = None, retry_after=None):
            server.fail_next(1, code=code, status=status, retry_after=retry_after)

        with provider:
            yield Harness(provider, fail_server)


@pytest.fixture(params=["console", "fake", "twilio"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """Yield each provider in turn behind the same harness."""
    yield from _build(request.param, request)


@pytest.fixture(params=["fake", "twilio"])
def failing(request: pytest.FixtureRequest) -> Iterator[Harness]:
    """Yield each provider that can be scripted to fail (the console one cannot)."""
    yield from _build(request.param, request)


def send(provider: SmsProvider, body: str = BODY, to: str = TO, key: str = "key-1"):
    return provider.send(
        to=to,
        body=body,
        sender=None,
        status_callback=None,
        validity_seconds=None,
        idempotency_key=key,
    )


def test_is_an_sms_provider(harness: Harness) -> None:
    assert isinstance(harness.provider, SmsProvider)
    assert harness.provider.name in ("console", "fake", "twilio")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("hello", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("{" * 80, 1),  # extension characters count double: 160 septets
        ("é" * 70 + "😀", 2),  # one emoji forces UCS-2: 72 code units
    ],
)
def test_send_returns_a_sid_status_and_segments(harness: Harness, body: str, expected: int) -> None:
    result = send(harness.provider, body)
    assert isinstance(result.sid, str) and len(result.sid) >= 10
    assert isinstance(result.status, str) and result.status
    assert result.segments == expected == gsm.segments(body)


def test_console_sids_start_with_co() -> None:
    assert send(ConsoleProvider()).sid.startswith("CO")


def test_each_message_gets_its_own_sid(harness: Harness) -> None:
    first = send(harness.provider, key="a")
    second = send(harness.provider, key="b")
    assert first.sid != second.sid


def test_lookup_finds_the_message_in_its_window(harness: Harness) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    result = send(harness.provider)
    send(harness.provider, "someone else", to=OTHER, key="key-other")
    after = datetime.now(UTC) + timedelta(seconds=1)

    found = harness.provider.lookup(to=TO, since=before, until=after)

    assert [(r.sid, r.to, r.body) for r in found] == [(result.sid, TO, BODY)]
    assert found[0].status
    assert found[0].date_created.tzinfo is not None
    assert before - timedelta(seconds=1) <= found[0].date_created <= after + timedelta(seconds=1)


def test_lookup_ignores_other_windows_and_numbers(harness: Harness) -> None:
    send(harness.provider)
    now = datetime.now(UTC)
    assert harness.provider.lookup(to=OTHER, since=now - timedelta(hours=1), until=now) == []
    long_ago = now - timedelta(hours=2)
    assert harness.provider.lookup(to=TO, since=long_ago, until=long_ago + timedelta(hours=1)) == []


def test_lookup_accepts_naive_utc_datetimes(harness: Harness) -> None:
    result = send(harness.provider)
    now = datetime.now(UTC).replace(tzinfo=None)
    found = harness.provider.lookup(
        to=TO, since=now - timedelta(minutes=1), until=now + timedelta(minutes=1)
    )
    assert [r.sid for r in found] == [result.sid]


def test_same_idempotency_key_sends_once(harness: Harness) -> None:
    first = send(harness.provider, key="same")
    again = send(harness.provider, key="same")
    assert again == first
    now = datetime.now(UTC)
    found = harness.provider.lookup(
        to=TO, since=now - timedelta(minutes=1), until=now + timedelta(minutes=1)
    )
    assert len(found) == 1


def test_an_invalid_number_is_a_permanent_error(harness: Harness) -> None:
    with pytest.raises(DeliveryError) as caught:
        send(harness.provider, to="555-1234")
    assert caught.value.permanent is True
    assert caught.value.code == 21211


@pytest.mark.parametrize("code", [21610, 21211, 21614, 21408, 21612])
def test_permanent_twilio_codes(failing: Harness, code: int) -> None:
    failing.fail(code=code, status=400)
    with pytest.raises(DeliveryError) as caught:
        send(failing.provider)
    error = caught.value
    assert (error.permanent, error.code, error.status) == (True, code, 400)


@pytest.mark.parametrize(
    ("code", "status"), [(20429, 429), (None, 429), (21611, 400), (None, 500), (None, 503)]
)
def test_transient_errors(failing: Harness, code: int | None, status: int) -> None:
    failing.fail(code=code, status=status)
    with pytest.raises(DeliveryError) as caught:
        send(failing.provider)
    assert caught.value.permanent is False
    assert caught.value.status == status


def test_rate_limit_carries_retry_after(failing: Harness) -> None:
    failing.fail(code=20429, status=429, retry_after=3)
    with pytest.raises(DeliveryError) as caught:
        send(failing.provider)
    assert caught.value.permanent is False
    assert caught.value.retry_after == pytest.approx(3)


def test_a_failed_send_can_be_retried_with_the_same_key(failing: Harness) -> None:
    failing.fail(status=500)
    with pytest.raises(DeliveryError):
        send(failing.provider, key="retry-me")
    result = send(failing.provider, key="retry-me")
    assert result.sid


def test_never_logs_or_raises_full_numbers_or_bodies(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "my private words 4711"
    caplog.set_level(logging.DEBUG)
    send(harness.provider, secret)
    now = datetime.now(UTC)
    harness.provider.lookup(to=TO, since=now - timedelta(minutes=1), until=now)
    errors: list[DeliveryError] = []
    if harness.fail is not None:
        harness.fail(code=21211, status=400)  # Twilio's message quotes the number
        with pytest.raises(DeliveryError) as caught:
            send(harness.provider, secret, key="k2")
        errors.append(caught.value)
    assert caplog.records, "the provider should log something"
    texts = [r.getMessage() for r in caplog.records] + [str(e) for e in errors]
    texts += [repr(e) for e in errors]
    for text in texts:
        assert TO not in text and TO[1:] not in text and "%2B1555" not in text
        assert secret not in text
    assert any("***4567" in t for t in texts)


# ---- the stand-ins' own knobs ------------------------------------------------------


def test_console_logs_a_masked_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="service.notifications.providers")
    result = send(ConsoleProvider())
    [record] = caplog.records
    assert record.levelno == logging.INFO
    assert "***4567" in record.getMessage() and result.sid in record.getMessage()
    assert f"{len(BODY)} chars" in record.getMessage()


def test_fake_records_every_send_and_attempt() -> None:
    fake = FakeProvider()
    send(fake, key="a")
    fake.fail_next(code=21610)
    with pytest.raises(DeliveryError):
        send(fake, key="b")
    send(fake, key="a")  # a repeat: answered from memory
    assert [m.idempotency_key for m in fake.sent] == ["a"]
    assert [a["idempotency_key"] for a in fake.attempts] == ["a", "b", "a"]
    assert fake.sent[0].body == BODY and fake.sent[0].to == TO
    assert TO not in repr(fake) and BODY not in repr(fake)


def test_fake_fail_next_defaults() -> None:
    fake = FakeProvider()
    fake.fail_next(code=21211)
    fake.fail_next(status=429, retry_after=1.5)
    fake.fail_next(code=21610, status=400, permanent=False)  # scripted override
    fake.fail_next(times=2)
    errors = []
    for i in range(5):
        with pytest.raises(DeliveryError) as caught:
            send(fake, key=str(i))
        errors.append(caught.value)
    assert [(e.permanent, e.code, e.status) for e in errors] == [
        (True, 21211, 400),
        (False, None, 429),
        (False, 21610, 400),
        (False, None, 500),
        (False, None, 500),
    ]
    assert errors[1].retry_after == 1.5
    assert send(fake, key="ok").sid


def test_fake_failure_rate_is_seeded() -> None:
    def outcomes(seed: int) -> list[bool]:
        fake = FakeProvider(failure_rate=0.3, seed=seed)
        result = []
        for i in range(50):
            try:
                send(fake, key=str(i))
                result.append(True)
            except DeliveryError as error:
                assert not error.permanent
                result.append(False)
        return result

    assert outcomes(3) == outcomes(3)
    assert 5 <= outcomes(3).count(False) <= 25


def test_fake_lost_response_is_found_by_lookup() -> None:
    fake = FakeProvider()
    fake.lose_response_next()
    before = datetime.now(UTC)
    with pytest.raises(DeliveryError) as caught:
        send(fake)
    assert caught.value.maybe_sent and not caught.value.permanent
    [record] = fake.lookup(to=TO, since=before, until=datetime.now(UTC))
    assert record.body == BODY
    fake.set_status(record.sid, "delivered")
    assert fake.lookup(to=TO, since=before, until=datetime.now(UTC))[0].status == "delivered"


def test_fake_uses_its_clock() -> None:
    moment = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
    fake = FakeProvider(clock=lambda: moment)
    send(fake)
    assert fake.lookup(to=TO, since=moment, until=moment)[0].date_created == moment


def test_delivery_errors_pickle() -> None:
    error = DeliveryError("x", permanent=False, code=20429, status=429, retry_after=2.0)
    copy = pickle.loads(pickle.dumps(error))
    assert repr(copy) == repr(error)
