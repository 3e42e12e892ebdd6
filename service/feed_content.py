"""What a client's and a therapist's calendar feeds contain, as FeedEvents built from the rows."""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from dateutil.rrule import rrulestr
from sqlalchemy import ColumnElement, and_, or_, select

from service.calendar import FeedEvent
from service.db import db
from service.models import Activity, CheckIn, Client, Commitment, MeetingPlan
from service.schedule import (
    get_zone,
    parse_local_time,
    resolve_local,
    validate_rrule,
    weekly_rrule_for_day,
)

logger = logging.getLogger(__name__)

# Check-ins in these states mean the occurrence is off the calendar (an EXDATE).
OFF_STATUSES = ("cancelled", "skipped", "excused")
COMMITMENT_LENGTH = timedelta(minutes=30)
MEETING_LENGTH = timedelta(hours=1)
# A pause longer than this lists only its last stretch as EXDATEs (keeps feeds small).
PAUSE_LISTED = timedelta(days=731)
MILESTONE_DAYS = (30, 60, 90)
# Yearly anniversaries are listed through this many years after the current one.
MILESTONE_YEARS_AHEAD = 3
DISCREET_COMMITMENT = {"sponsor_call": "Call"}
DISCREET_ACTIVITY = {"therapy_session": "Session", "activity": "Check-in"}
_LOCAL_UNTIL = re.compile(r"UNTIL=([0-9]{8}T[0-9]{6});?")


def _latest(*values: datetime | None) -> datetime:
    return max(v for v in values if v is not None)


def feed_event(**fields: object) -> FeedEvent:
    defaults: dict[str, object] = {
        "rrule": None, "exdates": (), "until": None, "created": None, "description": None,
        "location": None, "url": None, "alarm_minutes": None, "status": None,
    }  # fmt: skip
    return FeedEvent(**{**defaults, **fields})  # type: ignore[arg-type]


def _pause_of(client: Client, source_pause: date | None) -> date | None:
    """Return the first day back of whichever pause (source's, client's) ends later."""
    days = [source_pause]
    if client.status == "paused" and client.paused_until is not None:
        days.append(client.paused_until)
    known = [d for d in days if d is not None]
    return max(known) if known else None


def _recurrence(
    rule: str,
    first: datetime,
    checkins: dict[datetime, CheckIn],
    pause_until: date | None,
) -> tuple[datetime | None, tuple[datetime, ...]]:
    """Return the first real occurrence on/after first and the EXDATEs of the rule.

    An occurrence is off when its check-in was cancelled, skipped or excused, and while the
    source is paused (its day before paused_until, the engine's rule) unless a check-in was
    kept for it: that one was planned before the pause, or happened, and stays as history.
    """
    recur = rrulestr(rule, dtstart=first)
    # RFC 5545 counts DTSTART as an occurrence even when the rule does not match it, and
    # ical.js does so: start at the first date the rule (and the SMS engine) really uses.
    start = recur.after(first, inc=True)
    if start is None:
        return None, ()
    recur = rrulestr(rule, dtstart=start)
    off = {local for local, row in checkins.items() if row.status in OFF_STATUSES}
    if pause_until is not None:
        lo = max(start, datetime.combine(pause_until, time()) - PAUSE_LISTED)
        hi = datetime.combine(pause_until, time()) - timedelta(microseconds=1)
        off.update(local for local in recur.between(lo, hi, inc=True) if local not in checkins)
    if off:
        lo, hi = min(off), max(off)
        off &= set(recur.between(lo, hi, inc=True))
    # render_feed pins EXDATEs to DTSTART's time of day; sub-daily rules' others are dropped.
    return start, tuple(sorted(d for d in off if d.time() == start.time()))


def _split_until(rule: str, zone: ZoneInfo) -> tuple[str, datetime | None]:
    """Move a local UNTIL (the schedule's convention) out of rule, as a UTC instant."""
    match = _LOCAL_UNTIL.search(rule)
    if match is None:
        return rule, None
    local = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S")
    return _LOCAL_UNTIL.sub("", rule).rstrip(";"), resolve_local(local, zone)


def _bound(
    rule: str, start: datetime, zone: ZoneInfo, until: datetime | None
) -> tuple[str, datetime | None]:
    """Turn a COUNT rule cut short by until into an UNTIL rule; keep it when it ends first."""
    if until is None or "COUNT=" not in rule:
        return rule, until
    last = list(rrulestr(rule, dtstart=start))[-1]
    if resolve_local(last, zone) <= until:
        return rule, None
    return re.sub(r"COUNT=[0-9]+;?", "", rule).rstrip(";"), until


def _meeting_event(client: Client, plan: MeetingPlan, checkins: dict) -> FeedEvent | None:
    meeting = plan.meeting
    if meeting.day is None or not meeting.time:
        return None  # unscheduled: nothing to put on a calendar
    zone = get_zone(meeting.timezone)
    wall = parse_local_time(meeting.time)
    weekday = (meeting.day - 1) % 7  # TSML 0 = Sunday; Python 0 = Monday
    first = plan.starts_on + timedelta(days=(weekday - plan.starts_on.weekday()) % 7)
    mine = checkins.get(("meeting_plan", plan.id), {})
    rule = weekly_rrule_for_day(meeting.day)
    pause = _pause_of(client, plan.paused_until)
    start, exdates = _recurrence(rule, datetime.combine(first, wall), mine, pause)
    until = _stop(client, None if meeting.active else meeting.updated_at)
    if start is None or (until is not None and until < resolve_local(start, zone)):
        return None  # ended before it began; DTSTART alone would still show once
    length = MEETING_LENGTH
    if meeting.end_time:
        end = datetime.combine(first, parse_local_time(meeting.end_time))
        length = (end - datetime.combine(first, wall)) % timedelta(days=1) or MEETING_LENGTH
    place = ", ".join(p for p in (meeting.location, meeting.address) if p)
    shown = not client.discreet
    return feed_event(
        uid=f"{plan.id}@steadfast",
        summary=meeting.name if shown else "Meeting",
        start=start,
        zone=meeting.timezone,
        duration=length,
        rrule=rule,
        exdates=exdates,
        until=until,
        sequence=(meeting.revision or 0) + (plan.revision or 0),
        last_modified=_latest(
            plan.updated_at, meeting.updated_at, *(r.updated_at for r in mine.values())
        ),
        created=plan.created_at,
        location=(place or None) if shown else None,
        url=meeting.conference_url if shown else None,
        description=meeting.conference_url if shown else None,
        alarm_minutes=plan.remind_minutes_before or None,
    )


def _stop(client: Client, *ends: datetime | None) -> datetime | None:
    """Return when a recurring event stops: the earliest end, or an open-ended pause."""
    if client.status == "paused" and client.paused_until is None:
        ends = (*ends, client.updated_at)
    known = [e for e in ends if e is not None]
    return min(known) if known else None


def _commitment_event(client: Client, commitment: Commitment, checkins: dict) -> FeedEvent | None:
    zone = get_zone(client.timezone)
    ended = commitment.archived_at or (None if commitment.active else commitment.updated_at)
    local_rule = validate_rrule(commitment.rrule)
    rule, rule_until = _split_until(local_rule, zone)
    mine = checkins.get(("commitment", commitment.id), {})
    first = datetime.combine(commitment.starts_on, parse_local_time(commitment.time))
    pause = _pause_of(client, commitment.paused_until)
    start, exdates = _recurrence(local_rule, first, mine, pause)
    if start is None:
        return None
    rule, until = _bound(rule, start, zone, _stop(client, ended, rule_until))
    if until is not None and until < resolve_local(start, zone):
        return None  # ended before it began; DTSTART alone would still show once
    discreet = DISCREET_COMMITMENT.get(commitment.kind, "Check-in")
    return feed_event(
        uid=f"{commitment.id}@steadfast",
        summary=discreet if client.discreet else commitment.title,
        start=start,
        zone=client.timezone,
        duration=COMMITMENT_LENGTH,
        rrule=rule,
        exdates=tuple(d for d in exdates if until is None or resolve_local(d, zone) <= until),
        until=until,
        sequence=commitment.revision or 0,
        last_modified=_latest(commitment.updated_at, *(r.updated_at for r in mine.values())),
        created=commitment.created_at,
    )


def _timed(starts_at: datetime, zone_name: str) -> tuple[datetime, str]:
    """Return (naive local start, zone), in UTC when the local time would be ambiguous."""
    zone = get_zone(zone_name)
    local = starts_at.astimezone(zone).replace(tzinfo=None)
    if resolve_local(local, zone) != starts_at:
        return starts_at.astimezone(UTC).replace(tzinfo=None), "UTC"
    return local, zone_name


def activity_event(activity: Activity, client: Client, summary: str, shown: bool) -> FeedEvent:
    start, zone = _timed(activity.starts_at, client.timezone)
    return feed_event(
        uid=f"{activity.id}@steadfast",
        summary=summary,
        start=start,
        zone=zone,
        duration=timedelta(minutes=activity.duration_minutes),
        sequence=activity.revision or 0,
        last_modified=activity.updated_at,
        created=activity.created_at,
        location=activity.location if shown else None,
        status="CANCELLED" if activity.cancelled else "CONFIRMED",
    )


def _milestones(client: Client, *, now: datetime) -> list[FeedEvent]:
    sober = client.sobriety_date
    if sober is None:
        return []
    marks = [(f"{n}d", f"{n} days", sober + timedelta(days=n)) for n in MILESTONE_DAYS]
    marks.append(("6m", "6 months", sober + relativedelta(months=6)))
    years = 1
    while (day := sober + relativedelta(years=years)).year <= now.year + MILESTONE_YEARS_AHEAD:
        marks.append((f"{years}y", f"{years} year{'s' if years > 1 else ''}", day))
        years += 1
    return [
        feed_event(
            uid=f"{client.id}-milestone-{key}@steadfast",
            summary="Milestone" if client.discreet else label,
            start=day,
            zone=None,
            duration=timedelta(days=1),
            sequence=client.revision or 0,
            last_modified=client.updated_at,
        )
        for key, label, day in marks
    ]


def pause_window(pauses: list[date | None]) -> tuple[datetime, datetime] | None:
    """Return the local span [from, to) whose check-ins can keep a paused occurrence."""
    known = [p for p in pauses if p is not None]
    if not known:
        return None
    return datetime.combine(min(known), time()) - PAUSE_LISTED, datetime.combine(max(known), time())


def checkin_filter(client_id: str, window: tuple[datetime, datetime] | None) -> ColumnElement[bool]:
    """Select the check-ins that can take an occurrence off: off states, or inside a pause."""
    wanted = CheckIn.status.in_(OFF_STATUSES)
    if window is not None:
        wanted = or_(wanted, CheckIn.occurrence.between(window[0], window[1]))
    return and_(CheckIn.client_id == client_id, wanted)


def _checkins_by_source(client: Client, window: tuple[datetime, datetime] | None) -> dict:
    rows = db.session.scalars(select(CheckIn).where(checkin_filter(client.id, window)))
    out: dict[tuple[str, str], dict[datetime, CheckIn]] = defaultdict(dict)
    for row in rows:
        out[(row.source_type, row.source_id)][row.occurrence] = row
    return out


def guarded(row_id: str, build: Callable[..., FeedEvent | None], *args: Any) -> FeedEvent | None:
    """Build one row's event; a row the schedule cannot read is left out, never a 500."""
    try:
        return build(*args)
    except ValueError as exc:  # ScheduleError (bad rule, time or zone) is a ValueError
        logger.warning("feed: left out %s: %s", row_id, exc)
        return None


def client_feed_events(client: Client, *, now: datetime) -> list[FeedEvent]:
    """Build every event of a client's feed: meetings, commitments, activities, milestones."""
    plans = list(
        db.session.scalars(
            select(MeetingPlan).where(
                MeetingPlan.client_id == client.id, MeetingPlan.archived_at.is_(None)
            )
        )
    )
    commitments = list(
        db.session.scalars(
            select(Commitment).where(
                Commitment.client_id == client.id,
                Commitment.kind != "meeting_quota",
                Commitment.time.is_not(None),
            )
        )
    )
    pauses = [_pause_of(client, row.paused_until) for row in [*plans, *commitments]]
    checkins = _checkins_by_source(client, pause_window(pauses))
    activities = db.session.scalars(select(Activity).where(Activity.client_id == client.id))
    shown = not client.discreet
    events = [guarded(plan.id, _meeting_event, client, plan, checkins) for plan in plans]
    events += [guarded(row.id, _commitment_event, client, row, checkins) for row in commitments]
    events += [
        guarded(
            a.id, activity_event, a, client, a.title if shown else DISCREET_ACTIVITY[a.kind], shown
        )
        for a in activities
    ]
    return [e for e in events if e is not None] + _milestones(client, now=now)
