"""Expand rendered feeds with ical.js, vobject and recurring_ical_events and compare instants."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest
import recurring_ical_events
import vobject
import vobject.icalendar
from dateutil.tz.tz import _tzicalvtz

from service.calendar import FeedEvent, render_feed

# The `icaljs` fixture (tests/feeds/conftest.py): feed bytes, window -> {uid: [instants]}.
ExpandWithIcalJs = Callable[[bytes, datetime, datetime], dict[str, list[str]]]

WINDOW_START = datetime(2026, 9, 1, tzinfo=UTC)
WINDOW_END = datetime(2027, 9, 1, tzinfo=UTC)
LAST_MODIFIED = datetime(2026, 8, 15, 9, 30, tzinfo=UTC)

ZONES = {
    "ny": "America/New_York",
    "lon": "Europe/London",
    "syd": "Australia/Sydney",
    "kol": "Asia/Kolkata",
}
# The DST changes inside the window, as local dates; every one of them is a Sunday.
TRANSITION_DATES = {
    "America/New_York": {date(2026, 11, 1), date(2027, 3, 14)},
    "Europe/London": {date(2026, 10, 25), date(2027, 3, 28)},
    "Australia/Sydney": {date(2026, 10, 4), date(2027, 4, 4)},
    "Asia/Kolkata": set(),
}
WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


@dataclass(frozen=True)
class Spec:
    """A meeting or commitment as the client entered it: a local wall time and a cadence."""

    uid: str
    zone: str
    first: date
    wall: time
    freq: str | None  # "WEEKLY" (on first's weekday), "DAILY" or None for a one-off
    exdates: tuple[date, ...] = ()
    until: datetime | None = None

    @property
    def rrule(self) -> str | None:
        if self.freq == "WEEKLY":
            return f"FREQ=WEEKLY;BYDAY={WEEKDAYS[self.first.weekday()]}"
        return f"FREQ={self.freq}" if self.freq else None

    def local_times(self) -> list[datetime]:
        """Return every local wall time of the rule that can start inside the window."""
        if self.freq is None:
            return [datetime.combine(self.first, self.wall)]
        step = timedelta(days=7 if self.freq == "WEEKLY" else 1)
        out, day = [], self.first
        while day <= WINDOW_END.date() + timedelta(days=1):
            if day not in self.exdates:
                out.append(datetime.combine(day, self.wall))
            day += step
        return out


def _specs() -> list[Spec]:
    specs = []
    for key, zone in ZONES.items():
        specs += [
            # Thursday 19:00 meeting, cancelled on US Thanksgiving and one spring week.
            Spec(
                f"{key}-thu-1900",
                zone,
                date(2026, 9, 3),
                time(19, 0),
                "WEEKLY",
                (date(2026, 11, 26), date(2027, 3, 18)),
            ),
            # Sunday small-hours meetings: skipped or repeated on the DST Sundays.
            Spec(f"{key}-sun-0130", zone, date(2026, 9, 6), time(1, 30), "WEEKLY"),
            Spec(f"{key}-sun-0230", zone, date(2026, 9, 6), time(2, 30), "WEEKLY"),
            # Daily 20:00 commitment with holiday exceptions.
            Spec(
                f"{key}-daily-2000",
                zone,
                date(2026, 9, 1),
                time(20, 0),
                "DAILY",
                (date(2026, 12, 25), date(2027, 1, 1)),
            ),
        ]
    specs += [
        # Started long before the window: the expansion must carry across earlier DST changes.
        Spec(
            "lon-tue-1900-old",
            "Europe/London",
            date(2025, 1, 7),
            time(19, 0),
            "WEEKLY",
            (date(2026, 10, 27),),
        ),
        # Ends mid-window: UNTIL is written in UTC.
        Spec(
            "ny-daily-0700-until",
            "America/New_York",
            date(2026, 9, 1),
            time(7, 0),
            "DAILY",
            until=datetime(2027, 4, 30, 11, 0, tzinfo=UTC),
        ),
        # One-off events at an ambiguous and at a skipped local time.
        Spec("ny-once-0130", "America/New_York", date(2026, 11, 1), time(1, 30), None),
        Spec("syd-once-0230", "Australia/Sydney", date(2026, 10, 4), time(2, 30), None),
    ]
    return specs


SPECS = _specs()
# The events whose wall time is skipped or repeated on some DST Sunday in their zone.
EDGE_UIDS = frozenset(
    spec.uid for spec in SPECS if spec.zone != "Asia/Kolkata" and spec.wall < time(3, 0)
)
MILESTONE = FeedEvent(
    uid="milestone-1y",
    summary="One year",
    start=date(2026, 10, 1),
    zone=None,
    duration=timedelta(days=1),
    rrule=None,
    exdates=(),
    until=None,
    sequence=0,
    last_modified=LAST_MODIFIED,
    created=None,
    description=None,
    location=None,
    url=None,
    alarm_minutes=None,
    status=None,
)


def _feed_event(spec: Spec) -> FeedEvent:
    return FeedEvent(
        uid=spec.uid,
        summary=spec.uid,
        start=datetime.combine(spec.first, spec.wall),
        zone=spec.zone,
        duration=timedelta(hours=1),
        rrule=spec.rrule,
        exdates=tuple(datetime.combine(d, spec.wall) for d in spec.exdates),
        until=spec.until,
        sequence=1,
        last_modified=LAST_MODIFIED,
        created=None,
        description=None,
        location=None,
        url=None,
        alarm_minutes=None,
        status=None,
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _kind(local: datetime, zone: str) -> str:
    """Classify a naive local time as "regular", "gap" (skipped) or "ambiguous" (repeated)."""
    tz = ZoneInfo(zone)
    first, second = local.replace(tzinfo=tz, fold=0), local.replace(tzinfo=tz, fold=1)
    if first.utcoffset() == second.utcoffset():
        return "regular"
    round_trip = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    return "ambiguous" if round_trip == local else "gap"


def _instant(local: datetime, zone: str, *, gap_fold: int = 0, ambiguous_fold: int = 0) -> datetime:
    """Map local wall time to UTC; fold=0 (the service policy) moves gap times forward and
    takes the first of two repeated instants, fold=1 does the opposite."""
    fold = {"gap": gap_fold, "ambiguous": ambiguous_fold, "regular": 0}[_kind(local, zone)]
    return local.replace(tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)


def _expected(*, gap_fold: int = 0, ambiguous_fold: int = 0) -> dict[str, list[str]]:
    """Compute each event's instants in the window independently of service.calendar."""
    out: dict[str, list[str]] = {MILESTONE.uid: ["2026-10-01"]}
    for spec in SPECS:
        instants = []
        for local in spec.local_times():
            at = _instant(local, spec.zone, gap_fold=gap_fold, ambiguous_fold=ambiguous_fold)
            if WINDOW_START <= at < WINDOW_END and (spec.until is None or at <= spec.until):
                instants.append(_iso(at))
        out[spec.uid] = sorted(instants)
    return out


# What each parser does with a local time that is skipped ("gap") or repeated ("ambiguous") on a
# DST Sunday, as the fold zoneinfo would need to give the same instant. Fold 0 is the service
# policy (and RFC 5545 3.3.5's); every other occurrence must match the policy exactly.
PARSER_FOLDS = {
    "ical.js": {"gap_fold": 1, "ambiguous_fold": 1},
    "vobject": {"gap_fold": 1, "ambiguous_fold": 0},
    "recurring_ical_events": {"gap_fold": 0, "ambiguous_fold": 0},
}


@pytest.fixture(scope="module")
def feed() -> bytes:
    return render_feed(name="Cross-parser", events=[*map(_feed_event, SPECS), MILESTONE])


def _tzids(ics: bytes) -> list[str]:
    calendar = icalendar.Calendar.from_ical(ics)
    return [str(vtz["TZID"]) for vtz in calendar.walk("VTIMEZONE")]


def expand_with_vobject(ics: bytes) -> dict[str, list[str]]:
    """Expand ics with vobject, whose tzinfo comes from the feed's own VTIMEZONEs."""
    # vobject keeps a process-wide TZID -> tzinfo registry, never overwrites an entry, and falls
    # back to pytz for unknown names; drop this feed's TZIDs so readOne registers *its* zones.
    registry: dict = vobject.icalendar.__dict__["__tzidMap"]
    for tzid in _tzids(ics):
        registry.pop(tzid, None)
    calendar = vobject.readOne(ics.decode("utf-8"))
    out: dict[str, list[str]] = {}
    for vevent in calendar.vevent_list:
        start = vevent.dtstart.value
        if not isinstance(start, datetime):
            out[vevent.uid.value] = [start.isoformat()]
            continue
        tzid = vevent.dtstart.params["X-VOBJ-ORIGINAL-TZID"][0]
        # Prove the zone is the VTIMEZONE-built dateutil tzical zone, not pytz or zoneinfo.
        assert isinstance(start.tzinfo, _tzicalvtz), (vevent.uid.value, start.tzinfo)
        assert registry[tzid] is start.tzinfo
        rules = vevent.getrruleset(addRDate=True)
        moments = [start] if rules is None else rules.between(WINDOW_START, WINDOW_END, inc=True)
        out[vevent.uid.value] = sorted(
            _iso(m) for m in moments if WINDOW_START <= m.astimezone(UTC) < WINDOW_END
        )
    return out


def expand_with_recurring_ical_events(ics: bytes) -> dict[str, list[str]]:
    """Expand ics with recurring_ical_events (icalendar resolves IANA TZIDs with zoneinfo)."""
    calendar = icalendar.Calendar.from_ical(ics)
    out: dict[str, list[str]] = {str(e["UID"]): [] for e in calendar.walk("VEVENT")}
    for occurrence in recurring_ical_events.of(calendar).between(WINDOW_START, WINDOW_END):
        start = occurrence.start
        if isinstance(start, datetime):
            if start.astimezone(UTC) < WINDOW_START:
                continue  # between() also returns events overlapping the window's start
            out[str(occurrence["UID"])].append(_iso(start))
        else:
            out[str(occurrence["UID"])].append(start.isoformat())
    return {uid: sorted(instants) for uid, instants in out.items()}


@pytest.fixture(scope="module")
def icaljs_expansion(feed: bytes, icaljs: ExpandWithIcalJs) -> dict[str, list[str]]:
    return icaljs(feed, WINDOW_START, WINDOW_END)  # one node process for the whole feed


@pytest.fixture(scope="module")
def python_expansions(feed: bytes) -> dict[str, dict[str, list[str]]]:
    return {
        "vobject": expand_with_vobject(feed),
        "recurring_ical_events": expand_with_recurring_ical_events(feed),
    }


def _expansion(parser: str, request: pytest.FixtureRequest) -> dict[str, list[str]]:
    # Only the ical.js case needs node, so only it may skip on a machine without it.
    if parser == "ical.js":
        return request.getfixturevalue("icaljs_expansion")
    return request.getfixturevalue("python_expansions")[parser]


def _on_transition_date(uid: str, instant: str) -> bool:
    spec = next(s for s in SPECS if s.uid == uid)
    moment = datetime.strptime(instant, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    local_day = moment.astimezone(ZoneInfo(spec.zone)).date()
    return local_day in TRANSITION_DATES[spec.zone]


def test_expectations_cover_the_dst_edges() -> None:
    """Guard the fixture itself: the window holds skipped and repeated local times."""
    kinds = {(spec.zone, _kind(local, spec.zone)) for spec in SPECS for local in spec.local_times()}
    for zone in ("America/New_York", "Europe/London", "Australia/Sydney"):
        assert {(zone, "gap"), (zone, "ambiguous")} <= kinds
    assert ("Asia/Kolkata", "gap") not in kinds
    assert ("Asia/Kolkata", "ambiguous") not in kinds
    # Every EXDATE falls on an occurrence, so each one really removes something.
    for spec in SPECS:
        step = 7 if spec.freq == "WEEKLY" else 1
        assert all((d - spec.first).days % step == 0 for d in spec.exdates), spec.uid


@pytest.mark.parametrize("parser", sorted(PARSER_FOLDS))
def test_every_regular_occurrence_matches_the_policy(
    parser: str, request: pytest.FixtureRequest
) -> None:
    """Apart from the skipped/repeated local times, all parsers give the policy's instants."""
    expected = _expected()
    got = _expansion(parser, request)
    assert sorted(got) == sorted(expected)
    for uid, instants in expected.items():
        if uid not in EDGE_UIDS:
            assert got[uid] == instants, uid
            continue
        missing = set(instants) - set(got[uid])
        extra = set(got[uid]) - set(instants)
        assert all(_on_transition_date(uid, i) for i in missing | extra), (uid, missing, extra)
        assert len(got[uid]) == len(instants), uid  # an edge time is shifted, never dropped


@pytest.mark.parametrize("parser", sorted(PARSER_FOLDS))
def test_each_parser_reads_dst_edge_times_as_documented(
    parser: str, request: pytest.FixtureRequest
) -> None:
    """Pin each parser's reading of skipped and repeated local times, whole feed included."""
    assert _expansion(parser, request) == _expected(**PARSER_FOLDS[parser])


# Where each parser leaves the service policy: (uid, local wall time, what it does).
DEVIATIONS = {
    # ical.js reads every edge time with the offset in force *after* the change: a repeated
    # time becomes the later (standard-time) instant, a skipped one lands an hour earlier.
    "ical.js": {
        ("ny-once-0130", "2026-11-01 01:30", "second instant"),
        ("ny-sun-0130", "2026-11-01 01:30", "second instant"),
        ("lon-sun-0130", "2026-10-25 01:30", "second instant"),
        ("syd-sun-0230", "2027-04-04 02:30", "second instant"),
        ("ny-sun-0230", "2027-03-14 02:30", "skipped time moved back"),
        ("lon-sun-0130", "2027-03-28 01:30", "skipped time moved back"),
        ("syd-sun-0230", "2026-10-04 02:30", "skipped time moved back"),
        ("syd-once-0230", "2026-10-04 02:30", "skipped time moved back"),
    },
    # vobject (dateutil tzical) takes the first repeated instant like the policy, but reads a
    # skipped time with the post-change offset: an hour *earlier* than the policy.
    "vobject": {
        ("ny-sun-0230", "2027-03-14 02:30", "skipped time moved back"),
        ("lon-sun-0130", "2027-03-28 01:30", "skipped time moved back"),
        ("syd-sun-0230", "2026-10-04 02:30", "skipped time moved back"),
        ("syd-once-0230", "2026-10-04 02:30", "skipped time moved back"),
    },
    # recurring_ical_events uses zoneinfo with fold=0: exactly the policy.
    "recurring_ical_events": set(),
}


@pytest.mark.parametrize("parser", sorted(PARSER_FOLDS))
def test_deviations_are_exactly_the_documented_edge_times(parser: str) -> None:
    """Spell out, occurrence by occurrence, where each parser's edge reading differs."""
    folds = PARSER_FOLDS[parser]
    found = set()
    for spec in SPECS:
        for local in spec.local_times():
            policy = _instant(local, spec.zone)
            theirs = _instant(local, spec.zone, **folds)
            if policy != theirs and WINDOW_START <= policy < WINDOW_END:
                assert local.date() in TRANSITION_DATES[spec.zone]
                what = "second instant" if theirs > policy else "skipped time moved back"
                found.add((spec.uid, f"{local:%Y-%m-%d %H:%M}", what))
    assert found == DEVIATIONS[parser]


def test_vobject_reads_the_embedded_vtimezone(feed: bytes) -> None:
    """Shift the feed's New York summer offset: vobject's instants must follow the VTIMEZONE."""
    tampered = re.sub(
        rb"(TZID:America/New_York.*?BEGIN:DAYLIGHT.*?TZOFFSETTO:)-0400",
        rb"\g<1>-0300",
        feed,
        count=1,
        flags=re.DOTALL,
    )
    assert tampered != feed
    honest, bent = expand_with_vobject(feed), expand_with_vobject(tampered)
    summer = "2027-04-01T23:00:00Z"  # Thu 19:00 EDT
    assert summer in honest["ny-thu-1900"]
    assert "2027-04-01T22:00:00Z" in bent["ny-thu-1900"]
    # Winter occurrences (EST, untouched observance) are unchanged.
    winter = [i for i in honest["ny-thu-1900"] if i.startswith(("2026-12", "2027-01"))]
    assert winter and set(winter) <= set(bent["ny-thu-1900"])
    # The other zones are untouched.
    assert honest["lon-thu-1900"] == bent["lon-thu-1900"]


def _rdate_style(feed: bytes) -> bytes:
    """Swap our VTIMEZONEs for icalendar's own RDATE-list ones from add_missing_timezones()."""
    calendar = icalendar.Calendar.from_ical(feed)
    calendar.subcomponents = [c for c in calendar.subcomponents if c.name != "VTIMEZONE"]
    calendar.add_missing_timezones()
    return calendar.to_ical()


def _implied_offset(instant: str, wall: time) -> timedelta:
    """Return the UTC offset under which instant shows wall on the clock (in -12h..+14h)."""
    at = datetime.strptime(instant, "%Y-%m-%dT%H:%M:%SZ")
    seconds = (wall.hour * 3600 + wall.minute * 60) - (at.hour * 3600 + at.minute * 60)
    seconds %= 86_400
    return timedelta(seconds=seconds - 86_400 if seconds > 14 * 3600 else seconds)


# The one offset ical.js applies all year once it has misread icalendar's RDATE-list zones.
FROZEN_OFFSETS = {
    "America/New_York": timedelta(hours=-5),
    "Europe/London": timedelta(hours=1),
    "Australia/Sydney": timedelta(hours=10),
    "Asia/Kolkata": timedelta(hours=5, minutes=30),
}


def test_rdate_style_vtimezones_mislead_icaljs(feed: bytes, icaljs: ExpandWithIcalJs) -> None:
    """The harness catches the bug this module avoids: ical.js misreads RDATE-list VTIMEZONEs.

    ical.js ignores an observance's DTSTART when it has RDATEs and reads only the first value
    of each RDATE line; with icalendar's one-line lists from 1970, every zone freezes on the
    offset of its last ~1971 change, so half the year's occurrences are an hour off.
    """
    rdate_feed = _rdate_style(feed)
    assert b"RDATE" in rdate_feed and b"RDATE" not in feed
    got = icaljs(rdate_feed, WINDOW_START, WINDOW_END)
    expected = _expected(**PARSER_FOLDS["ical.js"])
    wrong = {zone: 0 for zone in ZONES.values()}
    for spec in SPECS:
        offsets = {_implied_offset(i, spec.wall) for i in got[spec.uid]}
        assert offsets == {FROZEN_OFFSETS[spec.zone]}, (spec.uid, offsets)
        wrong[spec.zone] += len(set(expected[spec.uid]) - set(got[spec.uid]))
    assert got["kol-daily-2000"] == expected["kol-daily-2000"]  # no DST, nothing to misread
    assert wrong["Asia/Kolkata"] == 0
    for zone in ("America/New_York", "Europe/London", "Australia/Sydney"):
        assert wrong[zone] > 100, (zone, wrong)
