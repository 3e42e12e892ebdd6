"""Therapists over the API (admins manage) and the `flask therapist` / `flask demo` commands."""

from __future__ import annotations

import pytest

from service.db import db
from service.models import Practice, Therapist
from tests.api.conftest import Api, assert_problem


def test_list_and_me(api, alice, admin):
    items = api.get("/therapists").get_json()["items"]
    assert sorted(t["email"] for t in items) == [
        "alice@riverside.example",
        "rhea@riverside.example",
    ]
    assert all("password_hash" not in t and "totp_secret_encrypted" not in t for t in items)
    me = api.get("/therapists/me").get_json()
    assert (me["id"], me["role"], me["active"]) == (alice.id, "therapist", True)


def test_admin_creates_a_therapist_with_a_working_token(admin_api, client, people):
    response = admin_api.post("/therapists", {"email": "New@Riverside.example", "name": "Nia",
                                             "phone": "201 555 0177"})  # fmt: skip
    assert response.status_code == 201
    body = response.get_json()
    assert body["therapist"]["email"] == "new@riverside.example"
    assert body["therapist"]["phone"] == "+12015550177"
    assert response.headers["Location"].endswith(f"/therapists/{body['therapist']['id']}")
    me = client.get("/api/v1/therapists/me", headers={"Authorization": f"Bearer {body['token']}"})
    assert me.get_json()["email"] == "new@riverside.example"
    assert db.session.get(Therapist, body["therapist"]["id"]).practice_id == people.riverside.id
    duplicate = admin_api.post("/therapists", {"email": "new@riverside.example", "name": "Again"})
    assert_problem(duplicate, 409, "email")
    assert_problem(
        admin_api.post("/therapists", {"email": "not-an-email", "name": "X"}), 422, "email"
    )
    assert_problem(
        admin_api.post("/therapists", {"email": "a@b.co", "name": "X", "role": "root"}), 422, "role"
    )


def test_non_admins_get_403(api, alice, admin):
    assert_problem(api.post("/therapists", {"email": "x@riverside.example", "name": "X"}), 403)
    assert_problem(api.patch(f"/therapists/{admin.id}", {"active": False}), 403)
    assert_problem(api.post(f"/therapists/{admin.id}/revoke-tokens"), 403)


def test_admin_patches_and_deactivates(admin_api, client, alice):
    body = admin_api.patch(f"/therapists/{alice.id}", {"role": "admin", "phone": None}).get_json()
    assert (body["role"], body["phone"]) == ("admin", None)
    assert_problem(admin_api.patch(f"/therapists/{alice.id}", {"name": None}), 422, "name")
    assert_problem(admin_api.patch(f"/therapists/{alice.id}", {"email": "x@y.z"}), 422, "email")
    admin_api.patch(f"/therapists/{alice.id}", {"active": False})
    assert_problem(Api(client, alice).get("/therapists/me"), 401)


def test_revoke_tokens(admin_api, client, alice):
    assert Api(client, alice).get("/therapists/me").status_code == 200
    assert admin_api.post(f"/therapists/{alice.id}/revoke-tokens").get_json() == {"revoked": 1}
    assert_problem(Api(client, alice).get("/therapists/me"), 401)


# CLI -------------------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_cli_therapist_lifecycle(runner, client, app):
    result = runner.invoke(args=["therapist", "create", "--email", "cli@example.org",
                                 "--name", "Cli User", "--practice", "CLI Practice"])  # fmt: skip
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[-1]
    assert token.startswith("sf_") and " " not in token
    assert client.get("/api/v1/therapists/me", headers=bearer(token)).status_code == 200

    second = runner.invoke(args=["therapist", "token", "--email", "cli@example.org"])
    assert second.exit_code == 0
    token2 = second.stdout.strip().splitlines()[-1]
    assert client.get("/api/v1/therapists/me", headers=bearer(token2)).status_code == 200

    revoked = runner.invoke(args=["therapist", "revoke-tokens", "--email", "cli@example.org"])
    assert revoked.exit_code == 0
    for value in (token, token2):
        assert client.get("/api/v1/therapists/me", headers=bearer(value)).status_code == 401


def test_cli_duplicate_email_fails_with_reason(runner, alice):
    result = runner.invoke(args=["therapist", "create", "--email", "alice@riverside.example",
                                 "--name", "Again"])  # fmt: skip
    assert result.exit_code != 0
    assert "already exists" in result.stderr
    assert "sf_" not in result.stdout


def test_cli_unknown_email_fails(runner, app):
    result = runner.invoke(args=["therapist", "token", "--email", "nobody@example.org"])
    assert result.exit_code != 0
    assert "no therapist" in result.stderr


def test_demo_seed(runner, client, app):
    result = runner.invoke(args=["demo", "seed"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert "demo@steadfast.example" in result.stdout and "demo-password" in result.stdout
    token = lines[-1]
    clients = client.get("/api/v1/clients", headers=bearer(token)).get_json()["items"]
    assert sorted(c["recovery_path"] for c in clients) == ["aa", "na", "smart"]
    assert len({c["timezone"] for c in clients}) == 3
    for c in clients:
        network = client.get(
            f"/api/v1/clients/{c['id']}/contacts", headers=bearer(token)
        ).get_json()
        assert network["items"] and all(
            n["sms_consent"]["granted"] and n["disclosure_consent"] for n in network["items"]
        )
        plans = client.get(
            f"/api/v1/clients/{c['id']}/meeting-plans", headers=bearer(token)
        ).get_json()
        assert plans["items"]
    kinds = set()
    for c in clients:
        items = client.get(
            f"/api/v1/clients/{c['id']}/commitments", headers=bearer(token)
        ).get_json()["items"]
        kinds |= {(i["kind"], i["schedule"]["rrule"], i["target"]) for i in items}
    assert ("sponsor_call", "FREQ=DAILY", None) in kinds
    assert ("meeting_quota", "FREQ=WEEKLY", 3) in kinds
    assert ("practice", "FREQ=DAILY", None) in kinds
    meetings = client.get("/api/v1/meetings", headers=bearer(token)).get_json()["items"]
    assert "Thursday Night Big Book" in {m["name"] for m in meetings}

    again = runner.invoke(args=["demo", "seed"])
    assert again.exit_code == 0
    assert "already exists" in again.stdout
    assert Practice.query.filter_by(name="Demo practice").count() == 1


@pytest.mark.parametrize("password", ["demo-password"])
def test_demo_admin_can_sign_in(runner, app, password):
    from service.therapists import check_password, find_by_email

    runner.invoke(args=["demo", "seed"])
    therapist = find_by_email("demo@steadfast.example")
    assert therapist.role == "admin" and check_password(therapist, password)
