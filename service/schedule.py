"""Recurrence expansion and the single DST policy that turns local wall times into UTC instants."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr

__all__ = [
    "Occurrence",
    "ScheduleError",
    "dst_warning",
    "expand",
    "expand_weekly_meeting",
    "get_zone",
    "parse_local_time",
    "resolve_local",
    "validate_rrule",
    "weekly_rrule_for_day",
    "zone_has_dst",
]

# TSML numbers days 0 = Sunday .. 6 = Saturday; iCal BYDAY uses these codes.
_TSML_BYDAY = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")

# RFC 5545 rule parts, in the order the normalised rule is written. dateutil also accepts
# BYEASTER and other extensions that calendar apps do not understand, so they are refused.
_RULE_PARTS = (
    "FREQ",
    "UNTIL",
    "COUNT",
    "INTERVAL",
    "BYSECOND",
    "BYMINUTE",
    "BYHOUR",
    "BYDAY",
    "BYMONTHDAY",
    "BYYEARDAY",
    "BYWEEKNO",
    "BYMONTH",
    "BYSETPOS",
    "WKST",
)
_ALLOWED_FREQS = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY")
_INT_LIST = re.compile(r"[+-]?[0-9]{1,3}(,[+-]?[0-9]{1,3})*")
_UNTIL_VALUE = re.compile(r"([0-9]{8})(T[0-9]{6})?(Z?)")
_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")

# Occurrences are generated over a naive local window this much wider than the UTC window
# on each side; a DST gap can move a wall time forward by up to a whole day (Pacific/Apia
# skipped 2011-12-30), so one day is the minimum and two leaves room.
_LOCAL_MARGIN = timedelta(days=2)

# The local times where a recurring text may be skipped or repeated by a DST change.
_DST_RISK_START = time(1, 0)
_DST_RISK_END = time(3, 0)


class ScheduleError(ValueError):
    """A schedule field is invalid; ``field`` names which one ("rrule", "time", "timezone")."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Occurrence:
    """One occurrence: its naive local wall time and the aware UTC instant it happens at."""

    local: datetime
    at: datetime


@lru_cache(maxsize=1)
def _zone_names() -> frozenset[str]:
    # Validate against the tzdata package's key list rather than zoneinfo.available_timezones(),
    # which also walks the system zoneinfo directory and so lists "localtime" and similar files.
    names = resources.files("tzdata").joinpath("zones").read_text(encoding="utf-8").split()
    # "Factory" is a placeholder zone whose abbreviation is "-00"; it is never a real place.
    return frozenset(names) - {"Factory"}


@lru_cache(maxsize=1024)
def get_zone(name: str) -> ZoneInfo:
    """Return the IANA zone called ``name`` or raise ScheduleError(field="timezone")."""
    if not isinstance(name, str) or name not in _zone_names():
        raise ScheduleError(
            f"{name!r} is not an IANA time zone name (e.g. America/New_York).", field="timezone"
        )
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:  # pragma: no cover - listed but unloadable
        raise ScheduleError(f"Time zone {name!r} could not be loaded.", field="timezone") from exc


def _require_aware(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise TypeError(f"{name} must be a timezone-aware datetime")
    return value.astimezone(UTC)


def _require_naive(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is not None:
        raise TypeError(f"{name} must be a naive local datetime")
    return value


def resolve_local(local: datetime, zone: ZoneInfo) -> datetime:
    """Resolve a naive local wall time in ``zone`` to an aware UTC instant by the DST policy."""
    _require_naive(local, "local")
    # Both readings of the wall time: fold=0 uses the offset in force before a transition,
    # fold=1 the offset after it. Outside transitions they agree.
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    second = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    exists = first.astimezone(zone).replace(tzinfo=None) == local
    if exists:
        # Ambiguous (fold): take the first instant the wall clock shows this time.
        return min(first, second)
    # Gap: the wall time never shows; the reading with the pre-transition offset lands the
    # length of the gap later, which is "move forward by the gap".
    return max(first, second)


def parse_local_time(value: str) -> time:
    """Parse a strict 24-hour "HH:MM" string into a naive time."""
    if not isinstance(value, str):
        raise ScheduleError("Time must be text in 24-hour HH:MM form, e.g. 20:00.", field="time")
    match = _HHMM.fullmatch(value)
    if match is None:
        raise ScheduleError(
            f"{value!r} is not a 24-hour HH:MM time, e.g. 08:30 or 20:00.", field="time"
        )
    return time(int(match.group(1)), int(match.group(2)))


def _rrule_error(message: str) -> ScheduleError:
    return ScheduleError(message, field="rrule")


def _split_rule(text: str) -> dict[str, str]:
    if not isinstance(text, str):
        raise _rrule_error("The repeat rule must be text such as FREQ=WEEKLY;BYDAY=MO.")
    body = text.strip()
    if "\n" in body or "\r" in body:
        raise _rrule_error("The repeat rule must be a single RRULE line.")
    if "DTSTART" in body.upper():
        raise _rrule_error(
            "Do not put DTSTART in the repeat rule; the start date and time are set separately."
        )
    if body[:6].upper() == "RRULE:":
        body = body[6:].strip()
    if not body:
        raise _rrule_error("The repeat rule is empty.")
    parts: dict[str, str] = {}
    for chunk in body.split(";"):
        key, sep, value = chunk.partition("=")
        key, value = key.strip().upper(), value.strip().upper()
        if not sep or not key or not value:
            raise _rrule_error(f"{chunk!r} is not a NAME=VALUE rule part.")
        if key not in _RULE_PARTS:
            raise _rrule_error(f"{key} is not a supported RRULE part.")
        if key in parts:
            # dateutil silently keeps the last one; a rule that says two things is a mistake.
            raise _rrule_error(f"{key} appears more than once in the repeat rule.")
        parts[key] = value
    return parts


def _int_list(parts: dict[str, str], key: str) -> list[int]:
    value = parts.get(key)
    if value is None:
        return []
    if not _INT_LIST.fullmatch(value):
        raise _rrule_error(f"{key}={value} must be a comma-separated list of whole numbers.")
    return [int(v) for v in value.split(",")]


def _check_parts(parts: dict[str, str]) -> None:
    freq = parts.get("FREQ")
    if freq is None:
        raise _rrule_error("The repeat rule needs a FREQ, e.g. FREQ=DAILY.")
    if freq in ("SECONDLY", "MINUTELY"):
        raise _rrule_error(
            f"FREQ={freq} would send more than one text an hour; at most hourly is allowed."
        )
    if freq not in _ALLOWED_FREQS:
        raise _rrule_error(f"FREQ={freq} is not a recurrence frequency.")
    for key in ("COUNT", "INTERVAL"):
        if key in parts and not re.fullmatch(r"[0-9]{1,6}", parts[key]):
            raise _rrule_error(f"{key}={parts[key]} must be a positive whole number.")
    # dateutil accepts COUNT=0 (never fires) and INTERVAL=0 (repeats the start forever).
    if "COUNT" in parts and int(parts["COUNT"]) <= 0:
        raise _rrule_error("COUNT must be at least 1.")
    if "INTERVAL" in parts and int(parts["INTERVAL"]) < 1:
        raise _rrule_error("INTERVAL must be at least 1.")
    if "COUNT" in parts and "UNTIL" in parts:
        raise _rrule_error("Use either COUNT or UNTIL, not both.")
    if "UNTIL" in parts:
        match = _UNTIL_VALUE.fullmatch(parts["UNTIL"])
        if match is None:
            raise _rrule_error(
                f"UNTIL={parts['UNTIL']} must be a date (YYYYMMDD) or local date-time (YYYYMMDDTHHMMSS)."
            )
        if match.group(3):
            raise _rrule_error(
                "UNTIL must be a local date or date-time without a trailing Z; "
                "schedules are kept in local time."
            )
        if match.group(2) is None:
            # A bare date would be read as local midnight and silently drop that day's
            # occurrence; treat it as "through the end of that day".
            parts["UNTIL"] = match.group(1) + "T235959"
    # RFC 5545 forbids 0 here; dateutil silently drops a 0 BYMONTHDAY, turning a monthly
    # rule into one that fires every day.
    for key in ("BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYSETPOS"):
        if 0 in _int_list(parts, key):
            raise _rrule_error(f"{key} values must not be 0.")
    # Within one clock hour a rule at most hourly can only fire more than once through
    # several minutes or several seconds; several hours (BYHOUR=8,9) are an hour apart.
    minutes = set(_int_list(parts, "BYMINUTE"))
    seconds = set(_int_list(parts, "BYSECOND"))
    if len(minutes) > 1 or len(seconds) > 1:
        raise _rrule_error(
            "The repeat rule would send more than one text in an hour "
            "(several BYMINUTE or BYSECOND values); at most one an hour is allowed."
        )


def _serialise(parts: dict[str, str]) -> str:
    return ";".join(f"{key}={parts[key]}" for key in _RULE_PARTS if key in parts)


def validate_rrule(rrule: str) -> str:
    """Validate an RRULE (optionally prefixed "RRULE:") and return it normalised, unprefixed."""
    if isinstance(rrule, str):
        return _validated_rrule(rrule)  # the sweeps expand the same few rules all day
    return _validate_rrule(rrule)


@lru_cache(maxsize=1024)
def _validated_rrule(rrule: str) -> str:
    return _validate_rrule(rrule)


def _validate_rrule(rrule: str) -> str:
    parts = _split_rule(rrule)
    _check_parts(parts)
    normalised = _serialise(parts)
    try:
        # A fixed naive DTSTART is enough for dateutil to check values and ranges.
        rrulestr(normalised, dtstart=datetime(2000, 1, 1))
    except (ValueError, TypeError) as exc:
        raise _rrule_error(f"The repeat rule is not valid: {exc}.") from exc
    return normalised


def weekly_rrule_for_day(day: int) -> str:
    """Return the weekly RRULE for a TSML day number (0 = Sunday .. 6 = Saturday)."""
    if isinstance(day, bool) or not isinstance(day, int) or not 0 <= day <= 6:
        raise ScheduleError(
            f"Meeting day must be 0 (Sunday) to 6 (Saturday), not {day!r}.", field="rrule"
        )
    return f"FREQ=WEEKLY;BYDAY={_TSML_BYDAY[day]}"


def _local_naive(instant: datetime, zone: ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _fast_forward(dtstart: datetime, parts: dict[str, str], earliest: datetime) -> datetime:
    # dateutil always iterates from DTSTART. For fixed-length periods and no COUNT, moving
    # DTSTART on by whole periods keeps every later occurrence (the defaults it derives from
    # DTSTART, weekday and time of day, are unchanged), so long-lived rules stay cheap.
    if "COUNT" in parts or dtstart >= earliest:
        return dtstart
    interval = int(parts.get("INTERVAL", "1"))
    unit = {"HOURLY": timedelta(hours=1), "DAILY": timedelta(days=1), "WEEKLY": timedelta(weeks=1)}
    step = unit.get(parts["FREQ"])
    if step is None:
        return dtstart
    period = step * interval
    return dtstart + period * ((earliest - dtstart) // period)


def expand(
    rrule: str,
    local_time: time,
    zone: str,
    starts_on: date,
    window_start: datetime,
    window_end: datetime,
    *,
    exdates: Iterable[datetime] = (),
) -> list[Occurrence]:
    """List the occurrences whose UTC instant falls in [window_start, window_end), ascending."""
    rule_text = validate_rrule(rrule)
    tz = get_zone(zone)
    if not isinstance(local_time, time) or local_time.tzinfo is not None:
        raise ScheduleError("The local time must be a naive time of day.", field="time")
    lo_utc = _require_aware(window_start, "window_start")
    hi_utc = _require_aware(window_end, "window_end")
    excluded = {_require_naive(ex, "exdates item") for ex in exdates}
    if hi_utc <= lo_utc:
        return []

    lo_local = _local_naive(lo_utc, tz) - _LOCAL_MARGIN
    hi_local = _local_naive(hi_utc, tz) + _LOCAL_MARGIN
    parts = _split_rule(rule_text)
    dtstart = _fast_forward(datetime.combine(starts_on, local_time), parts, lo_local)
    rule = rrulestr(rule_text, dtstart=dtstart)

    by_instant: dict[datetime, datetime] = {}
    for local in rule.between(lo_local, hi_local, inc=True):
        if local in excluded:
            continue
        at = resolve_local(local, tz)
        if lo_utc <= at < hi_utc:
            # A wall time moved forward out of a DST gap can land on the instant of the next
            # real occurrence (hourly rules, Apia 2011); send once, keeping the earlier one.
            by_instant.setdefault(at, local)
    return [Occurrence(local=local, at=at) for at, local in sorted(by_instant.items())]


def expand_weekly_meeting(
    day: int,
    local_time: time,
    zone: str,
    starts_on: date,
    window_start: datetime,
    window_end: datetime,
    *,
    exdates: Iterable[datetime] = (),
) -> list[Occurrence]:
    """List a weekly meeting's occurrences (TSML day 0 = Sunday) in the UTC window."""
    return expand(
        weekly_rrule_for_day(day),
        local_time,
        zone,
        starts_on,
        window_start,
        window_end,
        exdates=exdates,
    )


@lru_cache(maxsize=512)
def _zone_has_dst_in(zone: str, year: int) -> bool:
    tz = get_zone(zone)
    day = datetime(year, 1, 1, 12, tzinfo=UTC)
    # Sampling daily catches any daylight-saving period longer than a day; dst() is non-zero
    # for negative DST too (Europe/Dublin winters).
    while day.year == year:
        if day.astimezone(tz).dst():
            return True
        day += timedelta(days=1)
    return False


def zone_has_dst(zone: str, year: int | None = None) -> bool:
    """Report whether ``zone`` observes daylight saving time in ``year`` (default: this year)."""
    if year is None:
        year = datetime.now(UTC).year
    return _zone_has_dst_in(zone, year)


def dst_warning(local_time: time, zone: str) -> str | None:
    """Return a warning when a recurring local time sits where DST changes happen, else None."""
    get_zone(zone)
    if not _DST_RISK_START <= local_time < _DST_RISK_END:
        return None
    this_year = datetime.now(UTC).year
    if not (zone_has_dst(zone, this_year) or zone_has_dst(zone, this_year + 1)):
        return None
    return (
        f"{local_time:%H:%M} is close to when {zone} changes its clocks for daylight saving time. "
        "Calendar apps disagree about times near the DST change; texts will follow the policy: "
        "a time skipped when clocks go forward is sent that much later (02:30 becomes 03:30), "
        "and a time that happens twice when clocks go back is sent the first time."
    )
