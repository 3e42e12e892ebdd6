"""Test the byte-level shape of rendered feeds and their zoneinfo-derived VTIMEZONEs."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
import time_machine
from dateutil.rrule import rrulestr

from service.calendar import FeedEvent, render_feed, vtimezone

LAST_MODIFIED = datetime(2026, 8, 15, 9, 30, tzinfo=UTC)
REFERENCE_YEAR = 2026


def make_event(**overrides: object) -> FeedEvent:
    fields: dict[str, object] = {
        "uid": "meeting-42@steadfast",
        "summary": "Thursday Night Home Group",
        "start": datetime(2026, 9, 3, 19, 0),
        "zone": "America/New_York",
        "duration": timedelta(minutes=90),
        "rrule": "FREQ=WEEKLY;BYDAY=TH",
        "exdates": (datetime(2026, 11, 26, 19, 0),),
        "until": None,
        "sequence": 3,
        "last_modified": LAST_MODIFIED,
        "created": datetime(2026, 7, 1, 12, 0, tzinfo=UTC),
        "description": "Open meeting. Bring a friend.",
        "location": "St. Mark's Hall, 12 Main St; Room 2",
        "url": "https://steadfast.example/meetings/42",
        "alarm_minutes": 30,
        "status": "CONFIRMED",
        "categories": ("Meeting", "Home group"),
    }
    fields.update(overrides)
    return FeedEvent(**fields)  # type: ignore[arg-type]


def milestone(**overrides: object) -> FeedEvent:
    defaults: dict[str, object] = {
        "uid": "milestone-90d@steadfast",
        "summary": "90 days",
        "start": date(2026, 10, 1),
        "zone": None,
        "duration": timedelta(days=1),
        "rrule": None,
        "exdates": (),
        "alarm_minutes": None,
        "categories": (),
    }
    defaults.update(overrides)
    return make_event(**defaults)


def feed_events() -> list[FeedEvent]:
    return [
        make_event(),
        make_event(
            uid="meeting-7@steadfast",
            start=datetime(2026, 9, 1, 19, 0),
            zone="Europe/London",
            rrule="FREQ=WEEKLY;BYDAY=TU",
            exdates=(),
            until=datetime(2027, 6, 1, tzinfo=UTC),
        ),
        make_event(
            uid="commitment-3@steadfast",
            start=datetime(2026, 9, 1, 20, 0),
            rrule="FREQ=DAILY",
            exdates=(datetime(2026, 12, 25, 20, 0), datetime(2026, 12, 24, 20, 0)),
            alarm_minutes=None,
            status=None,
            categories=(),
        ),
        milestone(),
    ]


def lines(feed: bytes) -> list[str]:
    """Return the unfolded content lines of feed."""
    return feed.decode("utf-8").replace("\r\n ", "").split("\r\n")


def test_calendar_headers() -> None:
    got = lines(render_feed(name="Sam's recovery", events=feed_events()))
    assert got[:10] == [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Steadfast//Feeds 1.0//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "NAME:Sam's recovery",
        "X-WR-CALNAME:Sam's recovery",
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
        "X-PUBLISHED-TTL:PT1H",
        "BEGIN:VTIMEZONE",
    ]
    assert got[-2:] == ["END:VCALENDAR", ""]


def test_refresh_interval_follows_refresh_minutes() -> None:
    got = lines(render_feed(name="x", events=[], refresh_minutes=90, prodid="-//Test//EN"))
    assert "REFRESH-INTERVAL;VALUE=DURATION:PT1H30M" in got
    assert "X-PUBLISHED-TTL:PT1H30M" in got
    assert "PRODID:-//Test//EN" in got
    assert not any(line.startswith("BEGIN:VTIMEZONE") for line in got)


def test_timed_event_properties() -> None:
    feed = render_feed(name="x", events=[make_event(until=datetime(2027, 6, 1, tzinfo=UTC))])
    got = lines(feed)
    for expected in [
        "UID:meeting-42@steadfast",
        "SUMMARY:Thursday Night Home Group",
        "DTSTART;TZID=America/New_York:20260903T190000",
        "DURATION:PT1H30M",
        "RRULE:FREQ=WEEKLY;UNTIL=20270601T000000Z;BYDAY=TH",
        "EXDATE;TZID=America/New_York:20261126T190000",
        "SEQUENCE:3",
        "DTSTAMP:20260815T093000Z",
        "LAST-MODIFIED:20260815T093000Z",
        "CREATED:20260701T120000Z",
        "DESCRIPTION:Open meeting. Bring a friend.",
        "LOCATION:St. Mark's Hall\\, 12 Main St\\; Room 2",
        "URL:https://steadfast.example/meetings/42",
        "STATUS:CONFIRMED",
        "CATEGORIES:Meeting,Home group",
        "BEGIN:VALARM",
        "ACTION:DISPLAY",
        "DESCRIPTION:Thursday Night Home Group",
        "TRIGGER:-PT30M",
        "END:VALARM",
    ]:
        assert expected in got
    assert not any(line.startswith("DTEND") for line in got)


def test_exdates_are_sorted_and_keep_the_start_time() -> None:
    got = lines(render_feed(name="x", events=feed_events()))
    assert "EXDATE;TZID=America/New_York:20261224T200000,20261225T200000" in got


def test_all_day_milestone_uses_dates() -> None:
    got = lines(render_feed(name="x", events=[milestone()]))
    assert "DTSTART;VALUE=DATE:20261001" in got
    assert "DTEND;VALUE=DATE:20261002" in got
    assert not any("TZID" in line or line == "BEGIN:VTIMEZONE" for line in got)


def test_all_day_recurrence_uses_date_until_and_exdates() -> None:
    event = milestone(
        rrule="FREQ=YEARLY",
        until=datetime(2030, 10, 1, tzinfo=UTC),
        exdates=(datetime(2027, 10, 1),),
    )
    got = lines(render_feed(name="x", events=[event]))
    assert "RRULE:FREQ=YEARLY;UNTIL=20301001" in got
    assert "EXDATE;VALUE=DATE:20271001" in got


def test_uids_are_the_given_ones_and_never_invented() -> None:
    events = feed_events()
    calendar = icalendar.Calendar.from_ical(render_feed(name="x", events=events))
    assert [str(e["UID"]) for e in calendar.walk("VEVENT")] == sorted(e.uid for e in events)
    assert render_feed(name="x", events=events).count(b"\r\nUID:") == len(events)


def test_output_is_deterministic_and_ignores_input_order() -> None:
    events = feed_events()
    first = render_feed(name="x", events=events)
    assert render_feed(name="x", events=list(reversed(events))) == first
    assert render_feed(name="x", events=tuple(events[1:] + events[:1])) == first


def test_output_never_reads_the_clock() -> None:
    events = feed_events()
    with time_machine.travel(datetime(2031, 2, 3, 4, 5, 6, tzinfo=UTC), tick=False):
        later = render_feed(name="x", events=events)
    with time_machine.travel(datetime(2024, 1, 1, tzinfo=UTC), tick=False):
        earlier = render_feed(name="x", events=events)
    assert later == earlier
    stamps = {line for line in lines(later) if line.startswith("DTSTAMP")}
    assert stamps == {"DTSTAMP:20260815T093000Z"}


def test_dtstamp_follows_last_modified_in_utc() -> None:
    edited = datetime(2026, 8, 20, 8, 0, tzinfo=ZoneInfo("America/New_York"))
    got = lines(render_feed(name="x", events=[make_event(last_modified=edited)]))
    assert "DTSTAMP:20260820T120000Z" in got
    assert "LAST-MODIFIED:20260820T120000Z" in got


def test_crlf_line_endings_and_75_octet_folding() -> None:
    description = "Serenity, courage, wisdom — ünïcödé ✓ " * 20
    feed = render_feed(name="x", events=[make_event(description=description)])
    assert feed.endswith(b"\r\n")
    assert b"\n" not in feed.replace(b"\r\n", b"")
    assert b"\r" not in feed.replace(b"\r\n", b"")
    physical = feed.split(b"\r\n")
    assert max(len(line) for line in physical) <= 75
    assert any(line.startswith(b" ") for line in physical)  # something was folded
    for line in physical:
        line.decode("utf-8")  # folds never split a multi-byte character
    parsed = icalendar.Calendar.from_ical(feed)
    assert str(next(iter(parsed.walk("VEVENT")))["DESCRIPTION"]) == description


def test_one_vtimezone_per_zone_used() -> None:
    feed = render_feed(name="x", events=feed_events())
    calendar = icalendar.Calendar.from_ical(feed)
    tzids = [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")]
    assert tzids == ["America/New_York", "Europe/London"]


def test_vtimezones_use_rrules_not_rdates() -> None:
    feed = render_feed(name="x", events=feed_events())
    assert b"RDATE" not in feed
    calendar = icalendar.Calendar.from_ical(feed)
    for tz in calendar.walk("VTIMEZONE"):
        observances = tz.subcomponents
        assert sorted(o.name for o in observances) == ["DAYLIGHT", "STANDARD"]
        for observance in observances:
            assert "RRULE" in observance
            assert observance["DTSTART"].dt.year == 1970


def test_reference_year_defaults_to_the_latest_edit() -> None:
    events = feed_events()
    assert render_feed(name="x", events=events) == render_feed(
        name="x", events=events, reference_year=LAST_MODIFIED.year
    )


def test_new_york_vtimezone_text() -> None:
    text = vtimezone("America/New_York", reference_year=REFERENCE_YEAR).to_ical().decode()
    assert text.replace("\r\n", "\n") == (
        "BEGIN:VTIMEZONE\n"
        "TZID:America/New_York\n"
        "X-LIC-LOCATION:America/New_York\n"
        "BEGIN:STANDARD\n"
        "DTSTART:19701101T020000\n"
        "RRULE:FREQ=YEARLY;BYDAY=1SU;BYMONTH=11\n"
        "TZNAME:EST\n"
        "TZOFFSETFROM:-0400\n"
        "TZOFFSETTO:-0500\n"
        "END:STANDARD\n"
        "BEGIN:DAYLIGHT\n"
        "DTSTART:19700308T020000\n"
        "RRULE:FREQ=YEARLY;BYDAY=2SU;BYMONTH=3\n"
        "TZNAME:EDT\n"
        "TZOFFSETFROM:-0500\n"
        "TZOFFSETTO:-0400\n"
        "END:DAYLIGHT\n"
        "END:VTIMEZONE\n"
    )


@pytest.mark.parametrize(
    ("zone", "standard", "daylight"),
    [
        # London changes at 01:00 UTC: local 01:00 GMT in March, 02:00 BST in October.
        ("Europe/London", ("19701025T020000", "-1SU", 10), ("19700329T010000", "-1SU", 3)),
        ("Europe/Berlin", ("19701025T030000", "-1SU", 10), ("19700329T020000", "-1SU", 3)),
        ("Australia/Sydney", ("19700405T030000", "1SU", 4), ("19701004T020000", "1SU", 10)),
        ("Pacific/Auckland", ("19700405T030000", "1SU", 4), ("19700927T020000", "-1SU", 9)),
        # tzdata gives Dublin negative DST in winter; clients expect summer to be DAYLIGHT.
        ("Europe/Dublin", ("19701025T020000", "-1SU", 10), ("19700329T010000", "-1SU", 3)),
    ],
)
def test_observance_rules(
    zone: str, standard: tuple[str, str, int], daylight: tuple[str, str, int]
) -> None:
    component = vtimezone(zone, reference_year=REFERENCE_YEAR)
    found = {}
    for observance in component.subcomponents:
        rule = observance["RRULE"]
        found[observance.name] = (
            observance["DTSTART"].to_ical().decode(),
            rule["BYDAY"][0],
            rule["BYMONTH"][0],
        )
    assert found == {"STANDARD": standard, "DAYLIGHT": daylight}


@pytest.mark.parametrize(
    ("zone", "offset", "name"),
    [
        ("Asia/Kolkata", "+0530", "IST"),
        ("America/Phoenix", "-0700", "MST"),
        ("Pacific/Honolulu", "-1000", "HST"),
        ("America/Sao_Paulo", "-0300", "-03"),  # DST abolished in 2019
    ],
)
def test_zones_without_dst_get_one_standard_observance(zone: str, offset: str, name: str) -> None:
    text = vtimezone(zone, reference_year=REFERENCE_YEAR).to_ical().decode()
    assert text.replace("\r\n", "\n") == (
        "BEGIN:VTIMEZONE\n"
        f"TZID:{zone}\n"
        f"X-LIC-LOCATION:{zone}\n"
        "BEGIN:STANDARD\n"
        "DTSTART:19700101T000000\n"
        f"TZNAME:{name}\n"
        f"TZOFFSETFROM:{offset}\n"
        f"TZOFFSETTO:{offset}\n"
        "END:STANDARD\n"
        "END:VTIMEZONE\n"
    )


def zoneinfo_transitions(zone: str, years: range) -> list[tuple[datetime, timedelta, timedelta]]:
    """List zone's UTC-offset changes in years as (UTC instant, offset before, after)."""
    tz = ZoneInfo(zone)
    # Deliberately not service.calendar's scanner: hourly steps, then bisection to the second.
    start = datetime(years.start, 1, 1, tzinfo=UTC) - timedelta(hours=14)
    end = datetime(years.stop, 1, 1, tzinfo=UTC) + timedelta(hours=14)
    step = timedelta(hours=1)
    out = []
    moment, before = start, start.astimezone(tz).utcoffset()
    while moment < end:
        nxt = moment + step
        after = nxt.astimezone(tz).utcoffset()
        if after != before:
            lo, hi = moment, nxt
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if mid.astimezone(tz).utcoffset() == before:
                    lo = mid
                else:
                    hi = mid
            assert before is not None and after is not None
            if (hi + before).year in years:
                out.append((hi, before, after))
        moment, before = nxt, after
    return out


def vtimezone_transitions(
    component: icalendar.Timezone, years: range
) -> list[tuple[datetime, timedelta, timedelta]]:
    """Expand the serialized VTIMEZONE's observance RRULEs with dateutil, not icalendar."""
    text = component.to_ical().decode().replace("\r\n ", "")
    out = []
    for block in re.findall(r"BEGIN:(?:STANDARD|DAYLIGHT)\r\n(.*?)END:", text, re.DOTALL):
        props = dict(line.split(":", 1) for line in block.strip().split("\r\n"))
        if "RRULE" not in props:
            continue
        onset = datetime.strptime(props["DTSTART"], "%Y%m%dT%H%M%S")
        before = _parse_offset(props["TZOFFSETFROM"])
        after = _parse_offset(props["TZOFFSETTO"])
        rule = rrulestr(props["RRULE"], dtstart=onset)
        first = datetime(years.start, 1, 1)
        last = datetime(years.stop, 1, 1)
        for local in rule.between(first, last, inc=True):
            out.append(((local - before).replace(tzinfo=UTC), before, after))
    return sorted(out)


def _parse_offset(text: str) -> timedelta:
    sign = -1 if text[0] == "-" else 1
    return sign * timedelta(hours=int(text[1:3]), minutes=int(text[3:5]))


ZONES = [
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Sao_Paulo",
    "Pacific/Auckland",
    "Europe/Dublin",
    "America/Havana",
    "Africa/Cairo",
    "Pacific/Chatham",
    "Australia/Lord_Howe",
]


@pytest.mark.parametrize("zone", ZONES)
def test_vtimezone_rules_match_zoneinfo(zone: str) -> None:
    """Every change zoneinfo knows in [reference-1, reference+3] is one the VTIMEZONE makes."""
    years = range(REFERENCE_YEAR - 1, REFERENCE_YEAR + 4)
    component = vtimezone(zone, reference_year=REFERENCE_YEAR)
    expected = zoneinfo_transitions(zone, years)
    assert vtimezone_transitions(component, years) == expected
    if not expected:
        (observance,) = component.subcomponents
        offset = datetime(REFERENCE_YEAR, 1, 1, tzinfo=ZoneInfo(zone)).utcoffset()
        assert observance["TZOFFSETFROM"].td == observance["TZOFFSETTO"].td == offset
    else:
        assert len(expected) == 2 * len(years)
    # And between changes, the offsets the observances claim are zoneinfo's.
    for at, before, after in expected:
        assert (at - timedelta(seconds=1)).astimezone(ZoneInfo(zone)).utcoffset() == before
        assert at.astimezone(ZoneInfo(zone)).utcoffset() == after


@pytest.mark.parametrize("zone", ZONES)
def test_vtimezone_is_stable_across_reference_years(zone: str) -> None:
    """The current rules have held since 2025: neighbouring reference years agree."""
    first = vtimezone(zone, reference_year=REFERENCE_YEAR).to_ical()
    assert vtimezone(zone, reference_year=REFERENCE_YEAR + 1).to_ical() == first


@pytest.mark.parametrize(
    ("zone", "byday"),
    [
        ("Asia/Jerusalem", {"FR", "-1SU"}),  # Friday before the last Sunday of March
        ("America/Santiago", {"SU"}),  # first Sunday on or after the 2nd (tzdata's Sun>=2)
        ("America/Nuuk", {"SA", "-1SU"}),  # Saturday before the last Sunday of March
    ],
)
def test_weekday_on_or_after_rules_use_bymonthday(zone: str, byday: set[str]) -> None:
    """Rules no nth/last weekday expresses are written BYDAY=xx;BYMONTHDAY=d..d+6."""
    years = range(REFERENCE_YEAR - 1, REFERENCE_YEAR + 4)
    component = vtimezone(zone, reference_year=REFERENCE_YEAR)
    assert {o["RRULE"]["BYDAY"][0] for o in component.subcomponents} == byday
    assert vtimezone_transitions(component, years) == zoneinfo_transitions(zone, years)


def test_zones_no_yearly_rule_describes_get_one_observance_per_change() -> None:
    """Casablanca follows Ramadan: no RRULE, no RDATE, a single DTSTART per change."""
    component = vtimezone("Africa/Casablanca", reference_year=REFERENCE_YEAR)
    text = component.to_ical()
    assert b"RRULE" not in text and b"RDATE" not in text
    assert len(component.subcomponents) > 2  # tests/feeds/test_vtimezone_fallback.py: more


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"last_modified": datetime(2026, 8, 15)}, "last_modified must be timezone-aware"),
        ({"start": datetime(2026, 9, 3, 19, tzinfo=UTC)}, "naive local wall time"),
        ({"zone": None}, "needs an IANA zone"),
        ({"exdates": (datetime(2026, 11, 26, 18, 0),)}, "EXDATE"),
        ({"rrule": None}, "need an rrule"),
        ({"rrule": "FREQ=WEEKLY;COUNT=3", "until": LAST_MODIFIED}, "already bounded"),
        ({"status": "MAYBE"}, "unknown status"),
        ({"duration": timedelta(0)}, "duration must be positive"),
        ({"uid": ""}, "uid"),
    ],
)
def test_invalid_events_raise(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_feed(name="x", events=[make_event(**overrides)])


def test_all_day_contract_is_enforced() -> None:
    with pytest.raises(ValueError, match="whole number of days"):
        render_feed(name="x", events=[milestone(duration=timedelta(hours=3))])
    with pytest.raises(ValueError, match="takes no zone"):
        render_feed(name="x", events=[milestone(zone="Europe/London")])


def test_duplicate_uids_raise() -> None:
    event = make_event()
    with pytest.raises(ValueError, match="unique"):
        render_feed(name="x", events=[event, dataclasses.replace(event, summary="Other")])
