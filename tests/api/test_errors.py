"""Bad requests answer problem+json (never a 500) and never leave a half-written record."""

from __future__ import annotations

import json

import pytest

from service.db import db
from service.models import AuditEntry, Client, Event, Message, SmsConsent, Therapist
from tests.api.conftest import assert_problem, count

NEW = {"display_name": "Eve P.", "phone": "+12015550123", "timezone": "America/Chicago"}


def raw(
    client,
    person,
    method: str,
    path: str,
    data: bytes,
    content_type: str | None = "application/json",
):
    headers = dict(person.headers)
    if content_type:
        headers["Content-Type"] = content_type
    return client.open("/api/v1" + path, method=method, data=data, headers=headers)


def tables() -> tuple[int, ...]:
    return tuple(count(m) for m in (Client, SmsConsent, Message, Event, AuditEntry))


@pytest.mark.parametrize("method", ["POST", "PATCH"])
@pytest.mark.parametrize(
    ("data", "content_type", "status"),
    [
        (b'{"display_name": ', "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'"just a string"', "application/json", 400),
        (b'{"display_name": "\xff\xfe"}', "application/json", 400),
        (b"[" * 100_000 + b"]" * 100_000, "application/json", 400),
        (json.dumps({"a": json.loads("[" * 40 + "]" * 40)}).encode(), "application/json", 400),
        (json.dumps(NEW).encode(), "text/plain", 415),
        (json.dumps(NEW).encode(), None, 415),
        (json.dumps(NEW).encode(), "application/x-www-form-urlencoded", 415),
        (b'{"display_name": "' + b"x" * (1024 * 1024 + 10) + b'"}', "application/json", 413),
    ],
)
def test_bad_bodies(client, alice, carol, method, data, content_type, status):
    path = "/clients" if method == "POST" else f"/clients/{carol.id}"
    before = tables()
    response = raw(client, alice, method, path, data, content_type)
    assert_problem(response, status)
    assert tables() == before


@pytest.mark.parametrize(
    "value",
    ["nul\x00byte", "lone \ud800 surrogate", 10**40, float("nan"), {"nested": "object"}, ["list"]],
)
def test_odd_values_are_422_not_500(api, carol, value):
    for field in ("display_name", "coping_plan", "current_step", "timezone"):
        response = api.post("/clients", {**NEW, "recovery_path": "aa", field: value})
        assert_problem(response, 422, field)
    assert count(Client) == 1


def test_nan_in_raw_json(client, alice):
    data = (
        b'{"display_name": "Eve", "phone": "+12015550123", "timezone": "UTC", "current_step": NaN}'
    )
    assert_problem(raw(client, alice, "POST", "/clients", data), 422, "current_step")


def test_odd_query_values(api):
    assert_problem(api.get("/clients?q=%00"), 422, "q")
    assert_problem(api.get("/meetings?q=%00"), 422, "q")
    assert_problem(api.get("/clients?after=" + "a" * 101), 422, "after")


def test_failed_validation_writes_nothing(api, carol):
    before = tables()
    body = {**NEW, "sms_consent": {"granted": True, "method": "verbal"}, "current_step": 99}
    assert_problem(api.post("/clients", body), 422, "current_step")
    assert tables() == before


def test_failure_mid_request_rolls_back(api, monkeypatch):
    # The client, its consent, the opt-in text and the events are written before re-planning
    # fails; none of it may survive.
    def explode(client_id, *, now):
        raise RuntimeError("planner down")

    monkeypatch.setattr("service.checkins.replan_client", explode)
    before = tables()
    response = api.post("/clients", {**NEW, "sms_consent": {"granted": True, "method": "verbal"}})
    assert_problem(response, 500)
    assert tables() == before


def test_conflict_after_changes_rolls_them_back(admin_api, admin):
    # Demoting the only admin is applied, then refused: the role must be unchanged.
    response = admin_api.patch(f"/therapists/{admin.id}", {"role": "therapist", "name": "Renamed"})
    assert_problem(response, 409)
    db.session.expire_all()
    row = db.session.get(Therapist, admin.id)
    assert (row.role, row.name) == ("admin", "Rhea Admin")


def test_method_not_allowed_is_problem_json(api):
    response = api.client.put("/api/v1/clients", headers=api.person.headers, json=NEW)
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_unknown_route_is_problem_json(api):
    assert_problem(api.get("/nothing-here"), 404)
