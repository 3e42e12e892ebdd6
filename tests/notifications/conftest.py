"""Fixtures shared by the notification tests: the fake Twilio server and a provider on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from service.notifications.providers import TwilioProvider
from tests.fake_twilio import FakeTwilio, fake_twilio_fixture

FROM_NUMBER = "+15550001111"


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    """Run a fake Twilio API on 127.0.0.1 for one test."""
    yield from fake_twilio_fixture()


@pytest.fixture
def twilio_provider(fake_twilio: FakeTwilio) -> Iterator[TwilioProvider]:
    """Return a TwilioProvider whose real twilio Client talks to the fake server."""
    provider = TwilioProvider.from_settings(
        fake_twilio.account_sid,
        fake_twilio.auth_token,
        from_number=FROM_NUMBER,
        base_url=fake_twilio.base_url,
        timeout=2,
    )
    with provider:
        yield provider
