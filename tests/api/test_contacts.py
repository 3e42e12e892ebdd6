"""Support network: contacts, SMS consent, disclosure consent versions, archive."""

from __future__ import annotations

from datetime import date

import pytest

from service import consent
from service.db import db
from service.models import DisclosureConsent, MeetingPlan, Message, OptOut, SupportContact
from tests.api.conftest import assert_problem, count

NEW = {"display_name": "Pat Q.", "role": "peer", "phone": "201-555-0155"}


def base(carol) -> str:
    return f"/clients/{carol.id}/contacts"


def test_create_with_defaults(api, carol):
    response = api.post(base(carol), NEW)
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"].endswith(f"{base(carol)}/{body['id']}")
    assert body["phone"] == "+12015550155"
    assert body["timezone"] == "America/New_York"  # the client's
    assert body["can_confirm"] is False
    assert body["sms_consent"]["granted"] is False
    assert body["disclosure_consent"] is None


def test_create_with_consents(api, carol):
    body = api.post(base(carol), {
        **NEW, "sms_consent": {"granted": True, "method": "keyword"},
        "disclosure_consent": {"granted_on": "2026-11-01", "expires_on": "2027-11-01",
                               "scope": ["missed", "checkins"], "purpose": "Support"},
    }).get_json()  # fmt: skip
    assert body["sms_consent"]["granted"] is True
    disclosure = body["disclosure_consent"]
    assert disclosure["scope"] == ["checkins", "missed"]
    assert (disclosure["version"], disclosure["in_effect"]) == (1, True)
    assert Message.query.filter_by(contact_id=body["id"], purpose="optin_confirmation").count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("role", "boss"),
        ("phone", "12"),
        ("display_name", " "),
        ("can_confirm", 1),
        ("timezone", "Europe/Nowhere"),
        ("disclosure_consent", {"granted_on": "2026-11-01", "scope": []}),
        ("disclosure_consent", {"granted_on": "2026-11-01", "scope": ["diagnosis"]}),
        ("disclosure_consent", {"granted_on": "2026-11-01", "scope": ["urge", "urge"]}),
        (
            "disclosure_consent",
            {"granted_on": "2026-11-01", "expires_on": "2026-10-01", "scope": ["urge"]},
        ),
        ("disclosure_consent", {"scope": ["urge"]}),
        ("extra", True),
    ],
)
def test_invalid_fields_are_named(api, carol, field, value):
    response = api.post(base(carol), {**NEW, field: value})
    assert_problem(response, 422)
    assert any(k.split(".")[0] == field for k in response.get_json()["errors"])
    assert count(SupportContact) == 1


def test_list_and_archive(api, carol, people, replans):
    dave = people.dave
    other = api.post(base(carol), NEW).get_json()
    assert [c["id"] for c in api.get(base(carol)).get_json()["items"]] == sorted(
        [dave.id, other["id"]]
    )
    response = api.delete(f"{base(carol)}/{other['id']}")
    assert response.status_code == 200
    assert response.get_json()["archived_at"] == "2026-12-01T17:00:00Z"
    assert [c["id"] for c in api.get(base(carol)).get_json()["items"]] == [dave.id]
    listed = api.get(base(carol) + "?include_archived=true").get_json()["items"]
    assert len(listed) == 2
    assert_problem(api.patch(f"{base(carol)}/{other['id']}", {"display_name": "X"}), 409)


def test_archiving_a_verifier_falls_back_to_self(api, world, replans):
    carol, dave = world.people.carol, world.people.dave
    api.delete(f"{base(carol)}/{dave.id}")
    db.session.expire_all()
    assert db.session.get(MeetingPlan, world.plan.id).verifier_contact_id is None
    assert ("meeting_plan", world.plan.id) in replans.sources
    assert ("commitment", world.commitment.id) in replans.sources
    assert consent.sms_consent_granted(db.session.get(SupportContact, dave.id)) is False


def test_merge_patch_and_consent_versions(api, carol, people, replans):
    dave = people.dave
    url = f"{base(carol)}/{dave.id}"
    body = api.patch(url, {"display_name": "David R.", "can_confirm": False}).get_json()
    assert (body["display_name"], body["can_confirm"]) == ("David R.", False)
    body = api.patch(url, {"disclosure_consent": {"scope": ["urge"]}}).get_json()
    assert body["disclosure_consent"]["version"] == 2
    assert body["disclosure_consent"]["scope"] == ["urge"]
    assert body["disclosure_consent"]["granted_on"] == "2026-11-01"
    body = api.patch(url, {"disclosure_consent": None}).get_json()
    assert body["disclosure_consent"] is None
    rows = (
        DisclosureConsent.query.filter_by(contact_id=dave.id)
        .order_by(DisclosureConsent.version)
        .all()
    )
    assert [(r.version, r.revoked_at is not None) for r in rows] == [(1, False), (2, True)]
    assert_problem(api.patch(url, {"role": None}), 422, "role")


def test_disclosure_consent_endpoints(api, carol, people):
    url = f"{base(carol)}/{people.dave.id}/disclosure-consent"
    response = api.post(
        url, {"granted_on": "2026-12-01", "expires_on": "2027-06-01", "scope": ["checkins"]}
    )
    assert response.status_code == 201
    body = response.get_json()
    assert (body["version"], body["in_effect"], body["scope"]) == (2, True, ["checkins"])
    assert_problem(
        api.post(url, {"granted_on": "2026-12-01", "scope": ["checkins"], "x": 1}), 422, "x"
    )
    response = api.delete(url)
    assert response.status_code == 200
    assert response.get_json()["revoked_at"] == "2026-12-01T17:00:00Z"
    assert_problem(api.delete(url), 409)


def test_consent_rules(people, app):
    dave = people.dave
    assert consent.disclosure_allows(dave, "missed", date(2026, 12, 1))
    assert not consent.disclosure_allows(dave, "missed", date(2026, 10, 31))  # before granted_on
    row = consent.record_disclosure_consent(
        contact=dave, granted_on=date(2026, 12, 1), expires_on=date(2026, 12, 31),
        scope=["checkins"], purpose=None, recorded_by=None, now=people.alice.therapist.created_at,
    )  # fmt: skip
    assert consent.current_disclosure(dave, date(2026, 12, 31)) is row
    assert consent.current_disclosure(dave, date(2027, 1, 1)) is None  # expired
    assert not consent.disclosure_allows(dave, "missed", date(2026, 12, 5))  # not in scope now
    assert consent.sms_consent_granted(dave)
    assert not consent.is_opted_out(dave.phone)
    db.session.add(OptOut(phone=dave.phone, created_at=row.recorded_at))
    db.session.flush()
    assert consent.is_opted_out(dave.phone)


def test_opted_out_number_gets_no_optin_text(api, carol, people):
    db.session.add(OptOut(phone="+12015550155", created_at=people.alice.therapist.created_at))
    db.session.commit()
    body = api.post(
        base(carol), {**NEW, "sms_consent": {"granted": True, "method": "verbal"}}
    ).get_json()
    assert body["sms_consent"]["opted_out"] is True
    assert Message.query.filter_by(contact_id=body["id"]).count() == 0
