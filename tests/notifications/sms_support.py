"""Helpers for the SMS tests: signed webhook posts, queued texts, and a fake Twilio on our clock."""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

import tests.fake_twilio as fake_twilio_module
from service.db import db
from service.models import Alert, Event, Message
from service.outbox import enqueue_message
from tests.fake_twilio import FakeTwilio

TOKEN = "test-twilio-auth-token"
ACCOUNT_SID = "AC" + "0" * 32
PUBLIC = "https://steadfast.example.org"
OUR_NUMBER = "+15005550006"
T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # 12:00 in New York: nobody's quiet hours


def sign(url: str, params: dict[str, str], token: str = TOKEN) -> str:
    """Return the X-Twilio-Signature Twilio would send for url and params."""
    return RequestValidator(token).compute_signature(url, params)


def post_signed(
    client: Any,
    path: str,
    params: dict[str, str],
    *,
    signed_url: str | None = None,
    token: str = TOKEN,
    **kwargs: Any,
) -> Any:
    """POST form params to path, signed for signed_url (default: the public URL of path)."""
    signature = sign(signed_url or PUBLIC + path, params, token)
    headers = {**kwargs.pop("headers", {}), "X-Twilio-Signature": signature}
    return client.post(path, data=params, headers=headers, **kwargs)


def inbound_params(from_: str, body: str, sid: str | None = None) -> dict[str, str]:
    """Return the form Twilio posts for an inbound text."""
    sid = sid or "SM" + uuid.uuid4().hex
    return {
        "MessageSid": sid,
        "SmsSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": from_,
        "To": OUR_NUMBER,
        "Body": body,
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }


def answer_of(response: Any) -> str | None:
    """Return the text of the TwiML <Message> in a webhook response, or None."""
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/xml"
    root = ET.fromstring(response.get_data())
    assert root.tag == "Response"
    messages = root.findall("Message")
    assert len(messages) <= 1
    return messages[0].text if messages else None


def text_in(client: Any, from_: str, body: str, sid: str | None = None) -> str | None:
    """Send a signed inbound text through POST /twilio/inbound and return the answer."""
    return answer_of(post_signed(client, "/twilio/inbound", inbound_params(from_, body, sid)))


def queue(to: str, *, now: datetime = T0, body: str | None = None, **fields: Any) -> Message:
    """Queue one outbound text (a test text by default) and return its row."""
    values: dict[str, Any] = {
        "practice_id": None,
        "purpose": "test",
        "template": "test_message",
        "idempotency_key": f"t:{uuid.uuid4().hex}",
    }
    values.update(fields)
    message = enqueue_message(to=to, body=body or f"Steadfast: note {uuid.uuid4().hex[:6]}",
                              now=now, **values)  # fmt: skip
    assert message is not None
    db.session.flush()
    return message


def reload(message: Message) -> Message:
    """Return the row as the database has it now."""
    return db.session.get(Message, message.id, populate_existing=True)


def outbound(**criteria: Any) -> list[Message]:
    """Return outbound rows matching column == value criteria, oldest first."""
    stmt = select(Message).where(Message.direction == "outbound")
    for column, value in criteria.items():
        stmt = stmt.where(getattr(Message, column) == value)
    return list(db.session.scalars(stmt.order_by(Message.created_at, Message.id)))


def message_count() -> int:
    """Count every message row, in or out."""
    return int(db.session.scalar(select(func.count(Message.id))) or 0)


def alerts_of(kind: str | None = None) -> list[Alert]:
    """Return alerts (of one kind), oldest first."""
    stmt = select(Alert)
    if kind:
        stmt = stmt.where(Alert.kind == kind)
    return list(db.session.scalars(stmt.order_by(Alert.created_at, Alert.id)))


def event_types() -> list[str]:
    """Return the types of every event, in order."""
    return [e.type for e in db.session.scalars(select(Event).order_by(Event.id))]


class _ClockDatetime(datetime):
    """datetime whose now() is the test clock, so the fake server stamps our instants."""

    clock: Any = None

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        value = cls.clock()
        return value.astimezone(tz) if tz is not None else value


def run_fake_server(
    clock: Any, monkeypatch: pytest.MonkeyPatch, **kwargs: Any
) -> Iterator[FakeTwilio]:
    """Yield a running fake Twilio (our sid and token) that dates messages by the test clock."""
    monkeypatch.setattr(_ClockDatetime, "clock", clock)
    monkeypatch.setattr(fake_twilio_module, "datetime", _ClockDatetime)
    yield from fake_twilio_module.fake_twilio_fixture(
        account_sid=ACCOUNT_SID, auth_token=TOKEN, **kwargs
    )


@pytest.fixture(name="fake_server")
def fake_server_fixture(clock: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    """Run a fake Twilio (our account sid and token) that dates messages by the test clock."""
    yield from run_fake_server(clock, monkeypatch)


def twilio_overrides(server: FakeTwilio, **extra: Any) -> dict[str, Any]:
    """Return the settings for an app that sends through the fake server."""
    return {
        "SMS_BACKEND": "twilio",
        "TWILIO_API_BASE_URL": server.base_url,
        "TWILIO_FROM_NUMBER": OUR_NUMBER,
        **extra,
    }


def created_by_server(server: FakeTwilio) -> list[dict[str, Any]]:
    """Return the messages the fake server created, oldest first."""
    return sorted(server.messages.values(), key=lambda m: m["created"])


def later(now: datetime, **delta: float) -> datetime:
    """Return now + timedelta(**delta)."""
    return now + timedelta(**delta)
