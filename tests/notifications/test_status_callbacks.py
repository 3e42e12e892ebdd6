"""POST /twilio/status: forward-only statuses, unknown sids, delivery alerts for clients."""

from __future__ import annotations

import pytest

from service.db import db
from service.models import OptOut
from tests.notifications.sms_support import (
    T0,
    alerts_of,
    event_types,
    later,
    post_signed,
    queue,
    reload,
)


def sent_text(to, sid, **fields):
    message = queue(to, **fields)
    message.status, message.provider_sid, message.sent_at = "sent", sid, T0
    db.session.commit()
    return message


def callback(client, sid, status, error_code=None):
    params = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
              "AccountSid": "AC" + "0" * 32, "To": "+15005550101", "From": "+15005550006"}  # fmt: skip
    if error_code is not None:
        params["ErrorCode"] = str(error_code)
    response = post_signed(client, "/twilio/status", params)
    assert response.status_code == 200
    return response


def test_statuses_move_forward_and_a_late_sent_is_ignored(client, people, clock):
    message = sent_text(people.carol.phone, "SMa", client_id=people.carol.id)
    clock.set(later(T0, minutes=1))
    callback(client, "SMa", "delivered")
    assert (reload(message).status, reload(message).delivered_at) == (
        "delivered",
        later(T0, minutes=1),
    )
    for late in ("sent", "sending", "queued", "undelivered", "failed"):
        callback(client, "SMa", late)
        assert reload(message).status == "delivered"
    assert alerts_of() == []


def test_an_unknown_sid_gets_200_so_twilio_stops_retrying(client, people):
    response = callback(client, "SMnobody", "delivered")
    assert response.get_data() == b""


@pytest.mark.parametrize("code", [30003, 30005, 30006, 30007])
def test_an_undelivered_text_to_a_client_raises_one_delivery_alert(client, people, code):
    message = sent_text(people.carol.phone, "SMb", client_id=people.carol.id, purpose="prompt")
    callback(client, "SMb", "undelivered", code)
    callback(client, "SMb", "undelivered", code)  # Twilio retries callbacks
    callback(client, "SMb", "failed", code)
    assert (reload(message).status, reload(message).error_code) == ("undelivered", code)
    (alert,) = alerts_of("delivery_failed")
    assert (alert.client_id, alert.source_id, alert.detail["error_code"]) == (
        people.carol.id, message.id, code,
    )  # fmt: skip
    assert event_types().count("message.failed") == 1


def test_a_failed_text_to_a_contact_or_therapist_raises_no_client_alert(client, people):
    sent_text(people.dave.phone, "SMc", client_id=people.carol.id, contact_id=people.dave.id)
    sent_text(people.alice.therapist.phone, "SMd", therapist_id=people.alice.id, purpose="alert")
    callback(client, "SMc", "failed", 30005)
    callback(client, "SMd", "undelivered", 30003)
    assert alerts_of("delivery_failed") == []


def test_a_callback_saying_unsubscribed_puts_the_number_on_the_list(client, people):
    sent_text(people.carol.phone, "SMe", client_id=people.carol.id)
    callback(client, "SMe", "failed", 21610)
    assert db.session.get(OptOut, people.carol.phone).reason == "opt_out"
    assert [a.kind for a in alerts_of()] == ["opted_out"]
