"""The 12 zones no nth/last-weekday rule describes still get VTIMEZONEs every parser reads right."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
from dateutil.rrule import rrulestr

from service.calendar import FeedEvent, render_feed
from service.vtimezone import vtimezone
from tests.feeds.conftest import ExpandWithIcalJs
from tests.feeds.test_calendar_render import zoneinfo_transitions

FORMERLY_FAILING = (
    "Asia/Jerusalem",
    "Israel",
    "Asia/Tel_Aviv",
    "America/Santiago",
    "Chile/Continental",
    "America/Nuuk",
    "America/Godthab",
    "America/Scoresbysund",
    "Asia/Gaza",
    "Asia/Hebron",
    "Africa/Casablanca",
    "Africa/El_Aaiun",
)
START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2031, 1, 1, tzinfo=UTC)
EDITED = datetime(2026, 1, 1, 12, tzinfo=UTC)
NOON = time(12, 0)


def _offset(text: str) -> timedelta:
    sign = -1 if text[0] == "-" else 1
    return sign * timedelta(hours=int(text[1:3]), minutes=int(text[3:5]))


def transitions(component: icalendar.Timezone, years: range) -> list[tuple]:
    """Expand every observance (RRULE or single DTSTART) of the serialized VTIMEZONE."""
    out = []
    text = component.to_ical().decode().replace("\r\n ", "")
    for block in text.split("BEGIN:")[2:]:
        props = dict(line.split(":", 1) for line in block.split("\r\n")[1:] if ":" in line)
        if "DTSTART" not in props:
            continue
        onset = datetime.strptime(props["DTSTART"], "%Y%m%dT%H%M%S")
        before, after = _offset(props["TZOFFSETFROM"]), _offset(props["TZOFFSETTO"])
        if before == after:
            continue  # the anchor observance: no change
        locals_ = (
            rrulestr(props["RRULE"], dtstart=onset).between(
                datetime(years.start, 1, 1), datetime(years.stop, 1, 1), inc=True
            )
            if "RRULE" in props
            else [onset]
        )
        out += [((local - before).replace(tzinfo=UTC), before, after) for local in locals_]
    return sorted(t for t in out if (t[0] + t[1]).year in years)


@pytest.mark.parametrize("zone", FORMERLY_FAILING)
def test_vtimezone_changes_are_zoneinfos(zone: str) -> None:
    """Each change the VTIMEZONE makes in 2026–2030 is one zoneinfo makes, to the second."""
    years = range(2026, 2031)
    component = vtimezone(zone, reference_year=2026, years=range(2025, 2037))
    assert b"RDATE" not in component.to_ical()
    assert transitions(component, years) == zoneinfo_transitions(zone, years)


@pytest.mark.parametrize("zone", FORMERLY_FAILING)
def test_explicit_observances_have_a_single_dtstart(zone: str) -> None:
    component = vtimezone(zone, reference_year=2026)
    for observance in component.subcomponents:
        assert "RDATE" not in observance
        assert isinstance(observance["DTSTART"].dt, datetime)


def _noon(zone: str) -> FeedEvent:
    return FeedEvent(
        uid=f"noon-{zone}",
        summary="Noon",
        start=datetime.combine(START.date(), NOON),
        zone=zone,
        duration=timedelta(minutes=30),
        rrule="FREQ=DAILY",
        exdates=(),
        until=None,
        sequence=0,
        last_modified=EDITED,
        created=None,
        description=None,
        location=None,
        url=None,
        alarm_minutes=None,
        status=None,
    )


def _expected_noons(zone: str) -> list[str]:
    tz, day, out = ZoneInfo(zone), START.date(), []
    while day < END.date():
        at = datetime.combine(day, NOON, tzinfo=tz).astimezone(UTC)
        if START <= at < END:
            out.append(at.strftime("%Y-%m-%dT%H:%M:%SZ"))
        day += timedelta(days=1)
    return out


def test_icaljs_reads_every_day_of_five_years_right(icaljs: ExpandWithIcalJs) -> None:
    """A daily noon event in each zone: ical.js finds zoneinfo's UTC instant every day."""
    feed = render_feed(name="Zones", events=[_noon(z) for z in FORMERLY_FAILING])
    got = icaljs(feed, START, END)
    for zone in FORMERLY_FAILING:
        assert got[f"noon-{zone}"] == _expected_noons(zone), zone


def test_a_feed_renders_in_every_iana_zone() -> None:
    """No zone makes render_feed raise (a client's feed answers 200, never 500)."""
    from service.schedule import _zone_names

    zones = sorted(_zone_names())
    feed = render_feed(name="x", events=[_noon(z) for z in zones], reference_year=2026)
    tzids = re.findall(rb"\r\nBEGIN:VTIMEZONE\r\nTZID:([^\r]+)\r\n", feed)
    assert sorted(t.decode() for t in tzids) == zones


def test_gaza_is_spelled_out_because_its_rule_breaks_in_2036() -> None:
    """Its Saturday rule holds until Ramadan moves the October change (2036): no RRULE."""
    text = vtimezone("Asia/Gaza", reference_year=2026).to_ical()
    assert b"RRULE" not in text
    assert b"DTSTART:20361018T020000" in text  # inside the default 10-year span
