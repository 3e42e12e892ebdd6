"""POST /api/v1/meetings/import: inline and URL feeds, the 20 MiB limit, errors, auth, audit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from service.db import db
from service.models import AuditEntry, Meeting, MeetingFeed
from tests.factories import make_therapist
from tests.imports.conftest import FIXTURES
from tests.imports.support import count, feed_server, row_counts, tsml_feed, tsml_row

URL = "/api/v1/meetings/import"
MiB = 1024 * 1024


def post(client: Any, person: Any, body: Any, **kw: Any) -> Any:
    return client.post(URL, json=body, headers=person.headers if person else {}, **kw)


def problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    if field is not None:
        assert field in body.get("errors", {}), body
    return body


def test_inline_tsml_feed(client, alice):
    feed = json.loads((FIXTURES / "tsml_wordpress.json").read_text())
    response = post(client, alice, {"feed": feed, "feed_key": "springfield"})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert set(body) == {"created", "updated", "unchanged", "deactivated", "skipped"}
    assert {k: body[k] for k in ("created", "updated", "unchanged", "deactivated")} == {
        "created": 8, "updated": 0, "unchanged": 0, "deactivated": 0,
    }  # fmt: skip
    assert body["skipped"][0] == {"slug": "1042", "reason": "no timezone"}
    assert len(body["skipped"]) == 8
    assert count(Meeting, Meeting.practice_id == alice.practice_id) == 8
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "meetings.import"))
    assert (entry.actor_type, entry.actor_id, entry.subject_type) == (
        "therapist",
        alice.id,
        "meeting_feed",
    )
    assert entry.detail["created"] == 8 and entry.detail["source"] == "feed"

    again = post(client, alice, {"feed": feed, "feed_key": "springfield"}).get_json()
    assert (again["created"], again["unchanged"]) == (0, 8)


def test_inline_bmlt_feed_with_a_default_zone(client, alice):
    feed = json.loads((FIXTURES / "bmlt.json").read_text())
    body = post(client, alice, {"feed": feed, "feed_key": "na", "timezone": "America/New_York"})
    assert body.status_code == 200
    assert (body.get_json()["created"], len(body.get_json()["skipped"])) == (5, 3)
    assert db.session.scalar(select(MeetingFeed.fellowship)) == "na"


def test_inline_csv(client, alice):
    text = (FIXTURES / "meetings.csv").read_text(encoding="utf-8-sig")
    response = post(
        client,
        alice,
        {"csv": text, "feed_key": "csv", "timezone": "America/Chicago", "fellowship": "ca"},
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "created": 4, "updated": 0, "unchanged": 0, "deactivated": 0,
        "skipped": [{"slug": "bad-day", "reason": "invalid day"}],
    }  # fmt: skip
    assert {m.fellowship for m in db.session.scalars(select(Meeting))} == {"ca"}


def test_url_feed_from_a_local_server_when_private_urls_are_allowed(make_app, alice):
    app = make_app(ALLOW_PRIVATE_FEED_URLS=True)
    with feed_server() as server, app.app_context():
        server.body = json.dumps(tsml_feed(3)).encode()
        response = post(
            app.test_client(), alice, {"url": server.url(), "timezone": "America/Chicago"}
        )
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["created"] == 3
        feed = db.session.scalar(select(MeetingFeed))
        assert (feed.key, feed.url, feed.format) == (server.url(), server.url(), "tsml")
        assert server.hits == ["/feed.json"]
        db.session.remove()


def test_private_url_refused_by_default(client, alice):
    with feed_server() as server:
        server.body = json.dumps(tsml_feed(3)).encode()
        before = row_counts()
        body = problem(post(client, alice, {"url": server.url()}), 422, "url")
        assert "non-public" in body["errors"]["url"][0]
        assert server.hits == [] and row_counts() == before


def test_unreachable_and_bad_urls_name_url(make_app, alice):
    app = make_app(ALLOW_PRIVATE_FEED_URLS=True)
    with feed_server() as server, app.app_context():
        server.status = 500
        problem(post(app.test_client(), alice, {"url": server.url()}), 422, "url")
        problem(post(app.test_client(), alice, {"url": "ftp://127.0.0.1/x"}), 422, "url")
        assert count(MeetingFeed) == 0
        db.session.remove()


def test_a_feed_that_fails_to_parse_writes_nothing(client, alice):
    post(client, alice, {"feed": tsml_feed(3), "feed_key": "k"})
    before = row_counts()
    problem(post(client, alice, {"feed": [], "feed_key": "k"}), 422, "feed")
    problem(post(client, alice, {"csv": "just text", "feed_key": "k"}), 422, "csv")
    assert row_counts() == before


def test_a_5_mib_body_is_accepted_here(client, alice):
    notes = "n" * 8000
    feed = [tsml_row(n, notes=notes) for n in range(660)]
    raw = json.dumps({"feed": feed, "feed_key": "big"})
    assert 5 * MiB < len(raw) < 6 * MiB
    response = client.post(URL, data=raw, content_type="application/json", headers=alice.headers)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.get_json()["created"] == 660


def test_more_than_20_mib_is_413(client, alice):
    raw = b'{"csv": "' + b"x" * (20 * MiB) + b'", "feed_key": "k"}'
    response = client.post(URL, data=raw, content_type="application/json", headers=alice.headers)
    problem(response, 413)


def test_the_rest_of_the_api_keeps_1_mib(client, alice):
    raw = json.dumps({"name": "x" * (2 * MiB)})
    response = client.post(
        "/api/v1/meetings", data=raw, content_type="application/json", headers=alice.headers
    )
    problem(response, 413)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"feed": [], "feed_key": "k", "colour": "red"}, "colour"),
        ({"feed": [], "csv": "a", "feed_key": "k"}, "feed"),
        ({"timezone": "UTC"}, "url"),
        ({"feed": tsml_feed(1)}, "feed_key"),
        ({"csv": "Name\nx"}, "feed_key"),
        ({"feed": tsml_feed(1), "feed_key": "k", "timezone": "Mars/Olympus"}, "timezone"),
        ({"feed": tsml_feed(1), "feed_key": "k", "fellowship": "bowling"}, "fellowship"),
        ({"feed": {"meetings": []}, "feed_key": "k"}, "feed"),
    ],
)
def test_invalid_bodies_are_422(client, alice, body, field):
    problem(post(client, alice, body), 422, field)
    assert count(MeetingFeed) == 0


def test_token_required(client, people):
    problem(post(client, None, {"feed": tsml_feed(1), "feed_key": "k"}), 401)
    assert count(Meeting) == 0


def test_each_practice_imports_into_its_own_directory(client, alice, bob):
    post(client, alice, {"feed": tsml_feed(3), "feed_key": "shared"})
    body = post(client, bob, {"feed": [tsml_row(7)], "feed_key": "shared"}).get_json()
    assert (body["created"], body["deactivated"]) == (1, 0)
    assert count(Meeting, Meeting.practice_id == alice.practice_id, Meeting.active.is_(True)) == 3
    assert count(Meeting, Meeting.practice_id == bob.practice_id) == 1


def test_the_operation_is_documented(client):
    doc = client.get("/api/v1/openapi.json").get_json()
    op = doc["paths"]["/api/v1/meetings/import"]["post"]
    assert {"200", "401", "413", "422"} <= set(op["responses"])


def test_an_admin_imports_into_their_own_practice(client, people):
    admin = make_therapist(email="rhea@riverside.example", name="Rhea", role="admin", phone=None)
    db.session.commit()
    assert post(client, admin, {"feed": tsml_feed(2), "feed_key": "k"}).status_code == 200
    assert count(Meeting, Meeting.practice_id == people.riverside.id) == 2
