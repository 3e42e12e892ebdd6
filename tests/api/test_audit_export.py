"""Audit entries for every read and write of client data; the client record export."""

from __future__ import annotations

import pytest

from service.db import db
from service.models import AuditEntry, Message
from tests.api.conftest import assert_problem
from tests.factories import T0, make_client, make_contact


def entries(action: str) -> list[AuditEntry]:
    return AuditEntry.query.filter_by(action=action).order_by(AuditEntry.id).all()


@pytest.mark.parametrize(
    ("method", "path", "body", "action", "subject"),
    [
        ("GET", "/clients/{carol}", None, "client.read", "client"),
        ("PATCH", "/clients/{carol}", {"coping_plan": "Walk"}, "client.update", "client"),
        ("DELETE", "/clients/{carol}", None, "client.discharge", "client"),
        ("GET", "/clients/{carol}/export", None, "client.export", "client"),
        ("GET", "/clients/{carol}/contacts", None, "contact.list", "contact"),
        ("GET", "/clients/{carol}/contacts/{dave}", None, "contact.read", "contact"),
        (
            "PATCH",
            "/clients/{carol}/contacts/{dave}",
            {"role": "peer"},
            "contact.update",
            "contact",
        ),
        ("GET", "/clients/{carol}/meeting-plans", None, "meeting_plan.list", "meeting_plan"),
        ("GET", "/clients/{carol}/commitments", None, "commitment.list", "commitment"),
        ("GET", "/clients/{carol}/activities", None, "activity.list", "activity"),
        ("GET", "/messages?client_id={carol}", None, "message.list", "message"),
        ("GET", "/audit?client_id={carol}", None, "audit.list", "audit"),
    ],
)
def test_reads_and_writes_are_audited(api, world, alice, method, path, body, action, subject):
    carol, dave = world.people.carol, world.people.dave
    url = path.format(carol=carol.id, dave=dave.id)
    response = api.client.open("/api/v1" + url, method=method, json=body, headers=alice.headers)
    assert response.status_code == 200, response.get_json()
    [entry] = entries(action)
    assert (entry.actor_type, entry.actor_id) == ("therapist", alice.id)
    assert entry.practice_id == alice.practice_id
    assert entry.client_id == carol.id
    assert entry.subject_type == subject
    assert entry.remote_addr == "127.0.0.1"
    assert entry.at == T0


def test_create_is_audited_with_the_new_id(api, alice, replans):
    body = api.post(
        "/clients", {"display_name": "E", "phone": "+12015550123", "timezone": "UTC"}
    ).get_json()
    [entry] = entries("client.create")
    assert (entry.subject_id, entry.client_id, entry.actor_id) == (body["id"], body["id"], alice.id)


def test_refused_requests_write_no_audit(api, bob_api, carol):
    bob_api.get(f"/clients/{carol.id}")
    api.patch(f"/clients/{carol.id}", {"timezone": "nowhere"})
    assert AuditEntry.query.count() == 0


def test_audit_list_is_the_practice_trail(api, bob_api, carol):
    api.get(f"/clients/{carol.id}")
    bob_api.get("/clients")
    items = api.get("/audit").get_json()["items"]
    assert [e["action"] for e in items] == ["client.read"]
    assert items[0]["remote_addr"] == "127.0.0.1"
    assert items[0]["at"] == "2026-12-01T17:00:00Z"


def test_export_has_every_section_and_nothing_else(api, world, alice):
    carol, dave = world.people.carol, world.people.dave
    # Another client of the same therapist, with their own network and texts.
    other = make_client(alice.therapist, display_name="Other", phone="+15005550160")
    other_contact = make_contact(other, display_name="Other sponsor", phone="+15005550161")
    for client, contact in ((carol, None), (carol, dave), (other, None), (other, other_contact)):
        db.session.add(Message(
            practice_id=client.practice_id, client_id=client.id,
            contact_id=contact.id if contact else None, direction="outbound",
            to_number=(contact or client).phone, body="hello", purpose="reminder",
            status="sent", created_at=T0, updated_at=T0,
        ))  # fmt: skip
    db.session.commit()
    api.get(f"/clients/{other.id}")
    api.get(f"/clients/{carol.id}")
    body = api.get(f"/clients/{carol.id}/export").get_json()
    assert set(body) >= {
        "profile", "network", "consents", "meeting_plans", "commitments", "activities",
        "checkins", "alerts", "messages", "disclosures", "audit",
    }  # fmt: skip
    assert body["profile"]["id"] == carol.id
    assert [c["id"] for c in body["network"]] == [dave.id]
    assert {v["client_id"] or v["contact_id"] for v in body["consents"]["sms"]} == {
        carol.id,
        dave.id,
    }
    assert [d["contact_id"] for d in body["consents"]["disclosure"]] == [dave.id]
    assert [p["id"] for p in body["meeting_plans"]] == [world.plan.id]
    assert [c["id"] for c in body["commitments"]] == [world.commitment.id]
    assert [a["id"] for a in body["activities"]] == [world.activity_id]
    assert [m["to"] for m in body["messages"]] == [carol.phone]
    assert [m["to"] for m in body["disclosures"]] == [dave.phone]
    assert {e["client_id"] for e in body["audit"]} == {carol.id}
    assert [e["action"] for e in body["audit"]] == ["client.read", "client.export"]
    text = str(body)
    for foreign in (other.id, other_contact.id, other.phone, other_contact.phone, "Other sponsor"):
        assert foreign not in text


def test_export_of_unknown_client_is_404(api):
    assert_problem(api.get("/clients/cl_unknown/export"), 404)
