"""Webhooks: endpoints via the API, signed deliveries to a local receiver, retries, the guard."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select

from service import fetch
from service.db import db
from service.events import append_event
from service.jobs import sweeps
from service.models import AuditEntry, WebhookDelivery, WebhookEndpoint
from tests.factories import Person, make_therapist

T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)


class Receiver:
    """A webhook receiver on 127.0.0.1 that records requests and answers scripted statuses."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook name
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                receiver.requests.append({"headers": dict(self.headers), "body": body,
                                          "path": self.path})  # fmt: skip
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/steadfast"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings, monkeypatch) -> Iterator[Receiver]:
    monkeypatch.setattr(settings, "ALLOW_PRIVATE_FEED_URLS", True)
    # Nothing in these tests may resolve a real name.
    monkeypatch.setattr(fetch, "resolve_host", lambda host, port: ["127.0.0.1"])
    r = Receiver()
    yield r
    r.close()


def verify(secret: str, headers: dict, body: str) -> bool:
    """Check a Standard Webhooks signature independently of the service's code."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(headers["webhook-signature"], f"v1,{expected}")


@pytest.fixture
def admin(people) -> Person:
    """Riverside's admin: endpoints receive the whole practice's events, so only admins manage them."""
    person = make_therapist(email="rhea@riverside.example", name="Rhea Admin", role="admin",
                            phone="+15005550003")  # fmt: skip
    db.session.commit()
    return person


@pytest.fixture
def harbor_admin(people) -> Person:
    """An admin of Harbor Health, Bob's practice."""
    person = make_therapist(email="hal@harbor.example", name="Hal Admin", role="admin",
                            practice="Harbor Health", phone="+15005550008")  # fmt: skip
    db.session.commit()
    return person


def create(client, admin, url: str) -> dict:
    answer = client.post("/api/v1/webhooks", json={"url": url, "description": "EHR"},
                         headers=admin.headers)  # fmt: skip
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def test_a_new_endpoint_shows_its_secret_once_and_lists_without_it(
    people, client, receiver, admin, harbor_admin
):
    made = create(client, admin, receiver.url)
    assert made["secret"].startswith("whsec_") and len(base64.b64decode(made["secret"][6:])) == 32
    listed = client.get("/api/v1/webhooks", headers=admin.headers).get_json()
    assert [item["id"] for item in listed["items"]] == [made["id"]]
    assert "secret" not in listed["items"][0]
    shown = client.get(f"/api/v1/webhooks/{made['id']}", headers=admin.headers)
    assert shown.get_json()["url"] == receiver.url and "secret" not in shown.get_json()
    assert (
        client.get(f"/api/v1/webhooks/{made['id']}", headers=harbor_admin.headers).status_code
        == 404
    )
    stored = db.session.get(WebhookEndpoint, made["id"])
    assert made["secret"] not in stored.secret_encrypted
    assert client.get("/api/v1/webhooks", headers=harbor_admin.headers).get_json()["items"] == []
    gone = client.delete(f"/api/v1/webhooks/{made['id']}", headers=harbor_admin.headers)
    assert gone.status_code == 404
    assert client.delete(f"/api/v1/webhooks/{made['id']}", headers=admin.headers).status_code == 204
    assert client.get("/api/v1/webhooks", headers=admin.headers).get_json()["items"] == []
    actions = {a.action for a in db.session.scalars(select(AuditEntry))}
    assert {"webhook.create", "webhook.list", "webhook.delete"} <= actions


def test_only_admins_manage_endpoints(people, client, receiver, admin):
    alice = people.alice.headers  # a therapist of the practice, not an admin
    refused = client.post("/api/v1/webhooks", json={"url": receiver.url}, headers=alice)
    assert refused.status_code == 403 and refused.content_type == "application/problem+json"
    assert db.session.scalars(select(WebhookEndpoint)).all() == []
    made = create(client, admin, receiver.url)
    assert client.get("/api/v1/webhooks", headers=alice).status_code == 403
    assert client.get(f"/api/v1/webhooks/{made['id']}", headers=alice).status_code == 403
    assert client.delete(f"/api/v1/webhooks/{made['id']}", headers=alice).status_code == 403
    db.session.expire_all()
    assert db.session.get(WebhookEndpoint, made["id"]).deleted_at is None


def test_private_addresses_are_refused_unless_allowed(people, client, settings, monkeypatch, admin):
    monkeypatch.setattr(fetch, "resolve_host", lambda host, port: ["10.0.0.7"])
    for url in ("http://127.0.0.1:9/x", "http://hooks.example.org/x", "ftp://example.org/x"):
        answer = client.post("/api/v1/webhooks", json={"url": url}, headers=admin.headers)
        assert answer.status_code == 422, url
        assert "url" in answer.get_json()["errors"]


def test_events_are_delivered_signed_and_retried_until_they_succeed(
    people, client, receiver, admin
):
    made = create(client, admin, receiver.url)
    append_event("checkin.missed", now=T0, practice_id=people.riverside.id,
                 client_id=people.carol.id, payload={"occurrence": "2026-12-01T20:00"})  # fmt: skip
    append_event("test.other_practice", now=T0, practice_id=people.harbor.id)
    db.session.commit()
    receiver.statuses = [204, 500, 503]
    assert sweeps.deliver_webhooks(T0) == 1  # webhook.created goes through; the miss fails
    assert sweeps.deliver_webhooks(T0 + timedelta(seconds=29)) == 0  # backing off
    assert sweeps.deliver_webhooks(T0 + timedelta(seconds=31)) == 0  # 503
    assert sweeps.deliver_webhooks(T0 + timedelta(seconds=92)) == 1
    bodies = [json.loads(r["body"]) for r in receiver.requests]
    assert [b["type"] for b in bodies] == ["webhook.created", "checkin.missed",
                                           "checkin.missed", "checkin.missed"]  # fmt: skip
    for request in receiver.requests:
        assert verify(made["secret"], request["headers"], request["body"])
        assert request["path"] == "/hooks/steadfast"
    missed = bodies[-1]
    assert missed["client_id"] == people.carol.id and missed["payload"]["occurrence"]
    assert {r["headers"]["webhook-id"] for r in receiver.requests[1:]} == {missed["id"]}
    delivery = db.session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.event_id == int(missed["id"]))
    ).one()
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    assert sweeps.deliver_webhooks(T0 + timedelta(hours=1)) == 0


def test_a_delivery_gives_up_after_the_last_attempt(people, client, receiver, admin):
    create(client, admin, receiver.url)
    receiver.statuses = [500] * 20
    now = T0
    for _ in range(8):
        sweeps.deliver_webhooks(now)
        now += timedelta(hours=7)
    delivery = db.session.scalars(select(WebhookDelivery)).one()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("failed", 8, 500)
    assert len(receiver.requests) == 8
    assert sweeps.deliver_webhooks(now) == 0 and len(receiver.requests) == 8


def test_a_name_that_later_resolves_to_a_private_address_is_not_delivered_to(
    people, client, settings, monkeypatch, admin
):
    monkeypatch.setattr(fetch, "resolve_host", lambda host, port: ["93.184.216.34"])
    made = create(client, admin, "https://hooks.example.org/in")
    monkeypatch.setattr(fetch, "resolve_host", lambda host, port: ["127.0.0.1"])  # rebinding
    assert sweeps.deliver_webhooks(T0) == 0
    delivery = db.session.scalars(select(WebhookDelivery)).one()
    assert delivery.status == "pending" and "non-public" in delivery.last_error
    assert made["id"]
