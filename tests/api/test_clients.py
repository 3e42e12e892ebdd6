"""Clients: create with defaults, validation, merge patch, lists, discharge, reassignment, consent."""

from __future__ import annotations

import pytest

from service.db import db
from service.models import AuditEntry, Client, Message, SmsConsent
from tests.api.conftest import assert_problem, count

NEW = {"display_name": "Eve P.", "phone": "(201) 555-0123", "timezone": "America/Chicago"}


def test_create_with_defaults(api, alice, replans):
    response = api.post("/clients", NEW)
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"].endswith(f"/api/v1/clients/{body['id']}")
    assert body["phone"] == "+12015550123"
    assert body["language"] == "en"
    assert body["recovery_path"] == "other"
    assert body["quiet_hours"] == {"start": "21:00", "end": "08:00"}
    assert body["discreet"] is True
    assert body["status"] == "active"
    assert body["therapist_id"] == alice.id
    assert body["sms_consent"]["granted"] is False
    assert body["created_at"].endswith("Z")
    assert replans.clients == [body["id"]]


def test_create_with_consent_queues_optin_text(api):
    body = api.post(
        "/clients", {**NEW, "sms_consent": {"granted": True, "method": "verbal"}}
    ).get_json()
    assert body["sms_consent"]["granted"] is True
    assert body["sms_consent"]["method"] == "verbal"
    message = Message.query.filter_by(client_id=body["id"]).one()
    assert message.purpose == "optin_confirmation"
    assert message.to_number == "+12015550123"
    assert message.idempotency_key.startswith("optin:sc_")


@pytest.mark.parametrize("missing", ["display_name", "phone", "timezone"])
def test_required_fields(api, missing):
    body = dict(NEW)
    del body[missing]
    assert_problem(api.post("/clients", body), 422, missing)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("display_name", ""),
        ("display_name", "x" * 101),
        ("display_name", 7),
        ("phone", "not a phone"),
        ("phone", "+1 555"),
        ("timezone", "Mars/Olympus_Mons"),
        ("timezone", "localtime"),
        ("language", "fr"),
        ("recovery_path", "cult"),
        ("sobriety_date", "2026-13-01"),
        ("sobriety_date", "01/02/2026"),
        ("sobriety_date", 20260101),
        ("sobriety_date", "2099-01-01"),
        ("stage_of_change", "denial"),
        ("current_step", 13),
        ("current_step", "3"),
        ("current_step", True),
        ("coping_plan", "x" * 2001),
        ("discreet", "true"),
        ("status", "deleted"),
        ("status", "discharged"),
        ("sms_consent", {"granted": "yes"}),
        ("quiet_hours", {"start": "25:00", "end": "08:00"}),
        ("quiet_hours", {"start": "9:00", "end": "08:00"}),
        ("quiet_hours", {"start": "08:00", "end": "08:00"}),
        ("paused_until", "2026-12-20"),
        ("therapist_id", "not an id!"),
        ("nickname", "Evie"),
    ],
)
def test_invalid_fields_are_named(api, field, value):
    body = {**NEW, "recovery_path": "aa", field: value}
    if field == "recovery_path":
        body[field] = value
    response = api.post("/clients", body)
    assert_problem(response, 422)
    errors = response.get_json()["errors"]
    assert any(key == field or key.startswith(field + ".") for key in errors), errors
    assert count(Client) == 1  # only Carol


def test_step_only_on_twelve_step_paths(api):
    assert_problem(
        api.post("/clients", {**NEW, "recovery_path": "smart", "current_step": 3}),
        422,
        "current_step",
    )
    assert (
        api.post("/clients", {**NEW, "recovery_path": "na", "current_step": 3}).status_code == 201
    )


def test_consent_needs_method(api):
    response = api.post("/clients", {**NEW, "sms_consent": {"granted": True}})
    assert_problem(response, 422, "sms_consent.method")


def test_get_one(api, carol):
    body = api.get(f"/clients/{carol.id}").get_json()
    assert body["id"] == carol.id
    assert body["sms_consent"]["granted"] is True


def test_unknown_id_is_404(api):
    assert_problem(api.get("/clients/cl_nope"), 404)
    assert_problem(api.get("/clients/" + "x" * 300), 404)


def test_merge_patch(api, carol, replans):
    response = api.patch(
        f"/clients/{carol.id}",
        {"display_name": "Carol Q.", "coping_plan": None, "quiet_hours": {"start": "22:00"}},
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["display_name"] == "Carol Q."
    assert body["coping_plan"] is None
    assert body["quiet_hours"] == {"start": "22:00", "end": "08:00"}
    assert body["phone"] == "+15005550101"  # untouched
    assert replans.clients == [carol.id]  # quiet hours move texts


def test_patch_null_on_required_is_422(api, carol):
    assert_problem(api.patch(f"/clients/{carol.id}", {"timezone": None}), 422, "timezone")
    assert_problem(api.patch(f"/clients/{carol.id}", {"unknown": 1}), 422, "unknown")
    assert_problem(api.patch(f"/clients/{carol.id}", {"current_step": 0}), 422, "current_step")


def test_pause_and_resume(api, carol, replans):
    body = api.patch(
        f"/clients/{carol.id}", {"status": "paused", "paused_until": "2026-12-20"}
    ).get_json()
    assert (body["status"], body["paused_until"]) == ("paused", "2026-12-20")
    body = api.patch(f"/clients/{carol.id}", {"status": "active"}).get_json()
    assert (body["status"], body["paused_until"]) == ("active", None)
    assert replans.clients == [carol.id, carol.id]


def test_phone_change_needs_new_consent(api, carol):
    body = api.patch(f"/clients/{carol.id}", {"phone": "+12015550199"}).get_json()
    assert body["sms_consent"]["granted"] is False
    body = api.patch(
        f"/clients/{carol.id}", {"sms_consent": {"granted": True, "method": "written"}}
    ).get_json()
    assert body["sms_consent"]["granted"] is True
    versions = SmsConsent.query.filter_by(client_id=carol.id).order_by(SmsConsent.version).all()
    assert [(v.version, v.phone) for v in versions] == [(1, "+15005550101"), (2, "+12015550199")]


def test_revoking_consent_adds_a_version(api, carol):
    body = api.patch(f"/clients/{carol.id}", {"sms_consent": {"granted": False}}).get_json()
    assert body["sms_consent"]["granted"] is False
    latest = (
        SmsConsent.query.filter_by(client_id=carol.id).order_by(SmsConsent.version.desc()).first()
    )
    assert (latest.version, latest.granted) == (2, False)


def test_discharge_keeps_the_record(api, carol, replans):
    response = api.delete(f"/clients/{carol.id}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "discharged"
    assert body["discharged_at"] == "2026-12-01T17:00:00Z"
    assert api.get(f"/clients/{carol.id}").status_code == 200
    assert replans.clients == [carol.id]
    # Discharged clients get nothing new on their plan.
    response = api.post(
        f"/clients/{carol.id}/contacts",
        {"display_name": "Pat", "role": "peer", "phone": "+12015550111"},
    )
    assert_problem(response, 409)
    # Re-admission clears the discharge.
    body = api.patch(f"/clients/{carol.id}", {"status": "active"}).get_json()
    assert (body["status"], body["discharged_at"]) == ("active", None)


def test_list_pagination(api, carol):
    ids = sorted(
        [carol.id]
        + [
            api.post("/clients", {**NEW, "display_name": f"Client {i}"}).get_json()["id"]
            for i in range(4)
        ]
    )
    first = api.get("/clients?limit=2").get_json()
    assert [c["id"] for c in first["items"]] == ids[:2]
    second = api.get(f"/clients?limit=2&after={first['next']}").get_json()
    assert [c["id"] for c in second["items"]] == ids[2:4]
    third = api.get(f"/clients?limit=2&after={second['next']}").get_json()
    assert [c["id"] for c in third["items"]] == ids[4:]
    assert third["next"] is None


@pytest.mark.parametrize(
    "query", ["limit=0", "limit=501", "limit=ten", "after=%25%25", "status=gone", "q=" + "x" * 101]
)
def test_bad_list_parameters(api, query):
    name = query.split("=")[0]
    assert_problem(api.get(f"/clients?{query}"), 422, name)


def test_list_filters(api, carol):
    api.post("/clients", {**NEW, "display_name": "100%_Real"})
    other = api.post("/clients", {**NEW, "display_name": "Zed"}).get_json()
    api.delete(f"/clients/{other['id']}")
    names = lambda q: [c["display_name"] for c in api.get(f"/clients?{q}").get_json()["items"]]  # noqa: E731
    assert names("q=CAROL") == ["Carol S."]
    assert names("q=%25") == ["100%_Real"]
    assert names("q=_") == ["100%_Real"]
    assert names("status=discharged") == ["Zed"]
    assert sorted(names("status=active")) == ["100%_Real", "Carol S."]


def test_list_is_audited_once(api, carol):
    before = count(AuditEntry)
    api.get("/clients")
    entries = AuditEntry.query.filter_by(action="client.list").all()
    assert count(AuditEntry) == before + 1
    assert entries[0].detail["ids"] == [carol.id]


def test_reassign_is_admin_only(api, admin_api, alice, admin, carol):
    assert_problem(api.post(f"/clients/{carol.id}/reassign", {"therapist_id": admin.id}), 403)
    response = admin_api.post(f"/clients/{carol.id}/reassign", {"therapist_id": admin.id})
    assert response.status_code == 200
    assert response.get_json()["therapist_id"] == admin.id
    assert_problem(
        admin_api.post(f"/clients/{carol.id}/reassign", {"therapist_id": "th_x"}),
        422,
        "therapist_id",
    )


def test_reassign_refuses_other_practice_therapist(admin_api, bob, carol):
    response = admin_api.post(f"/clients/{carol.id}/reassign", {"therapist_id": bob.id})
    assert_problem(response, 422, "therapist_id")


def test_patch_therapist_id_needs_admin(api, admin, carol):
    assert_problem(api.patch(f"/clients/{carol.id}", {"therapist_id": admin.id}), 403)
    db.session.expire_all()
    assert db.session.get(Client, carol.id).therapist_id != admin.id


def test_admin_creates_for_another_therapist(admin_api, alice):
    response = admin_api.post("/clients", {**NEW, "therapist_id": alice.id})
    assert response.get_json()["therapist_id"] == alice.id
    assert_problem(
        admin_api.post("/clients", {**NEW, "therapist_id": "th_nobody"}), 422, "therapist_id"
    )
