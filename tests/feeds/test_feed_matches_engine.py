"""Calendar apps and the SMS engine agree: each parser finds exactly the engine's instants.

For clients in four zones (weekly 19:00 meeting, daily 20:00 commitment, cancelled/skipped/
excused check-ins and pauses) each client's rendered feed is expanded over a year with ical.js
(node), vobject and recurring_ical_events, and every parser must find exactly the UTC
instants service.schedule gives for the same rows, minus the EXDATE'd occurrences. 19:00 and
20:00 are never skipped or repeated by a DST change; those edge times, where parsers
legitimately differ, are pinned in test_cross_parser.py instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pytest

from service import feeds, planning
from service.db import db
from service.feed_content import OFF_STATUSES
from service.models import CheckIn, Client, Commitment, MeetingPlan
from service.schedule import (
    expand,
    expand_weekly_meeting,
    get_zone,
    parse_local_time,
    resolve_local,
)
from tests.conftest import _wipe
from tests.factories import make_client, make_commitment, make_meeting, make_plan, make_therapist
from tests.feeds.conftest import ExpandWithIcalJs
from tests.feeds.helpers import make_checkin, move_clock
from tests.feeds.test_cross_parser import (
    WINDOW_END,
    WINDOW_START,
    expand_with_recurring_ical_events,
    expand_with_vobject,
)

NOW = datetime(2026, 10, 5, 12, 0, tzinfo=UTC)
STARTS = date(2026, 9, 1)
CREATED = datetime(2026, 8, 20, tzinfo=UTC)
ZONES = ("America/New_York", "Europe/London", "Australia/Sydney", "Asia/Kolkata")
FORMERLY_UNSUPPORTED = ("Asia/Jerusalem", "Africa/Casablanca", "America/Santiago")
# Thursday meetings; in the three zones of formerly unsupported rules, on their change days:
# Israel starts summer time on a Friday, Morocco and Chile change on Sundays.
ZONE_DAYS = [(zone, 4) for zone in ZONES] + [
    ("Asia/Jerusalem", 5),
    ("Africa/Casablanca", 0),
    ("America/Santiago", 0),
]
# Meetings: what happened before the pause is history; then cancelled/skipped/excused weeks.
MEETING_CHECKINS = {
    date(2026, 9, 3): "confirmed",
    date(2026, 9, 10): "confirmed",
    date(2026, 9, 17): "missed",
    date(2026, 9, 24): "declined",
    date(2026, 10, 1): "confirmed",
    date(2026, 11, 26): "cancelled",
    date(2027, 1, 7): "excused",
    date(2027, 3, 18): "skipped",
}
MEETING_BACK = date(2026, 10, 23)  # paused 8, 15 and 22 October
CALL_BACK = date(2026, 10, 10)  # paused 5-9 October
CALL_OFF = {date(2026, 12, 25): "cancelled", date(2027, 1, 1): "skipped"}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _client_in(therapist, zone: str, n: int, *, day: int = 4) -> Client:
    """A client in zone with a weekly meeting (TSML day) at 19:00 and a daily 20:00 call."""
    client = make_client(therapist, display_name=f"Client {n}", phone=f"+150055502{n:02d}",
                         timezone=zone, sobriety_date=None, created_at=CREATED)  # fmt: skip
    meeting = make_meeting(client.practice_id, timezone=zone, day=day, time="19:00",
                           end_time="20:00", name=f"Meeting {n}")  # fmt: skip
    plan = make_plan(client, meeting, starts_on=STARTS, paused_until=MEETING_BACK,
                     created_at=CREATED)  # fmt: skip
    call = make_commitment(client, starts_on=STARTS, paused_until=CALL_BACK, created_at=CREATED)
    for day_, status in MEETING_CHECKINS.items():
        make_checkin(client, "meeting_plan", plan.id, datetime.combine(day_, time(19)), status)
    day_ = STARTS
    while day_ < NOW.date():  # a month of answered calls before the pause
        make_checkin(client, "commitment", call.id, datetime.combine(day_, time(20)), "confirmed")
        day_ += timedelta(days=1)
    for day_, status in CALL_OFF.items():
        make_checkin(client, "commitment", call.id, datetime.combine(day_, time(20)), status)
    return client


def _off_locals(client: Client, source_type: str, source, back: date, rule_locals) -> set:
    """The occurrences the engine does not text: off check-ins, and paused days without one."""
    rows = db.session.query(CheckIn).filter_by(source_type=source_type, source_id=source.id)
    checkins = {row.occurrence: row.status for row in rows}
    off = {local for local, status in checkins.items() if status in OFF_STATUSES}
    for local in rule_locals:
        if local not in checkins and planning.paused_reason(source, client, local):
            assert local.date() < back
            off.add(local)
    return off


def engine_instants(client: Client) -> dict[str, list[str]]:
    """Return {uid: UTC instants} from service.schedule for the client's rows."""
    out = {}
    plan = db.session.query(MeetingPlan).filter_by(client_id=client.id).one()
    meeting = plan.meeting
    wall = parse_local_time(meeting.time)
    every = expand_weekly_meeting(meeting.day, wall, meeting.timezone, plan.starts_on,
                                  WINDOW_START, WINDOW_END)  # fmt: skip
    off = _off_locals(client, "meeting_plan", plan, MEETING_BACK, [o.local for o in every])
    kept = expand_weekly_meeting(meeting.day, wall, meeting.timezone, plan.starts_on,
                                 WINDOW_START, WINDOW_END, exdates=off)  # fmt: skip
    out[f"{plan.id}@steadfast"] = [_iso(o.at) for o in kept]
    call = db.session.query(Commitment).filter_by(client_id=client.id).one()
    args = (call.rrule, parse_local_time(call.time), client.timezone, call.starts_on,
            WINDOW_START, WINDOW_END)  # fmt: skip
    off = _off_locals(client, "commitment", call, CALL_BACK, [o.local for o in expand(*args)])
    out[f"{call.id}@steadfast"] = [_iso(o.at) for o in expand(*args, exdates=off)]
    return out


@dataclass(frozen=True)
class Rendered:
    """One client's feed and what the engine says about the same rows."""

    zone: str
    feed: bytes
    expected: dict[str, list[str]]
    # Per source uid: (instants shown by the engine's planner, instants that have check-ins).
    planned: dict[str, tuple[set[str], set[str]]]


def _planned(client: Client) -> dict[str, tuple[set[str], set[str]]]:
    out = {}
    plan = db.session.query(MeetingPlan).filter_by(client_id=client.id).one()
    call = db.session.query(Commitment).filter_by(client_id=client.id).one()
    for source, zone in ((plan, plan.meeting.timezone), (call, client.timezone)):
        rows = db.session.query(CheckIn).filter_by(source_id=source.id)
        answered = {_iso(resolve_local(row.occurrence, get_zone(zone))) for row in rows}
        slots = planning.desired_slots(source, client, NOW, WINDOW_END)
        out[f"{source.id}@steadfast"] = ({_iso(slot.event_at) for slot in slots}, answered)
    return out


@pytest.fixture(scope="module")
def rendered(_app, clock) -> dict[str, Rendered]:
    """Build every client once per module (the tests only read bytes and instants)."""
    with _app.app_context():
        _wipe()
        move_clock(clock, NOW)
        therapist = make_therapist().therapist
        out = {}
        for n, (zone, day) in enumerate(ZONE_DAYS):
            client = _client_in(therapist, zone, n, day=day)
            db.session.commit()
            body, _etag, _modified = feeds.render_client_feed(client, now=NOW)
            out[zone] = Rendered(zone, body, engine_instants(client), _planned(client))
        db.session.remove()
    return out


def test_expected_instants_are_what_they_claim(app, rendered) -> None:
    """Guard the fixture: a year of weeks and days, with every kind of exclusion present."""
    for zone in ZONES:
        weekly, daily = sorted(rendered[zone].expected.values(), key=len)
        assert 52 - 3 - 3 <= len(weekly) <= 52 - 3 - 3 + 1  # 3 off check-ins, 3 paused weeks
        assert 365 - 2 - 5 - 1 <= len(daily) <= 365 - 2 - 5 + 1  # 2 off days, 5 paused days


def _expand(parser: str, feed: bytes, icaljs: ExpandWithIcalJs | None) -> dict[str, list[str]]:
    if parser == "ical.js":
        assert icaljs is not None
        return icaljs(feed, WINDOW_START, WINDOW_END)
    if parser == "vobject":
        return expand_with_vobject(feed)
    return expand_with_recurring_ical_events(feed)


@pytest.mark.parametrize("parser", ["ical.js", "vobject", "recurring_ical_events"])
def test_every_parser_finds_exactly_the_engines_instants(
    parser: str, app, rendered, request: pytest.FixtureRequest
) -> None:
    """The headline: New York, London, Sydney, Kolkata; every instant, every parser."""
    icaljs = request.getfixturevalue("icaljs") if parser == "ical.js" else None
    for zone in ZONES:
        got = _expand(parser, rendered[zone].feed, icaljs)
        assert got == rendered[zone].expected, (parser, zone)


def test_feed_shows_what_the_engine_plans(app, rendered) -> None:
    """Ahead of now, where no check-in exists yet, the feed shows the engine's desired slots."""
    for zone in ZONES:
        got = expand_with_recurring_ical_events(rendered[zone].feed)
        for uid, (planned, answered) in rendered[zone].planned.items():
            shown = {i for i in got[uid] if i >= _iso(NOW)}
            assert shown - answered == planned - answered, (zone, uid)
            assert len(planned) > 40


@pytest.mark.parametrize("parser", ["ical.js", "vobject", "recurring_ical_events"])
@pytest.mark.parametrize("zone", FORMERLY_UNSUPPORTED)
def test_formerly_unsupported_zones_across_a_year(
    zone: str, parser: str, app, rendered, request: pytest.FixtureRequest
) -> None:
    """Israel (Friday changes), Morocco (Ramadan) and Chile (Sun>=2) agree with the engine."""
    icaljs = request.getfixturevalue("icaljs") if parser == "ical.js" else None
    assert _expand(parser, rendered[zone].feed, icaljs) == rendered[zone].expected
