"""Build VTIMEZONE components from zoneinfo that ical.js, libical and dateutil read alike."""

from __future__ import annotations

import calendar as _stdcal
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import icalendar

__all__ = ["DEFAULT_YEARS_AHEAD", "vtimezone"]

_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
# The observances are anchored here: far enough back that no event predates them, and the
# conventional anchor year of the VTIMEZONEs shipped by Mozilla, Apple and tzurl.
_ANCHOR_YEAR = 1970
# Years after reference_year+1 checked against the derived rules: the weekday a month starts
# on takes every value within 12 consecutive years, so "Sun>=2" or "last" vs "4th" show.
_LOOK_AHEAD_YEARS = 12
# Zones no yearly rule describes get one observance per change; by default they cover the
# year before reference_year through this many years after it.
DEFAULT_YEARS_AHEAD = 10


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
    ordinal: int  # 1..4, or -1 for "last"; 0 when first_day is used instead
    wall: time  # local time before the change
    offset_before: timedelta
    offset_after: timedelta
    name: str
    # "The weekday on or after first_day" (tzdata's Fri>=23, Sat<=30 as >=24): RFC 5545
    # writes it BYDAY=FR;BYMONTHDAY=23,...,29, which ical.js expands for YEARLY rules.
    first_day: int | None = None

    @property
    def byday(self) -> str:
        if self.first_day is not None:
            return _WEEKDAYS[self.weekday]
        return f"{self.ordinal}{_WEEKDAYS[self.weekday]}"

    def recur(self) -> icalendar.vRecur:
        if self.first_day is None:
            return icalendar.vRecur(freq="YEARLY", bymonth=self.month, byday=self.byday)
        days = list(range(self.first_day, self.first_day + 7))
        return icalendar.vRecur(
            freq="YEARLY", bymonth=self.month, byday=self.byday, bymonthday=days
        )

    def onset(self, year: int) -> datetime:
        """Return the naive local onset of this rule in year."""
        if self.first_day is not None:
            first = date(year, self.month, self.first_day)
            day = self.first_day + (self.weekday - first.weekday()) % 7
        elif self.ordinal > 0:
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


@lru_cache(maxsize=2048)
def _transitions(zone: str, year: int) -> tuple[_Transition, ...]:
    """Return the UTC-offset changes of zone whose local onset falls in year."""
    tz = ZoneInfo(zone)
    # Scan a day either side of the UTC year so a change near New Year is attributed by its
    # local date. Weekly steps suffice: since 1970 no zone has changed its offset and changed
    # it back within seven days (checked against tzdata 2026 for 1970-2045), and each change
    # is then bisected down to the second. Daily steps made a feed in every zone 7x slower.
    cursor = datetime(year - 1, 12, 31, tzinfo=UTC)
    end = datetime(year + 1, 1, 2, tzinfo=UTC)
    step = 7 * 86_400
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
    return tuple(found)


def _ordinals(day: date) -> set[int]:
    """Return the BYDAY ordinals (1..4 and -1) that describe day within its month."""
    candidates = set()
    nth = (day.day - 1) // 7 + 1
    if nth <= 4:
        candidates.add(nth)
    if day.day + 7 > _stdcal.monthrange(day.year, day.month)[1]:
        candidates.add(-1)
    return candidates


def _first_day(onsets: list[date]) -> int | None:
    """Return d such that every onset is the weekday on or after day d, or None."""
    days = [d.day for d in onsets]
    shortest = min(_stdcal.monthrange(d.year, d.month)[1] for d in onsets)
    # Seven consecutive days hold each weekday once; the window must fit in every month.
    candidates = [d for d in range(max(days) - 6, min(days) + 1) if d >= 1 and d + 6 <= shortest]
    return candidates[-1] if candidates else None


def _shape(t: _Transition) -> tuple[int, int, time, timedelta, timedelta]:
    local = t.local_before
    return (local.month, local.weekday(), local.time(), t.offset_before, t.offset_after)


@lru_cache(maxsize=256)
def _rules(zone: str, reference_year: int) -> tuple[_Rule, ...]:
    """Derive the yearly rules of zone's transitions in reference_year, or raise ValueError."""
    first = _transitions(zone, reference_year)
    second = _transitions(zone, reference_year + 1)
    if not first and not second:
        return ()
    if len(first) != 2 or len(second) != 2:
        raise ValueError(
            f"{zone}: expected 0 or 2 UTC-offset changes a year in {reference_year} and "
            f"{reference_year + 1}, found {len(first)} and {len(second)}"
        )
    shapes = [_shape(t) for t in first]
    if [_shape(t) for t in second] != shapes:
        raise ValueError(f"{zone}: the changes of {reference_year} differ the next year")
    # Two years cannot tell "1st Sunday" from "Sunday on or after the 2nd" (tzdata's Sun>=2),
    # nor "4th" from "last": keep checking zoneinfo's projection of the current rules until
    # every weekday has started a month. A year whose changes differ in shape is an announced
    # rule change, not a contradiction, so it ends the look-ahead instead of failing.
    years = [first, second]
    for year in range(reference_year + 2, reference_year + 2 + _LOOK_AHEAD_YEARS):
        later = _transitions(zone, year)
        if [_shape(t) for t in later] != shapes:
            break
        years.append(later)

    rules = []
    for index, (month, weekday, wall, offset_before, offset_after) in enumerate(shapes):
        onsets = [changes[index].local_before.date() for changes in years]
        ordinals = set.intersection(*(_ordinals(day) for day in onsets))
        name = first[index].name_after
        if ordinals:
            # Prefer "2nd" over "last" when both fit every year checked, as tzdata would.
            ordinal = min(ordinals, key=lambda n: (n < 0, n))
            rule = _Rule(month, weekday, ordinal, wall, offset_before, offset_after, name)
        else:
            first_day = _first_day(onsets)
            if first_day is None:
                raise ValueError(
                    f"{zone}: its changes on {', '.join(map(str, onsets[:4]))}, ... follow no "
                    "weekday-of-month rule"
                )
            rule = _Rule(month, weekday, 0, wall, offset_before, offset_after, name, first_day)
        for changes in years:
            change = changes[index]
            if rule.instant(change.local_before.year) != change.at:
                raise ValueError(f"{zone}: derived rule {rule.byday} misses {change.at}")
        rules.append(rule)
    if rules[0].offset_after == rules[1].offset_after:
        raise ValueError(f"{zone}: both yearly changes lead to the same UTC offset")
    return tuple(rules)


def _component(zone: str) -> icalendar.Timezone:
    component = icalendar.Timezone()
    component.add("tzid", zone)
    # Thunderbird (libical) and ical.js-based clients use this to recognise the zone.
    component.add("x-lic-location", zone)
    return component


def _observance(
    daylight: bool, onset: datetime, before: timedelta, after: timedelta, name: str
) -> icalendar.cal.Component:
    observance = icalendar.TimezoneDaylight() if daylight else icalendar.TimezoneStandard()
    observance.add("dtstart", onset)
    observance.add("tzoffsetfrom", before)
    observance.add("tzoffsetto", after)
    observance.add("tzname", name)
    return observance


def _explicit(zone: str, years: range) -> icalendar.Timezone:
    """Build a VTIMEZONE with one single-DTSTART observance per change in years."""
    # No RDATE lists: ical.js ignores DTSTART once RDATEs are present and reads only the
    # first value of each RDATE line. One observance per change is read alike everywhere.
    tz = ZoneInfo(zone)
    changes = [t for year in years for t in _transitions(zone, year)]
    start = datetime(years.start, 1, 1, tzinfo=UTC) - timedelta(days=1)
    initial = changes[0].offset_before if changes else _offset_at(tz, start)
    initial_name = (changes[0].at - timedelta(seconds=1) if changes else start).astimezone(tz)
    component = _component(zone)
    # Times before the span keep the offset in force at its start; without this anchor
    # ical.js would read them as UTC.
    component.add_component(
        _observance(
            False, datetime(_ANCHOR_YEAR, 1, 1), initial, initial, initial_name.tzname() or ""
        )
    )
    for change in changes:
        daylight = change.offset_after > change.offset_before
        component.add_component(
            _observance(
                daylight,
                change.local_before,
                change.offset_before,
                change.offset_after,
                change.name_after,
            )
        )
    return component


def vtimezone(zone: str, *, reference_year: int, years: range | None = None) -> icalendar.Timezone:
    """Build the VTIMEZONE for zone: yearly RRULEs of its rules in reference_year if it has
    them, else one observance per change in years (default: reference_year-1 .. +10)."""
    tz = ZoneInfo(zone)
    try:
        rules = _rules(zone, reference_year)
    except ValueError:
        # Rules no yearly BYDAY/BYMONTHDAY describes (Ramadan-bound Casablanca, Gaza's
        # exceptions, a zone changing its offset for good): spell out each change instead.
        span = years or range(reference_year - 1, reference_year + DEFAULT_YEARS_AHEAD + 1)
        return _explicit(zone, span)
    component = _component(zone)
    if not rules:
        # No DST: a single STANDARD observance with the offset in force in reference_year.
        midyear = datetime(reference_year, 7, 1, tzinfo=UTC).astimezone(tz)
        offset = _offset_at(tz, midyear)
        component.add_component(
            _observance(False, datetime(_ANCHOR_YEAR, 1, 1), offset, offset, midyear.tzname() or "")
        )
        return component
    # Summer time is the change to the larger offset; this also keeps zones with negative
    # DST in tzdata (Europe/Dublin's winter "GMT") conventional for clients.
    daylight = max(rules, key=lambda r: r.offset_after)
    for rule in sorted(rules, key=lambda r: r is daylight):
        observance = (
            icalendar.TimezoneDaylight() if rule is daylight else icalendar.TimezoneStandard()
        )
        observance.add("dtstart", rule.onset(_ANCHOR_YEAR))
        observance.add("rrule", rule.recur())
        observance.add("tzoffsetfrom", rule.offset_before)
        observance.add("tzoffsetto", rule.offset_after)
        observance.add("tzname", rule.name)
        component.add_component(observance)
    return component
