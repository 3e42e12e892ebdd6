"""Meeting plans, commitments and activities: defaults, validation, patch, archive, re-planning."""

from __future__ import annotations

import pytest

from service.db import db
from service.models import Activity, Commitment, MeetingPlan
from tests.api.conftest import assert_problem, count
from tests.factories import make_client, make_contact, make_meeting


def url(carol, kind: str, row_id: str | None = None) -> str:
    base = f"/clients/{carol.id}/{kind}"
    return f"{base}/{row_id}" if row_id else base


# Meeting plans ---------------------------------------------------------------------------


def test_plan_with_defaults(api, people, replans):
    carol = people.carol
    meeting = make_meeting(people.riverside.id, name="Tuesday Step", day=2)
    response = api.post(url(carol, "meeting-plans"), {"meeting_id": meeting.id})
    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"].endswith(url(carol, "meeting-plans", body["id"]))
    assert body["verifier"] == "self"
    assert (body["remind_minutes_before"], body["confirm_window_hours"]) == (60, 12)
    assert body["escalate_after_misses"] == 1
    assert body["starts_on"] == "2026-12-01"  # today in New York
    assert body["meeting"]["name"] == "Tuesday Step"
    assert body["warnings"] == []
    assert replans.sources == [("meeting_plan", body["id"])]


def test_plan_starts_on_is_the_clients_today(api, people, clock):
    clock.set("2026-12-02T03:00:00Z")  # still Dec 1 in New York
    meeting = make_meeting(people.riverside.id, day=2)
    body = api.post(url(people.carol, "meeting-plans"), {"meeting_id": meeting.id}).get_json()
    assert body["starts_on"] == "2026-12-01"


def test_plan_verifier_rules(api, people, replans):
    carol, dave = people.carol, people.dave
    meeting = make_meeting(people.riverside.id)
    shy = make_contact(carol, display_name="Shy", phone="+15005550150", sms_consent=False)
    nope = make_contact(carol, display_name="Nope", phone="+15005550151", can_confirm=False)
    other = make_client(people.alice.therapist, display_name="Other", phone="+15005550160")
    other_client_contact = make_contact(other, phone="+15005550161")
    db.session.commit()
    for verifier in (shy.id, nope.id, other_client_contact.id, "ct_unknown"):
        response = api.post(
            url(carol, "meeting-plans"), {"meeting_id": meeting.id, "verifier": verifier}
        )
        assert_problem(response, 422, "verifier")
    response = api.post(
        url(carol, "meeting-plans"), {"meeting_id": meeting.id, "verifier": dave.id}
    )
    assert response.get_json()["verifier"] == dave.id


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("meeting_id", "mt_unknown"),
        ("remind_minutes_before", -1),
        ("remind_minutes_before", 1441),
        ("confirm_window_hours", 0),
        ("confirm_window_hours", 73),
        ("escalate_after_misses", 51),
        ("escalate_after_misses", "2"),
        ("starts_on", "tomorrow"),
        ("paused_until", "2026-02-30"),
        ("verifier", "not valid!"),
        ("colour", "blue"),
    ],
)
def test_plan_invalid_fields_are_named(api, people, field, value):
    meeting = make_meeting(people.riverside.id)
    response = api.post(
        url(people.carol, "meeting-plans"), {"meeting_id": meeting.id, field: value}
    )
    assert_problem(response, 422, field)
    assert count(MeetingPlan) == 0


def test_plan_needs_a_meeting_of_this_practice(api, people):
    harbor = make_meeting(people.harbor.id)
    unscheduled = make_meeting(people.riverside.id, day=None, time=None)
    db.session.commit()
    response = api.post(url(people.carol, "meeting-plans"), {"meeting_id": harbor.id})
    assert_problem(response, 422, "meeting_id")
    response = api.post(url(people.carol, "meeting-plans"), {"meeting_id": unscheduled.id})
    assert_problem(response, 422, "meeting_id")


def test_duplicate_plan_is_a_conflict(api, world):
    response = api.post(url(world.people.carol, "meeting-plans"), {"meeting_id": world.meeting.id})
    assert_problem(response, 409)


def test_plan_patch_pause_and_archive(api, world, replans):
    carol, plan = world.people.carol, world.plan
    body = api.patch(url(carol, "meeting-plans", plan.id),
                     {"paused_until": "2026-12-24", "verifier": "self"}).get_json()  # fmt: skip
    assert (body["paused_until"], body["verifier"]) == ("2026-12-24", "self")
    body = api.patch(url(carol, "meeting-plans", plan.id), {"paused_until": None}).get_json()
    assert body["paused_until"] is None
    assert_problem(
        api.patch(url(carol, "meeting-plans", plan.id), {"meeting_id": None}), 422, "meeting_id"
    )
    body = api.delete(url(carol, "meeting-plans", plan.id)).get_json()
    assert body["archived_at"] == "2026-12-01T17:00:00Z"
    assert replans.sources.count(("meeting_plan", plan.id)) == 3
    assert api.get(url(carol, "meeting-plans")).get_json()["items"] == []
    assert (
        len(api.get(url(carol, "meeting-plans") + "?include_archived=true").get_json()["items"])
        == 1
    )
    assert_problem(api.patch(url(carol, "meeting-plans", plan.id), {"paused_until": None}), 409)


# Commitments -----------------------------------------------------------------------------

CALL = {
    "kind": "sponsor_call",
    "title": "Call Dave",
    "schedule": {"rrule": "FREQ=DAILY", "time": "20:00"},
}


def test_commitment_with_defaults(api, people, replans):
    response = api.post(url(people.carol, "commitments"), CALL)
    assert response.status_code == 201
    body = response.get_json()
    assert body["schedule"] == {"rrule": "FREQ=DAILY", "time": "20:00"}
    assert (body["verifier"], body["grace_minutes"], body["escalate_after_misses"]) == (
        "self",
        120,
        1,
    )
    assert (body["starts_on"], body["active"], body["target"]) == ("2026-12-01", True, None)
    assert replans.sources == [("commitment", body["id"])]


def test_meeting_quota(api, people):
    body = {"kind": "meeting_quota", "title": "3 meetings", "schedule": {"rrule": "FREQ=WEEKLY"}}
    assert_problem(api.post(url(people.carol, "commitments"), body), 422, "target")
    response = api.post(url(people.carol, "commitments"), {**body, "target": 3})
    assert response.status_code == 201
    assert response.get_json()["target"] == 3
    daily = {**body, "target": 3, "schedule": {"rrule": "FREQ=DAILY"}}
    assert_problem(api.post(url(people.carol, "commitments"), daily), 422, "schedule")
    assert_problem(api.post(url(people.carol, "commitments"), {**CALL, "target": 2}), 422, "target")


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"schedule": {"rrule": "FREQ=MINUTELY", "time": "20:00"}}, "schedule.rrule"),
        ({"schedule": {"rrule": "FREQ=HOURLY;BYMINUTE=0,30", "time": "20:00"}}, "schedule.rrule"),
        ({"schedule": {"rrule": "FREQ=DAILY;BYEASTER=1", "time": "20:00"}}, "schedule.rrule"),
        ({"schedule": {"rrule": "nonsense", "time": "20:00"}}, "schedule.rrule"),
        ({"schedule": {"rrule": "FREQ=DAILY"}}, "schedule"),
        ({"schedule": {"rrule": "FREQ=DAILY", "time": "8pm"}}, "schedule.time"),
        ({"schedule": {"rrule": "FREQ=DAILY", "time": "20:00", "tz": "UTC"}}, "schedule.tz"),
        ({"kind": "pray"}, "kind"),
        ({"title": ""}, "title"),
        ({"title": "t" * 201}, "title"),
        ({"grace_minutes": 4}, "grace_minutes"),
        ({"grace_minutes": 1441}, "grace_minutes"),
        ({"active": "yes"}, "active"),
        ({"target": 51}, "target"),
    ],
)
def test_commitment_invalid_fields_are_named(api, people, patch, field):
    response = api.post(url(people.carol, "commitments"), {**CALL, **patch})
    assert_problem(response, 422, field)
    assert count(Commitment) == 0


def test_commitment_dst_warning_uses_the_clients_zone(api, people):
    body = api.post(url(people.carol, "commitments"),
                    {**CALL, "schedule": {"rrule": "FREQ=DAILY", "time": "02:30"}}).get_json()  # fmt: skip
    assert len(body["warnings"]) == 1


def test_commitment_patch_and_archive(api, world, replans):
    carol, commitment = world.people.carol, world.commitment
    path = url(carol, "commitments", commitment.id)
    body = api.patch(path, {"schedule": {"time": "21:15"}, "active": False}).get_json()
    assert body["schedule"] == {"rrule": "FREQ=DAILY", "time": "21:15"}
    assert body["active"] is False
    assert body["verifier"] == world.people.dave.id  # untouched
    assert_problem(api.patch(path, {"title": None}), 422, "title")
    body = api.delete(path).get_json()
    assert body["archived_at"] is not None and body["active"] is False
    assert replans.sources.count(("commitment", commitment.id)) == 2


# Activities ------------------------------------------------------------------------------

SESSION = {"kind": "therapy_session", "title": "Session", "starts_at": "2026-12-08T10:00:00-05:00"}


def test_activity_with_defaults(api, people, alice):
    response = api.post(url(people.carol, "activities"), SESSION)
    assert response.status_code == 201
    body = response.get_json()
    assert body["starts_at"] == "2026-12-08T15:00:00Z"
    assert body["local_start"] == "2026-12-08T10:00"
    assert (body["duration_minutes"], body["cancelled"]) == (50, False)
    assert body["therapist_id"] == alice.id
    body = api.post(
        url(people.carol, "activities"), {"title": "Walk", "starts_at": "2026-12-09T14:00:00Z"}
    ).get_json()
    assert (body["kind"], body["therapist_id"]) == ("activity", None)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("starts_at", "2026-12-08T10:00:00"),  # no zone: ambiguous
        ("starts_at", "2026-12-08"),
        ("starts_at", "next tuesday"),
        ("starts_at", 1765000000),
        ("kind", "party"),
        ("duration_minutes", 0),
        ("duration_minutes", 1441),
        ("location", "l" * 501),
        ("cancelled", "false"),
    ],
)
def test_activity_invalid_fields_are_named(api, people, field, value):
    assert_problem(api.post(url(people.carol, "activities"), {**SESSION, field: value}), 422, field)
    assert count(Activity) == 0


def test_activity_patch_and_cancel(api, world):
    carol = world.people.carol
    path = url(carol, "activities", world.activity_id)
    body = api.patch(
        path, {"starts_at": "2026-12-04T20:00:00Z", "notes": "Bring workbook"}
    ).get_json()
    assert (body["starts_at"], body["notes"]) == ("2026-12-04T20:00:00Z", "Bring workbook")
    body = api.patch(path, {"notes": None}).get_json()
    assert body["notes"] is None
    body = api.delete(path).get_json()
    assert body["cancelled"] is True
    assert [a["id"] for a in api.get(url(carol, "activities")).get_json()["items"]] == [
        world.activity_id
    ]
