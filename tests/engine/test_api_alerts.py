"""The alert inbox API: list with filters, acknowledge, resolve, tenancy and audit."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from service.alerts import raise_alert
from service.db import db
from service.models import AuditEntry
from tests.factories import make_client

T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)


def test_the_inbox_lists_filters_acknowledges_and_resolves(people, client):
    carol = people.carol
    other = make_client(people.alice.therapist, display_name="Ann B.", phone="+15005550120")
    missed = raise_alert(kind="missed", client=carol, source_type="commitment", source_id="cm_1",
                         occurrence="2026-12-01T20:00", detail={"consecutive": 1}, now=T0)  # fmt: skip
    raise_alert(kind="quota_unmet", client=other, source_type="commitment", source_id="cm_2",
                occurrence="2026-W49", detail={}, now=T0)  # fmt: skip
    assert raise_alert(kind="missed", client=carol, source_type="commitment", source_id="cm_1",
                       occurrence="2026-12-01T20:00", detail={}, now=T0) is None  # fmt: skip
    db.session.commit()
    headers = people.alice.headers

    page = client.get("/api/v1/alerts", headers=headers).get_json()
    assert [item["kind"] for item in page["items"]] == ["missed", "quota_unmet"]
    assert page["items"][0] == {
        "id": missed.id, "kind": "missed", "status": "open", "client_id": carol.id,
        "source_type": "commitment", "source_id": "cm_1", "occurrence": "2026-12-01T20:00",
        "detail": {"consecutive": 1}, "created_at": "2026-12-01T17:00:00Z",
        "acknowledged_at": None, "resolved_at": None,
    }  # fmt: skip
    by_kind = client.get("/api/v1/alerts?kind=quota_unmet", headers=headers).get_json()
    assert [item["client_id"] for item in by_kind["items"]] == [other.id]
    by_client = client.get(f"/api/v1/alerts?client_id={carol.id}", headers=headers).get_json()
    assert [item["id"] for item in by_client["items"]] == [missed.id]
    assert client.get("/api/v1/alerts?kind=nope", headers=headers).status_code == 422

    ack = client.post(f"/api/v1/alerts/{missed.id}/acknowledge", headers=headers)
    assert ack.status_code == 200 and ack.get_json()["status"] == "acknowledged"
    again = client.post(f"/api/v1/alerts/{missed.id}/acknowledge", headers=headers)
    assert again.get_json()["status"] == "acknowledged"
    done = client.post(f"/api/v1/alerts/{missed.id}/resolve", headers=headers).get_json()
    assert done["status"] == "resolved" and done["resolved_at"]
    open_only = client.get("/api/v1/alerts?status=open", headers=headers).get_json()
    assert [item["kind"] for item in open_only["items"]] == ["quota_unmet"]

    actions = [a.action for a in db.session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert {"alert.list", "alert.acknowledge", "alert.resolve"} <= set(actions)


def test_another_practice_sees_and_touches_none_of_it(people, client):
    alert = raise_alert(kind="crisis", client=people.carol, source_type="message",
                        source_id="ms_1", occurrence=None, detail={}, now=T0)  # fmt: skip
    db.session.commit()
    bob = people.bob.headers
    assert client.get("/api/v1/alerts", headers=bob).get_json()["items"] == []
    for action in ("acknowledge", "resolve"):
        answer = client.post(f"/api/v1/alerts/{alert.id}/{action}", headers=bob)
        assert answer.status_code == 404 and answer.mimetype == "application/problem+json"
    assert client.get(f"/api/v1/alerts?client_id={people.carol.id}", headers=bob).status_code == 404
    assert client.get("/api/v1/alerts").status_code == 401
