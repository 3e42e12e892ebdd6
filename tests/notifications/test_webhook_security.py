"""Twilio webhooks accept only requests signed with our token for exactly their public URL."""

from __future__ import annotations

import pytest

from service.db import db
from tests.notifications.sms_support import (
    PUBLIC,
    alerts_of,
    answer_of,
    inbound_params,
    message_count,
    post_signed,
    queue,
    reload,
    sign,
)


def refused(response):
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    return response.get_json()


@pytest.fixture
def slip(people):
    return inbound_params(people.carol.phone, "slip")


def test_an_unsigned_request_is_refused_and_nothing_is_recorded(client, slip):
    before = message_count()
    refused(client.post("/twilio/inbound", data=slip))
    assert message_count() == before and alerts_of() == []


def test_a_forged_signature_is_refused(client, slip):
    before = message_count()
    forged = sign(PUBLIC + "/twilio/inbound", slip, token="not-our-token")
    refused(client.post("/twilio/inbound", data=slip, headers={"X-Twilio-Signature": forged}))
    assert message_count() == before


def test_a_tampered_body_is_refused(client, slip):
    signature = sign(PUBLIC + "/twilio/inbound", slip)
    tampered = {**slip, "Body": "STOP"}
    refused(
        client.post("/twilio/inbound", data=tampered, headers={"X-Twilio-Signature": signature})
    )
    assert message_count() == 0


@pytest.mark.parametrize(
    "signed_for",
    [
        PUBLIC + "/twilio/status",  # a status callback replayed at the inbound URL
        "https://attacker.example/twilio/inbound",  # signed for another host
        "http://steadfast.example.org/twilio/inbound",  # another scheme
        PUBLIC + "/twilio/inbound?x=1",  # another query string
    ],
)
def test_a_signature_for_another_url_is_refused(client, slip, signed_for):
    refused(post_signed(client, "/twilio/inbound", slip, signed_url=signed_for))
    assert message_count() == 0 and alerts_of() == []


def test_an_inbound_signature_replayed_at_the_status_url_is_refused(client, people):
    message = queue(people.carol.phone)
    message.status, message.provider_sid = "sent", "SMknown"
    db.session.commit()
    params = {"MessageSid": "SMknown", "MessageStatus": "undelivered", "ErrorCode": "30003"}
    refused(post_signed(client, "/twilio/status", params, signed_url=PUBLIC + "/twilio/inbound"))
    assert reload(message).status == "sent"


@pytest.mark.parametrize("backend", ["console", "fake"])
def test_without_an_auth_token_every_request_is_refused(make_app, people, backend):
    app = make_app(TWILIO_AUTH_TOKEN="", SMS_BACKEND=backend)
    params = inbound_params(people.carol.phone, "slip")
    with app.test_client() as other:
        for token in ("", "test-twilio-auth-token"):
            detail = refused(post_signed(other, "/twilio/inbound", params, token=token))["detail"]
            assert "no auth token" in detail
        refused(post_signed(other, "/twilio/status", {"MessageSid": "SMx"}, token=""))
    assert message_count() == 0


def test_behind_a_tls_proxy_the_public_https_url_is_what_counts(client, people):
    params = inbound_params(people.carol.phone, "HELP")
    # The proxy forwards http://10.0.0.5:8000/...; Twilio signed the public https URL.
    response = post_signed(client, "/twilio/inbound", params, base_url="http://10.0.0.5:8000")
    assert "STOP" in answer_of(response)


def test_a_signature_over_the_internal_url_is_refused(client, people):
    params = inbound_params(people.carol.phone, "HELP")
    response = post_signed(client, "/twilio/inbound", params,
                           signed_url="http://10.0.0.5:8000/twilio/inbound",
                           base_url="http://10.0.0.5:8000")  # fmt: skip
    refused(response)


def test_a_query_string_is_part_of_what_is_signed(client, people):
    params = inbound_params(people.carol.phone, "HELP")
    response = post_signed(client, "/twilio/inbound?source=sms", params,
                           signed_url=PUBLIC + "/twilio/inbound?source=sms")  # fmt: skip
    assert "STOP" in answer_of(response)


def test_forwarded_headers_cannot_redirect_the_check(client, people):
    params = inbound_params(people.carol.phone, "HELP")
    response = post_signed(
        client,
        "/twilio/inbound",
        params,
        signed_url="https://attacker.example/twilio/inbound",
        headers={"X-Forwarded-Host": "attacker.example", "X-Forwarded-Proto": "https"},
    )
    refused(response)
