"""Render clients' subscribable iCalendar feeds that every major calendar parser reads alike."""

from __future__ import annotations

import calendar as _stdcal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import icalendar

__all__ = ["FeedEvent", "render_feed", "vtimezone"]

_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_STATUSES = frozenset({"CONFIRMED", "CANCELLED", "TENTATIVE"})
# The observances are anchored here: far enough back that no event predates them, and the
# conventional anchor year of the VTIMEZONEs shipped by Mozilla, Apple and tzurl.
_ANCHOR_YEAR = 1970
# Years after reference_year+1 checked against the derived rules: the weekday a month starts
# on takes every value within 12 consecutive years, so "Sun>=2" or "last" vs "4th" show.
_LOOK_AHEAD_YEARS = 12


@dataclass(frozen=True)
class FeedEvent:
    """One VEVENT of a feed, in the wall-clock terms the client thinks in."""

    uid: str
    summary: str
    start: datetime | date
    zone: str | None
    duration: timedelta
    rrule: str | None
    exdates: tuple[datetime, ...]
    until: datetime | None
    sequence: int
    last_modified: datetime
    created: datetime | None
    description: str | None
    location: str | None
    url: str | None
    alarm_minutes: int | None
    status: str | None
    categories: tuple[str, ...] = ()

    @property
    def all_day(self) -> bool:
        """Tell whether this is a date-valued (all-day) event."""
        return not isinstance(self.start, datetime)


@dataclass(frozen=True)
class _Transition:
    at: datetime  # aware UTC instant of the change
    offset_before: timedelta
    offset_after: timedelta
    name_after: str

    @property
    def local_before(self) -> datetime:
        # RFC 5545 3.6.5: an observance's onset is the local time *before* the change.
        return (self.at + self.offset_before).replace(tzinfo=None)


@dataclass(frozen=True)
class _Rule:
    month: int
    weekday: int  # Monday == 0
    ordinal: int  # 1..4, or -1 for "last"
    wall: time  # local time before the change
    offset_before: timedelta
    offset_after: timedelta
    name: str

    @property
    def byday(self) -> str:
        return f"{self.ordinal}{_WEEKDAYS[self.weekday]}"

    def onset(self, year: int) -> datetime:
        """Return the naive local onset of this rule in year."""
        if self.ordinal > 0:
            first = date(year, self.month, 1)
            day = 1 + (self.weekday - first.weekday()) % 7 + 7 * (self.ordinal - 1)
        else:
            last_day = _stdcal.monthrange(year, self.month)[1]
            last = date(year, self.month, last_day)
            day = last_day - (last.weekday() - self.weekday) % 7
        return datetime.combine(date(year, self.month, day), self.wall)

    def instant(self, year: int) -> datetime:
        """Return the UTC instant of this rule's change in year."""
        return (self.onset(year) - self.offset_before).replace(tzinfo=UTC)


def _offset_at(tz: ZoneInfo, instant: datetime) -> timedelta:
    offset = instant.astimezone(tz).utcoffset()
    assert offset is not None  # a ZoneInfo always knows its offset
    return offset


def _transitions(tz: ZoneInfo, year: int) -> list[_Transition]:
    """Return the UTC-offset changes whose local onset falls in year."""
    # Scan a day either side of the UTC year so a change near New Year is attributed by its
    # local date. Daily steps suffice (no zone changes its offset twice in a day) and each
    # change is then bisected down to the second.
    cursor = datetime(year - 1, 12, 31, tzinfo=UTC)
    end = datetime(year + 1, 1, 2, tzinfo=UTC)
    step = 86_400
    found: list[_Transition] = []
    before = _offset_at(tz, cursor)
    while cursor < end:
        nxt = cursor + timedelta(seconds=step)
        after = _offset_at(tz, nxt)
        if after != before:
            lo, hi = 0, step  # seconds after cursor: offset(lo) == before, offset(hi) == after
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if _offset_at(tz, cursor + timedelta(seconds=mid)) == before:
                    lo = mid
                else:
                    hi = mid
            at = cursor + timedelta(seconds=hi)
            transition = _Transition(at, before, after, at.astimezone(tz).tzname() or "")
            if transition.local_before.year == year:
                found.append(transition)
        before = after
        cursor = nxt
    return found


def _ordinals(day: date) -> set[int]:
    """Return the BYDAY ordinals (1..4 and -1) that describe day within its month."""
    candidates = set()
    nth = (day.day - 1) // 7 + 1
    if nth <= 4:
        candidates.add(nth)
    if day.day + 7 > _stdcal.monthrange(day.year, day.month)[1]:
        candidates.add(-1)
    return candidates


def _shape(t: _Transition) -> tuple[int, int, time, timedelta, timedelta]:
    local = t.local_before
    return (local.month, local.weekday(), local.time(), t.offset_before, t.offset_after)


@lru_cache(maxsize=256)
def _rules(zone: str, reference_year: int) -> tuple[_Rule, ...]:
    """Derive the yearly BYMONTH/BYDAY rules of zone's transitions in reference_year."""
    tz = ZoneInfo(zone)
    first = _transitions(tz, reference_year)
    second = _transitions(tz, reference_year + 1)
    if not first and not second:
        return ()
    if len(first) != 2 or len(second) != 2:
        raise ValueError(
            f"{zone}: expected 0 or 2 UTC-offset changes a year in {reference_year} and "
            f"{reference_year + 1}, found {len(first)} and {len(second)}; its rules cannot be "
            "written as a yearly STANDARD/DAYLIGHT pair"
        )
    shapes = [_shape(t) for t in first]
    if [_shape(t) for t in second] != shapes:
        raise ValueError(
            f"{zone}: the changes of {reference_year} are not repeated the same way in "
            f"{reference_year + 1}"
        )
    # Two years cannot tell "1st Sunday" from "Sunday on or after the 2nd" (tzdata's Sun>=2),
    # nor "4th" from "last": keep checking zoneinfo's projection of the current rules until
    # every weekday has started a month. A year whose changes differ in shape is an announced
    # rule change, not a contradiction, so it ends the look-ahead instead of failing.
    years = [first, second]
    for year in range(reference_year + 2, reference_year + 2 + _LOOK_AHEAD_YEARS):
        later = _transitions(tz, year)
        if [_shape(t) for t in later] != shapes:
            break
        years.append(later)

    rules = []
    for index, (month, weekday, wall, offset_before, offset_after) in enumerate(shapes):
        onsets = [changes[index].local_before.date() for changes in years]
        ordinals = set.intersection(*(_ordinals(day) for day in onsets))
        if not ordinals:
            raise ValueError(
                f"{zone}: its changes on {', '.join(map(str, onsets[:4]))}, ... are not the same "
                "nth or last weekday of the month every year; cannot express them as BYDAY"
            )
        # Prefer "2nd" over "last" when both fit every year checked, as tzdata itself would.
        ordinal = min(ordinals, key=lambda n: (n < 0, n))
        rule = _Rule(
            month, weekday, ordinal, wall, offset_before, offset_after, first[index].name_after
        )
        for changes in years:
            change = changes[index]
            if rule.instant(change.local_before.year) != change.at:
                raise ValueError(f"{zone}: derived rule {rule.byday} misses {change.at}")
        rules.append(rule)
    if rules[0].offset_after == rules[1].offset_after:
        raise ValueError(f"{zone}: both yearly changes lead to the same UTC offset")
    return tuple(rules)


def vtimezone(zone: str, *, reference_year: int) -> icalendar.Timezone:
    """Build an RRULE-style VTIMEZONE for zone from its rules in force in reference_year."""
    tz = ZoneInfo(zone)
    component = icalendar.Timezone()
    component.add("tzid", zone)
    # Thunderbird (libical) and ical.js-based clients use this to recognise the zone.
    component.add("x-lic-location", zone)
    rules = _rules(zone, reference_year)
    if not rules:
        # No DST: a single STANDARD observance with the offset in force in reference_year.
        midyear = datetime(reference_year, 7, 1, tzinfo=UTC).astimezone(tz)
        offset = midyear.utcoffset()
        observance = icalendar.TimezoneStandard()
        observance.add("dtstart", datetime(_ANCHOR_YEAR, 1, 1))
        observance.add("tzoffsetfrom", offset)
        observance.add("tzoffsetto", offset)
        observance.add("tzname", midyear.tzname())
        component.add_component(observance)
        return component
    # Summer time is the change to the larger offset; this also keeps zones with negative
    # DST in tzdata (Europe/Dublin's winter "GMT") conventional for clients.
    daylight = max(rules, key=lambda r: r.offset_after)
    for rule in sorted(rules, key=lambda r: r is daylight):
        observance = (
            icalendar.TimezoneDaylight() if rule is daylight else icalendar.TimezoneStandard()
        )
        observance.add("dtstart", rule.onset(_ANCHOR_YEAR))
        observance.add(
            "rrule",
            icalendar.vRecur(freq="YEARLY", bymonth=rule.month, byday=rule.byday),
        )
        observance.add("tzoffsetfrom", rule.offset_before)
        observance.add("tzoffsetto", rule.offset_after)
        observance.add("tzname", rule.name)
        component.add_component(observance)
    return component


def _utc(value: datetime, field: str, uid: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"event {uid!r}: {field} must be timezone-aware")
    return value.astimezone(UTC)


def _event(event: FeedEvent) -> icalendar.Event:
    """Build the VEVENT for event, validating the wall-clock contract."""
    uid = event.uid
    if not uid:
        raise ValueError("every event needs a stable, non-empty uid")
    component = icalendar.Event()
    component.add("uid", uid)
    stamp = _utc(event.last_modified, "last_modified", uid)
    # DTSTAMP is required but must not be "now": the same rows must give the same bytes.
    component.add("dtstamp", stamp)
    component.add("last-modified", stamp)
    if event.created is not None:
        component.add("created", _utc(event.created, "created", uid))
    component.add("sequence", event.sequence)
    component.add("summary", event.summary)

    exdates: list[date | datetime]
    if event.all_day:
        if event.zone is not None:
            raise ValueError(f"event {uid!r}: an all-day event takes no zone")
        days = event.duration.days
        if days < 1 or event.duration != timedelta(days=days):
            raise ValueError(f"event {uid!r}: an all-day duration is a whole number of days")
        start_day: date = event.start
        component.add("dtstart", start_day)
        component.add("dtend", start_day + event.duration)
        exdates = sorted({d.date() if isinstance(d, datetime) else d for d in event.exdates})
    else:
        start = event.start
        assert isinstance(start, datetime)
        if start.tzinfo is not None:
            raise ValueError(f"event {uid!r}: start is naive local wall time")
        if event.zone is None:
            raise ValueError(f"event {uid!r}: a timed event needs an IANA zone")
        if event.duration <= timedelta(0):
            raise ValueError(f"event {uid!r}: duration must be positive")
        tz = ZoneInfo(event.zone)
        component.add("dtstart", start.replace(tzinfo=tz))
        # DURATION, not DTEND: an exact length that every occurrence keeps across DST changes
        # (RFC 5545 3.8.2.5), with no ambiguous or skipped local end time to interpret.
        component.add("duration", event.duration)
        for exdate in event.exdates:
            if exdate.tzinfo is not None or exdate.time() != start.time():
                # A mismatched EXDATE silently cancels nothing in every client.
                raise ValueError(
                    f"event {uid!r}: EXDATE {exdate.isoformat()} must be naive local time "
                    f"at {start.time().isoformat()}"
                )
        exdates = [d.replace(tzinfo=tz) for d in sorted(set(event.exdates))]

    if event.rrule:
        recur = icalendar.vRecur.from_ical(event.rrule)
        if event.until is not None:
            if "UNTIL" in recur or "COUNT" in recur:
                raise ValueError(f"event {uid!r}: until given and rrule already bounded")
            until = _utc(event.until, "until", uid)
            # RFC 5545: UNTIL is UTC for zoned DTSTARTs and a DATE for date DTSTARTs.
            recur["UNTIL"] = [until.date() if event.all_day else until]
        component.add("rrule", recur)
        if exdates:
            component.add("exdate", exdates)
    elif event.exdates or event.until is not None:
        raise ValueError(f"event {uid!r}: exdates/until need an rrule")

    if event.description:
        component.add("description", event.description)
    if event.location:
        component.add("location", event.location)
    if event.url:
        component.add("url", event.url)
    if event.status is not None:
        if event.status not in _STATUSES:
            raise ValueError(f"event {uid!r}: unknown status {event.status!r}")
        component.add("status", event.status)
    if event.categories:
        component.add("categories", list(event.categories))
    if event.alarm_minutes is not None:
        if event.alarm_minutes < 0:
            raise ValueError(f"event {uid!r}: alarm_minutes counts minutes before the start")
        alarm = icalendar.Alarm()
        alarm.add("action", "DISPLAY")
        # DISPLAY alarms require a DESCRIPTION (RFC 5545 3.6.6).
        alarm.add("description", event.summary)
        alarm.add("trigger", timedelta(minutes=-event.alarm_minutes))
        component.add_component(alarm)
    return component


def render_feed(
    *,
    name: str,
    events: Sequence[FeedEvent],
    prodid: str = "-//Steadfast//Feeds 1.0//EN",
    refresh_minutes: int = 60,
    reference_year: int | None = None,
) -> bytes:
    """Render events as a deterministic, subscribable iCalendar feed."""
    # reference_year picks the year whose DST rules the VTIMEZONEs encode. By default it is
    # the year of the latest last_modified, so the bytes depend on the input alone (never on
    # the clock); the HTTP layer may pass the current year to pick up tzdata rule changes.
    uids = [e.uid for e in events]
    if len(set(uids)) != len(uids):
        raise ValueError("event uids must be unique within a feed")
    if refresh_minutes < 1:
        raise ValueError("refresh_minutes must be positive")
    refresh = icalendar.vDuration(timedelta(minutes=refresh_minutes))

    feed = icalendar.Calendar()
    feed.add("version", "2.0")
    feed.add("prodid", prodid)
    feed.add("calscale", "GREGORIAN")
    feed.add("method", "PUBLISH")
    feed.add("name", name)
    feed.add("x-wr-calname", name)
    # Calendar.new(refresh_interval=...) omits the VALUE=DURATION that RFC 7986 requires.
    feed.add("refresh-interval", refresh, parameters={"VALUE": "DURATION"})
    # A bare timedelta on an X- property is written as the text "1:00:00" and a vDuration
    # gains ";VALUE=DURATION"; Outlook documents the plain "X-PUBLISHED-TTL:PT1H" form.
    feed.add("x-published-ttl", refresh.to_ical().decode("ascii"))

    zones = sorted({e.zone for e in events if e.zone is not None})
    if zones:
        if reference_year is None:
            reference_year = max(_utc(e.last_modified, "last_modified", e.uid) for e in events).year
        for zone in zones:
            feed.add_component(vtimezone(zone, reference_year=reference_year))
    for event in sorted(events, key=lambda e: e.uid):
        feed.add_component(_event(event))
    return feed.to_ical()
