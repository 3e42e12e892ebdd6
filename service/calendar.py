"""Render clients' subscribable iCalendar feeds that every major calendar parser reads alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

from service.vtimezone import DEFAULT_YEARS_AHEAD, vtimezone

__all__ = ["FeedEvent", "render_feed", "vtimezone"]

_STATUSES = frozenset({"CONFIRMED", "CANCELLED", "TENTATIVE"})
# Zones that need one observance per change (no yearly rule fits) cover the events' first
# year, but no more than this many years before reference_year.
_YEARS_BACK = 5


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
            first = min(e.start.year for e in events if e.zone == zone)
            first = min(max(first, reference_year - _YEARS_BACK), reference_year - 1)
            years = range(first, reference_year + DEFAULT_YEARS_AHEAD + 1)
            feed.add_component(vtimezone(zone, reference_year=reference_year, years=years))
    for event in sorted(events, key=lambda e: e.uid):
        feed.add_component(_event(event))
    return feed.to_ical()
