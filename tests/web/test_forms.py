"""Dashboard forms validate exactly like the API and show each error beside its field."""

from __future__ import annotations

import html as htmllib
import re

from sqlalchemy import select

from service.db import db
from service.models import Activity, CheckIn, Client, Commitment, DisclosureConsent, MeetingPlan
from tests.factories import make_commitment, make_contact, make_meeting
from tests.web.conftest import post_form


def _field_errors(page: str) -> dict[str, str]:
    """Return {element id: message} for every field error on the page."""
    found = re.findall(r'<p class="field-error" id="([^"]+)-error">([^<]*)</p>', page)
    return {fid: htmllib.unescape(text) for fid, text in found}


def _api_errors(client, people, path, body):
    response = client.post(f"/api/v1{path}", json=body, headers=people.alice.headers)
    assert response.status_code == 422, response.get_data(as_text=True)
    return response.get_json()["errors"]


def test_new_client_errors_match_the_api(app, web, people):
    form = {"display_name": "", "phone": "12", "timezone": "Mars/Olympus", "recovery_path": "smart",
            "current_step": "4", "sobriety_date": "2030-01-01", "quiet_hours.start": "21:00",
            "quiet_hours.end": "21:00", "sms_consent.granted": "on"}  # fmt: skip
    response = post_form(web, "/clients/new", "/clients/new", form)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    shown = _field_errors(page)
    api = _api_errors(app.test_client(), people, "/clients", {
        "phone": "12", "timezone": "Mars/Olympus", "recovery_path": "smart", "current_step": 4,
        "sobriety_date": "2030-01-01", "quiet_hours": {"start": "21:00", "end": "21:00"},
        "sms_consent": {"granted": True},
    })  # fmt: skip
    assert set(api) == {"display_name", "phone", "timezone", "current_step", "sobriety_date",
                        "quiet_hours", "sms_consent.method"}  # fmt: skip
    ids = {"display_name": "display-name", "phone": "phone", "timezone": "timezone",
           "current_step": "current-step", "sobriety_date": "sobriety-date",
           "sms_consent.method": "sms-consent-method"}  # fmt: skip
    for field, fid in ids.items():
        assert shown[fid] == "; ".join(api[field]), field
        assert f'aria-describedby="{fid}-error"' in page or f'{fid}-error"' in page
    assert "; ".join(api["quiet_hours"]) in page  # a whole-object error: listed at the top
    assert 'value="Mars/Olympus"' in page  # what was typed is kept
    assert db.session.scalar(select(Client).where(Client.phone == "12")) is None


def test_new_client_is_created(web, people):
    form = {"display_name": "Erin T.", "phone": "(617) 555-0142", "timezone": "America/New_York",
            "language": "en", "recovery_path": "na", "current_step": "2", "quiet_hours.start": "22:00",
            "quiet_hours.end": "07:30", "discreet": "on", "sms_consent.granted": "on",
            "sms_consent.method": "written"}  # fmt: skip
    response = post_form(web, "/clients/new", "/clients/new", form)
    assert response.status_code == 302
    client = db.session.scalar(select(Client).where(Client.display_name == "Erin T."))
    assert client.phone == "+16175550142" and client.current_step == 2
    assert client.quiet_start == "22:00" and client.therapist_id == people.alice.id
    assert response.headers["Location"] == f"/clients/{client.id}"


def test_profile_edit_and_its_errors(web, people):
    page = f"/clients/{people.carol.id}"
    current = {"display_name": "Carol S.", "phone": "+15005550101", "timezone": "America/New_York",
               "language": "en", "recovery_path": "aa", "current_step": "3",
               "sobriety_date": "2026-09-01", "quiet_hours.start": "21:00",
               "quiet_hours.end": "08:00", "status": "active", "discreet": "on"}  # fmt: skip
    bad = post_form(web, page, f"{page}/profile", {**current, "paused_until": "2026-12-10"})
    assert bad.status_code == 422
    errors = _field_errors(bad.get_data(as_text=True))
    assert (
        errors["pf-paused-until"] == "only a paused client has paused_until (set status to paused)"
    )
    ok = post_form(
        web, page, f"{page}/profile", {**current, "status": "paused", "paused_until": "2026-12-10"}
    )
    assert ok.status_code == 302
    db.session.refresh(people.carol)
    assert people.carol.status == "paused" and people.carol.current_step == 3


def test_commitment_errors_match_the_api(app, web, people):
    page = f"/clients/{people.carol.id}"
    form = {"kind": "meeting_quota", "title": "Meetings", "schedule.rrule": "FREQ=DAILY",
            "grace_minutes": "2", "escalate_after_misses": "1", "verifier": "self", "active": "on"}  # fmt: skip
    response = post_form(web, page, f"{page}/commitments", form)
    assert response.status_code == 422
    shown = _field_errors(response.get_data(as_text=True))
    api = _api_errors(app.test_client(), people, f"/clients/{people.carol.id}/commitments", {
        "kind": "meeting_quota", "title": "Meetings", "schedule": {"rrule": "FREQ=DAILY"},
        "grace_minutes": 2,
    })  # fmt: skip
    assert shown["nc2-target"] == "; ".join(api["target"])
    assert shown["nc2-grace-minutes"] == "; ".join(api["grace_minutes"])
    assert "; ".join(api["schedule"]) in response.get_data(as_text=True)
    ok = post_form(web, page, f"{page}/commitments", {**form, "schedule.rrule": "FREQ=WEEKLY",
                                                       "target": "3", "grace_minutes": "120"})  # fmt: skip
    assert ok.status_code == 302
    row = db.session.scalar(select(Commitment).where(Commitment.client_id == people.carol.id))
    assert row.kind == "meeting_quota" and row.target == 3 and row.rrule == "FREQ=WEEKLY"


def test_meeting_plan_create_pause_resume_archive(web, people):
    meeting = make_meeting(people.riverside.id)
    shy = make_contact(
        people.carol, display_name="Quiet Q.", phone="+15005550177", sms_consent=False
    )
    db.session.commit()
    page = f"/clients/{people.carol.id}"
    form = {"meeting_id": meeting.id, "verifier": shy.id, "remind_minutes_before": "60",
            "confirm_window_hours": "12", "escalate_after_misses": "2"}  # fmt: skip
    refused = post_form(web, page, f"{page}/plans", form)
    assert refused.status_code == 422
    assert _field_errors(refused.get_data(as_text=True))["np-verifier"] == (
        "this contact has not agreed to receive texts"
    )
    assert (
        post_form(web, page, f"{page}/plans", {**form, "verifier": people.dave.id}).status_code
        == 302
    )
    plan = db.session.scalar(select(MeetingPlan).where(MeetingPlan.client_id == people.carol.id))
    assert plan.verifier_contact_id == people.dave.id and plan.escalate_after_misses == 2
    post_form(web, page, f"{page}/plans/{plan.id}/pause", {"paused_until": "2026-12-20"})
    db.session.refresh(plan)
    assert plan.paused_until.isoformat() == "2026-12-20"
    post_form(web, page, f"{page}/plans/{plan.id}/pause", {"paused_until": ""})
    db.session.refresh(plan)
    assert plan.paused_until is None
    edit = post_form(
        web,
        page,
        f"{page}/plans/{plan.id}",
        {**form, "verifier": "self", "confirm_window_hours": "99"},
    )
    assert edit.status_code == 422
    assert f"p-{plan.id}-confirm-window-hours-error" in edit.get_data(as_text=True)
    post_form(web, page, f"{page}/plans/{plan.id}/archive")
    db.session.refresh(plan)
    assert plan.archived_at is not None


def test_discharged_clients_get_no_new_plans(web, people):
    meeting = make_meeting(people.riverside.id)
    people.carol.status = "discharged"
    db.session.commit()
    page = f"/clients/{people.carol.id}"
    html = web.get(page).get_data(as_text=True)
    assert "is discharged" in html and "Add a meeting to the plan" not in html
    response = post_form(web, page, f"{page}/plans", {"meeting_id": meeting.id, "verifier": "self"})
    assert response.status_code == 422
    assert "this client is discharged" in response.get_data(as_text=True)


def test_network_consents(web, people):
    page = f"/clients/{people.carol.id}"
    dave = people.dave.id
    bad = post_form(web, page, f"{page}/contacts/{dave}/disclosure",
                    {"scope": ["checkins"], "granted_on": "2026-11-20", "expires_on": "2026-11-01"})  # fmt: skip
    assert bad.status_code == 422
    assert (
        _field_errors(bad.get_data(as_text=True))[f"dc-{dave}-expires-on"]
        == "must be on or after granted_on"
    )
    none = post_form(web, page, f"{page}/contacts/{dave}/disclosure", {"granted_on": "2026-11-20"})
    assert (
        _field_errors(none.get_data(as_text=True))[f"dc-{dave}-scope"] == "this field is required"
    )
    ok = post_form(web, page, f"{page}/contacts/{dave}/disclosure",
                   {"scope": ["checkins", "missed"], "granted_on": "2026-11-20", "expires_on": "2027-05-20"})  # fmt: skip
    assert ok.status_code == 302
    latest = db.session.scalars(select(DisclosureConsent).where(DisclosureConsent.contact_id == dave)
                                .order_by(DisclosureConsent.version.desc())).first()  # fmt: skip
    assert latest.scope == ["checkins", "missed"] and latest.version == 2
    post_form(web, page, f"{page}/contacts/{dave}/disclosure/revoke")
    db.session.refresh(latest)
    assert latest.revoked_at is not None
    method = post_form(web, page, f"{page}/contacts/{dave}/sms-consent", {"granted": "on"})
    assert method.status_code == 422
    assert "say how consent was given" in method.get_data(as_text=True)
    post_form(web, page, f"{page}/contacts/{dave}/sms-consent", {})
    assert "Not granted" in web.get(page).get_data(as_text=True)
    new = post_form(web, page, f"{page}/contacts", {
        "display_name": "Gail P.", "role": "peer", "phone": "617-555-0190", "can_confirm": "on",
        "sms_consent.granted": "on", "sms_consent.method": "verbal",
        "disclosure_consent.scope": ["urge"], "disclosure_consent.granted_on": "2026-12-01"})  # fmt: skip
    assert new.status_code == 302
    assert "Gail P." in web.get(page).get_data(as_text=True)


def test_activities_and_checkin_corrections(web, people, clock):
    page = f"/clients/{people.carol.id}"
    response = post_form(web, page, f"{page}/activities", {
        "kind": "therapy_session", "title": "Weekly session", "starts_at": "2026-12-03T15:30",
        "duration_minutes": "50"})  # fmt: skip
    assert response.status_code == 302
    row = db.session.scalar(select(Activity).where(Activity.client_id == people.carol.id))
    assert row.starts_at.isoformat() == "2026-12-03T20:30:00+00:00"  # 15:30 in New York
    post_form(web, page, f"{page}/activities/{row.id}/cancel")
    db.session.refresh(row)
    assert row.cancelled

    commitment = make_commitment(people.carol)
    from datetime import datetime, timedelta

    at = clock.now - timedelta(days=1)
    checkin = CheckIn(practice_id=people.carol.practice_id, client_id=people.carol.id,
                      source_type="commitment", source_id=commitment.id,
                      occurrence=datetime(2026, 11, 30, 20, 0), event_at=at, due_at=at,
                      status="missed", created_at=at, updated_at=at)  # fmt: skip
    db.session.add(checkin)
    db.session.commit()
    post_form(web, page, f"{page}/checkins/{checkin.id}/correct", {"status": "excused"})
    db.session.refresh(checkin)
    assert checkin.status == "excused"
