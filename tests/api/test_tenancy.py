"""Every route: no token 401, bad token 401, revoked token 401; Bob (other practice) 404 on
Carol's records exactly like an unknown id; the owner 2xx."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from service.db import db
from service.therapists import revoke_tokens
from tests.api.conftest import Api, World, assert_problem


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # formatted with the world's ids
    body: dict[str, Any] | None = None
    foreign: bool = True  # names Riverside's records, so Bob must get 404
    admin: bool = False  # the owner is Riverside's admin

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


C = "/clients/{client}"
ROUTES = [
    Route("GET", "/clients", foreign=False),
    Route("POST", "/clients", {"display_name": "N", "phone": "+12015550123", "timezone": "UTC"}, foreign=False),
    Route("GET", C),
    Route("PATCH", C, {"coping_plan": "Breathe"}),
    Route("DELETE", C),
    Route("GET", C + "/export"),
    Route("POST", C + "/reassign", {"therapist_id": "{alice}"}, admin=True),
    Route("GET", C + "/contacts"),
    Route("POST", C + "/contacts", {"display_name": "P", "role": "peer", "phone": "+12015550124"}),
    Route("GET", C + "/contacts/{dave}"),
    Route("PATCH", C + "/contacts/{dave}", {"display_name": "David"}),
    Route("DELETE", C + "/contacts/{dave}"),
    Route("POST", C + "/contacts/{dave}/disclosure-consent", {"granted_on": "2026-12-01", "scope": ["missed"]}),
    Route("DELETE", C + "/contacts/{dave}/disclosure-consent"),
    Route("GET", "/meetings", foreign=False),
    Route("POST", "/meetings", {"name": "M", "day": 1, "time": "12:00", "timezone": "UTC"}, foreign=False),
    Route("GET", "/meetings/{meeting}"),
    Route("PATCH", "/meetings/{meeting}", {"notes": "Side door"}),
    Route("GET", C + "/meeting-plans"),
    Route("POST", C + "/meeting-plans", {"meeting_id": "{meeting2}"}),
    Route("GET", C + "/meeting-plans/{plan}"),
    Route("PATCH", C + "/meeting-plans/{plan}", {"remind_minutes_before": 30}),
    Route("DELETE", C + "/meeting-plans/{plan}"),
    Route("GET", C + "/commitments"),
    Route("POST", C + "/commitments", {"kind": "practice", "title": "Breathe",
                                       "schedule": {"rrule": "FREQ=DAILY", "time": "08:00"}}),
    Route("GET", C + "/commitments/{commitment}"),
    Route("PATCH", C + "/commitments/{commitment}", {"title": "Call Dave at 8"}),
    Route("DELETE", C + "/commitments/{commitment}"),
    Route("GET", C + "/activities"),
    Route("POST", C + "/activities", {"title": "Walk", "starts_at": "2026-12-05T15:00:00Z"}),
    Route("GET", C + "/activities/{activity}"),
    Route("PATCH", C + "/activities/{activity}", {"location": "Office 2"}),
    Route("DELETE", C + "/activities/{activity}"),
    Route("GET", "/messages", foreign=False),
    Route("GET", "/messages?client_id={client}"),
    Route("GET", "/audit", foreign=False),
    Route("GET", "/audit?client_id={client}"),
    Route("GET", "/therapists", foreign=False),
    Route("GET", "/therapists/me", foreign=False),
    Route("GET", "/therapists/{alice}"),
    Route("POST", "/therapists", {"email": "new@riverside.example", "name": "New"}, foreign=False, admin=True),
    Route("PATCH", "/therapists/{alice}", {"name": "Alice M."}, admin=True),
    Route("POST", "/therapists/{alice}/revoke-tokens", admin=True),
]  # fmt: skip


def ids(world: World) -> dict[str, str]:
    from tests.factories import make_meeting

    second = make_meeting(world.people.riverside.id, name="Second", day=3)
    db.session.commit()
    return {
        "client": world.people.carol.id,
        "dave": world.people.dave.id,
        "alice": world.people.alice.id,
        "meeting": world.meeting.id,
        "meeting2": second.id,
        "plan": world.plan.id,
        "commitment": world.commitment.id,
        "activity": world.activity_id,
    }


def fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**values)
    if isinstance(value, dict):
        return {k: fill(v, values) for k, v in value.items()}
    return value


def call(
    api: Api, route: Route, values: dict[str, str], headers: dict[str, str] | None = None
) -> Any:
    path = fill(route.path, values)
    kwargs: dict[str, Any] = {"headers": headers} if headers is not None else {}
    if route.body is not None:
        kwargs["json"] = fill(route.body, values)
    return api.client.open("/api/v1" + path, method=route.method,
                           headers={**(api._headers(None)), **(headers or {})},
                           **({"json": kwargs["json"]} if "json" in kwargs else {}))  # fmt: skip


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_route_matrix(client, world, admin, route):
    values = ids(world)
    people = world.people
    anonymous = Api(client, None)
    # No token, a malformed one, an unknown one.
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic abc"},
                    {"Authorization": "Bearer sf_not-a-real-token"}):  # fmt: skip
        response = call(anonymous, route, values, headers)
        assert_problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # Bob sees nothing of Riverside's; the answer is the unknown-id answer.
    bob = Api(client, people.bob)
    response = call(bob, route, values)
    if route.foreign:
        body = assert_problem(response, 404)
        unknown = call(bob, route, {k: v[:3] + "0" * 26 for k, v in values.items()})
        assert unknown.status_code == 404
        assert unknown.get_json()["detail"] == body["detail"]
    else:
        assert response.status_code < 300 or response.status_code == 403
    # The owner succeeds.
    owner = Api(client, admin if route.admin else people.alice)
    response = call(owner, route, values)
    assert 200 <= response.status_code < 300, response.get_data(as_text=True)


@pytest.mark.parametrize("route", [r for r in ROUTES if r.method == "GET"][:6], ids=str)
def test_revoked_token_is_401(client, world, route):
    values = ids(world)
    alice = world.people.alice
    assert call(Api(client, alice), route, values).status_code == 200
    revoke_tokens(alice.therapist, now=world.meeting.created_at)
    db.session.commit()
    assert_problem(call(Api(client, alice), route, values), 401)


def test_revoked_token_is_401_everywhere(client, world):
    values = ids(world)
    alice = world.people.alice
    revoke_tokens(alice.therapist, now=world.meeting.created_at)
    db.session.commit()
    for route in ROUTES:
        assert_problem(call(Api(client, alice), route, values), 401)


def test_deactivated_therapist_is_401(client, world):
    alice = world.people.alice
    alice.therapist.active = False
    db.session.commit()
    assert_problem(Api(client, alice).get("/clients"), 401)


@pytest.mark.parametrize("route", [r for r in ROUTES if r.admin], ids=str)
def test_admin_only_routes_are_403_for_therapists(client, world, route):
    values = ids(world)
    response = call(Api(client, world.people.alice), route, values)
    assert_problem(response, 403)


def test_lists_only_show_own_practice(client, world, bob):
    from tests.factories import make_client

    make_client(bob.therapist, display_name="Harbor client", phone="+15005550170")
    db.session.commit()
    items = Api(client, bob).get("/clients").get_json()["items"]
    assert [c["display_name"] for c in items] == ["Harbor client"]
    assert Api(client, bob).get("/meetings").get_json()["items"] == []
    assert Api(client, bob).get("/messages").get_json()["items"] == []
    names = [t["email"] for t in Api(client, bob).get("/therapists").get_json()["items"]]
    assert names == ["bob@harbor.example"]
