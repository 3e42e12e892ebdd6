"""What the feeds say: discreet titles, milestones, alarms, EXDATEs, endings, therapist initials."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from service import feeds
from service.db import db
from service.feed_therapist import initials
from tests.factories import make_client, make_commitment, make_meeting, make_plan
from tests.feeds.helpers import T0, make_activity, make_alert, make_checkin, vevents

DISCREET_WORDS = {"Meeting", "Call", "Session", "Check-in", "Milestone"}
# Nothing naming a fellowship, a meeting, the clinic, a substance or the people involved.
FORBIDDEN = [
    "Big Book", "Thursday Night", "AA", "Alcoholics", "Narcotics", "SMART", "Riverside",
    "Counseling", "Clinic", "St. Mark", "Main St", "Springfield", "zoom", "alcohol", "relapse",
    "sober", "Dave", "Alice", "Carol", "Step", "days", "year",
]  # fmt: skip


def _body(client) -> bytes:
    db.session.commit()
    body, _etag, _modified = feeds.render_client_feed(client, now=T0)
    return body


@pytest.fixture
def full_plan(carol):
    """Carol's plan with one of everything a feed shows."""
    meeting = make_meeting(carol.practice_id, conference_url="https://zoom.example/j/123")
    plan = make_plan(carol, meeting, remind_minutes_before=45)
    call = make_commitment(carol)
    steps = make_commitment(carol, kind="step_work", title="Step 4 inventory (AA)",
                            rrule="FREQ=WEEKLY;BYDAY=SA", time="10:00")  # fmt: skip
    session = make_activity(carol)
    workshop = make_activity(carol, kind="activity", title="SMART Recovery workshop",
                             location="Library", starts_at=datetime(2026, 12, 5, 17, tzinfo=UTC))  # fmt: skip
    return {"plan": plan, "call": call, "steps": steps, "session": session, "workshop": workshop}


def test_discreet_feed_says_nothing_revealing(carol, full_plan) -> None:
    body = _body(carol)
    events = vevents(body)
    summaries = {str(e["SUMMARY"]) for e in events.values()}
    assert summaries == DISCREET_WORDS
    assert str(events[f"{full_plan['call'].id}@steadfast"]["SUMMARY"]) == "Call"
    assert str(events[f"{full_plan['steps'].id}@steadfast"]["SUMMARY"]) == "Check-in"
    assert str(events[f"{full_plan['session'].id}@steadfast"]["SUMMARY"]) == "Session"
    assert str(events[f"{full_plan['workshop'].id}@steadfast"]["SUMMARY"]) == "Check-in"
    text = body.decode().replace("\r\n ", "")
    for word in FORBIDDEN:
        assert word not in text, word
    for event in events.values():
        assert not {"LOCATION", "DESCRIPTION", "URL"} & set(event)


def test_open_feed_shows_names_and_places(carol, full_plan) -> None:
    carol.discreet = False
    events = vevents(_body(carol))
    meeting = events[f"{full_plan['plan'].id}@steadfast"]
    assert str(meeting["SUMMARY"]) == "Thursday Night Big Book"
    assert str(meeting["LOCATION"]) == "St. Mark's Hall, 12 Main St, Springfield"
    assert str(meeting["URL"]) == "https://zoom.example/j/123"
    assert str(events[f"{full_plan['call'].id}@steadfast"]["SUMMARY"]) == "Call Dave"
    assert str(events[f"{full_plan['steps'].id}@steadfast"]["SUMMARY"]) == "Step 4 inventory (AA)"
    session = events[f"{full_plan['session'].id}@steadfast"]
    assert str(session["SUMMARY"]) == "Session with Alice at Riverside Counseling"
    assert str(session["LOCATION"]) == "Riverside Counseling, Suite 4"
    assert "relapse" not in _body(carol).decode()  # notes never leave the record


def test_calendar_name_is_neutral(carol, full_plan) -> None:
    carol.discreet = False
    text = _body(carol).decode()
    assert "\r\nX-WR-CALNAME:Steadfast\r\n" in text and "\r\nNAME:Steadfast\r\n" in text


def test_milestones_are_all_day_and_dated_from_sobriety(carol) -> None:
    carol.discreet = False
    carol.sobriety_date = date(2026, 9, 1)
    events = vevents(_body(carol))
    found = {
        str(e["SUMMARY"]): e["DTSTART"].dt for uid, e in events.items() if "-milestone-" in uid
    }
    assert found == {
        "30 days": date(2026, 10, 1),
        "60 days": date(2026, 10, 31),
        "90 days": date(2026, 11, 30),
        "6 months": date(2027, 3, 1),
        "1 year": date(2027, 9, 1),
        "2 years": date(2028, 9, 1),
        "3 years": date(2029, 9, 1),  # the next few years after this one (2026)
    }
    for uid, event in events.items():
        if "-milestone-" in uid:
            assert event["DTEND"].dt - event["DTSTART"].dt == timedelta(days=1)
    carol.sobriety_date = None
    assert not [uid for uid in vevents(_body(carol)) if "-milestone-" in uid]


def test_alarm_follows_the_plans_reminder(carol) -> None:
    plan = make_plan(carol, make_meeting(carol.practice_id), remind_minutes_before=45)
    body = _body(carol).decode()
    assert "BEGIN:VALARM" in body and "TRIGGER:-PT45M" in body
    plan.remind_minutes_before = 0
    assert "BEGIN:VALARM" not in _body(carol).decode()


def test_meeting_starts_on_the_first_meeting_day(carol) -> None:
    plan = make_plan(carol, make_meeting(carol.practice_id, end_time="20:30"),
                     starts_on=date(2026, 12, 5))  # fmt: skip
    event = vevents(_body(carol))[f"{plan.id}@steadfast"]
    assert event["DTSTART"].dt.replace(tzinfo=None) == datetime(2026, 12, 10, 19, 0)
    assert str(event["DTSTART"].dt.tzinfo) == "America/New_York"
    assert event["DURATION"].dt == timedelta(minutes=90)
    assert event["RRULE"].to_ical() == b"FREQ=WEEKLY;BYDAY=TH"


def test_what_is_left_out_or_ended(carol) -> None:
    unscheduled = make_plan(carol, make_meeting(carol.practice_id, day=None, time=None))
    archived = make_plan(carol, make_meeting(carol.practice_id, name="Other"), archived_at=T0)
    quota = make_commitment(carol, kind="meeting_quota", target=3, rrule="FREQ=WEEKLY", time=None)
    untimed = make_commitment(carol, kind="homework", time=None)
    ended = make_commitment(carol, archived_at=datetime(2026, 12, 10, 12, tzinfo=UTC), active=False)
    idle = make_commitment(carol, active=False, updated_at=datetime(2026, 12, 20, 12, tzinfo=UTC))
    events = vevents(_body(carol))
    for row in (unscheduled, archived, quota, untimed):
        assert f"{row.id}@steadfast" not in events
    assert events[f"{ended.id}@steadfast"]["RRULE"]["UNTIL"] == [
        datetime(2026, 12, 10, 12, tzinfo=UTC)
    ]
    assert events[f"{idle.id}@steadfast"]["RRULE"]["UNTIL"] == [
        datetime(2026, 12, 20, 12, tzinfo=UTC)
    ]


def test_commitment_rules_are_kept_with_local_until_in_utc(carol) -> None:
    weekly = make_commitment(carol, rrule="FREQ=WEEKLY;BYDAY=MO,TH;UNTIL=20270131",
                             starts_on=date(2026, 12, 2))  # fmt: skip
    event = vevents(_body(carol))[f"{weekly.id}@steadfast"]
    # DTSTART is the first day the rule really fires (Thursday 3 Dec), not starts_on.
    assert event["DTSTART"].dt.replace(tzinfo=None) == datetime(2026, 12, 3, 20, 0)
    assert event["RRULE"]["BYDAY"] == ["MO", "TH"]
    # UNTIL=20270131 means through 23:59:59 local that day; RFC 5545 wants it in UTC.
    assert event["RRULE"]["UNTIL"] == [datetime(2027, 2, 1, 4, 59, 59, tzinfo=UTC)]


def test_cancelled_activity_stays_marked_cancelled(carol) -> None:
    activity = make_activity(carol, cancelled=True, revision=2)
    event = vevents(_body(carol))[f"{activity.id}@steadfast"]
    assert str(event["STATUS"]) == "CANCELLED" and int(event["SEQUENCE"]) == 2


def _exdates(event) -> list[datetime]:
    props = event.get("EXDATE", [])
    props = props if isinstance(props, list) else [props]
    return sorted(d.dt.replace(tzinfo=None) for prop in props for d in prop.dts)


def test_off_checkins_become_exdates(carol) -> None:
    plan = make_plan(carol, make_meeting(carol.practice_id))
    thursdays = [datetime(2026, 12, 3, 19) + timedelta(weeks=n) for n in range(6)]
    statuses = ["confirmed", "cancelled", "skipped", "excused", "missed", "declined"]
    for when, status in zip(thursdays, statuses, strict=True):
        make_checkin(carol, "meeting_plan", plan.id, when, status)
    # A check-in at a time the meeting no longer has cannot become an EXDATE.
    make_checkin(carol, "meeting_plan", plan.id, datetime(2026, 12, 4, 18), "cancelled")
    event = vevents(_body(carol))[f"{plan.id}@steadfast"]
    assert _exdates(event) == thursdays[1:4]


def test_pause_weeks_become_exdates_but_kept_history_stays(carol) -> None:
    plan = make_plan(carol, make_meeting(carol.practice_id), paused_until=date(2026, 12, 24))
    make_checkin(carol, "meeting_plan", plan.id, datetime(2026, 12, 3, 19), "confirmed")
    call = make_commitment(carol, paused_until=date(2026, 12, 4))
    events = vevents(_body(carol))
    # paused_until is the first day back: Thursday 24 Dec is on again.
    assert _exdates(events[f"{plan.id}@steadfast"]) == [
        datetime(2026, 12, 10, 19), datetime(2026, 12, 17, 19)
    ]  # fmt: skip
    assert _exdates(events[f"{call.id}@steadfast"]) == [
        datetime(2026, 12, d, 20) for d in (1, 2, 3)
    ]


def test_client_pause_applies_to_everything(carol) -> None:
    plan = make_plan(carol, make_meeting(carol.practice_id))
    carol.status, carol.paused_until = "paused", date(2026, 12, 11)
    event = vevents(_body(carol))[f"{plan.id}@steadfast"]
    assert _exdates(event) == [datetime(2026, 12, 3, 19), datetime(2026, 12, 10, 19)]
    # Open-ended: the calendar stops when the pause began (the client's last edit).
    carol.paused_until, carol.updated_at = None, datetime(2026, 12, 15, 12, tzinfo=UTC)
    event = vevents(_body(carol))[f"{plan.id}@steadfast"]
    assert event["RRULE"]["UNTIL"] == [datetime(2026, 12, 15, 12, tzinfo=UTC)]
    assert "EXDATE" not in event
    carol.updated_at = T0  # paused before the first meeting: nothing to show at all
    assert f"{plan.id}@steadfast" not in vevents(_body(carol))


def test_sequence_and_last_modified_follow_the_rows(carol) -> None:
    meeting = make_meeting(carol.practice_id, revision=3, updated_at=T0 + timedelta(days=2))
    plan = make_plan(carol, meeting, revision=2)
    event = vevents(_body(carol))[f"{plan.id}@steadfast"]
    assert int(event["SEQUENCE"]) == 5
    assert event["LAST-MODIFIED"].dt == T0 + timedelta(days=2)
    assert event["DTSTAMP"].dt == T0 + timedelta(days=2)


def test_initials() -> None:
    assert initials("Carol S.") == "C.S."
    assert initials("mary-jane o'neil") == "M.J.O."
    assert initials("José Álvarez Ruiz Soto") == "J.Á.R."
    assert initials("") == "?"


def test_therapist_feed_shows_initials_only(alice, bob, carol) -> None:
    session = make_activity(carol)
    cancelled = make_activity(
        carol, cancelled=True, starts_at=datetime(2026, 12, 10, 15, tzinfo=UTC)
    )
    make_activity(carol, kind="activity", title="Yoga")  # not a therapy session
    alert = make_alert(carol)
    make_alert(carol, status="resolved", occurrence="2026-12-10T19:00")
    gone = make_client(alice.therapist, display_name="Frank G.", phone="+15005550112",
                       status="discharged")  # fmt: skip
    make_activity(gone)
    elsewhere = make_client(bob.therapist, display_name="Gina H.", phone="+15005550113")
    make_activity(elsewhere)
    db.session.commit()
    body, _etag, _modified = feeds.render_therapist_feed(alice.therapist, now=T0)
    events = vevents(body)
    assert sorted(events) == sorted(f"{row.id}@steadfast" for row in (session, cancelled, alert))
    assert str(events[f"{session.id}@steadfast"]["SUMMARY"]) == "Session — C.S."
    assert str(events[f"{cancelled.id}@steadfast"]["STATUS"]) == "CANCELLED"
    follow_up = events[f"{alert.id}@steadfast"]
    assert str(follow_up["SUMMARY"]) == "Follow-up — C.S."
    assert follow_up["DTSTART"].dt == date(2026, 12, 3)
    text = body.decode().replace("\r\n ", "")
    for word in ("Carol", "Riverside", "Alice", "Big Book", "missed", "relapse", "Frank", "Gina"):
        assert word not in text, word
    assert not re.search(r"\r\n(LOCATION|DESCRIPTION)", text)


def test_a_row_the_schedule_cannot_read_is_left_out(carol, caplog) -> None:
    """Bad stored data (here: a rule and a zone) costs that row, never the whole feed."""
    good = make_commitment(carol)
    bad_rule = make_commitment(carol, rrule="FREQ=SECONDLY")
    bad_zone = make_plan(carol, make_meeting(carol.practice_id, timezone="Mars/Olympus"))
    events = vevents(_body(carol))
    assert f"{good.id}@steadfast" in events
    assert f"{bad_rule.id}@steadfast" not in events
    assert f"{bad_zone.id}@steadfast" not in events
    assert bad_rule.id in caplog.text and bad_zone.id in caplog.text
