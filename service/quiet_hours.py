"""Pure sending-time rules: recipient-local quiet hours, deferral, reminder placement, closing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from service.schedule import get_zone, parse_local_time, resolve_local

__all__ = [
    "DEFAULT_QUIET_HOURS",
    "QuietHours",
    "close_time",
    "defer_question",
    "is_quiet",
    "is_stale",
    "place_reminder",
]

# A reminder may be pulled earlier out of quiet hours only this far ahead of its event.
_MAX_REMINDER_LEAD = timedelta(hours=12)
# Bound on the minute-by-minute walk out of quiet hours (a DST gap is at most a day long).
_MAX_STEPS_BACK = 24 * 60


@dataclass(frozen=True)
class QuietHours:
    """A recipient-local quiet window [start, end); it may wrap midnight; start == end is none."""

    start: time
    end: time

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if not isinstance(value, time) or value.tzinfo is not None:
                raise TypeError(f"QuietHours.{name} must be a naive time")

    @classmethod
    def from_strings(cls, start: str, end: str) -> QuietHours:
        """Build quiet hours from stored "HH:MM" strings."""
        return cls(parse_local_time(start), parse_local_time(end))

    def contains(self, local: time) -> bool:
        """Report whether the local time of day falls inside quiet hours."""
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        # Wraps midnight: quiet from start to midnight and from midnight to end.
        return local >= self.start or local < self.end


DEFAULT_QUIET_HOURS = QuietHours(time(21, 0), time(8, 0))


def _utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise TypeError(f"{name} must be a timezone-aware datetime")
    return value.astimezone(UTC)


def is_quiet(at: datetime, zone: str, quiet: QuietHours) -> bool:
    """Report whether the instant ``at`` falls in the recipient's local quiet hours."""
    local = _utc(at, "at").astimezone(get_zone(zone))
    return quiet.contains(local.time())


def defer_question(at: datetime, zone: str, quiet: QuietHours) -> datetime:
    """Move a prompt due inside quiet hours to the end of those quiet hours."""
    if not is_quiet(at, zone, quiet):
        return at
    tz = get_zone(zone)
    at_utc = _utc(at, "at")
    today = at_utc.astimezone(tz).date()
    # Resolve each nearby local `end` by the DST policy (never adding hours to an aware local
    # time) and take the first one after `at`; a quiet window never spans more than a day.
    ends = (
        resolve_local(datetime.combine(today + timedelta(days=offset), quiet.end), tz)
        for offset in range(-1, 3)
    )
    return min(end for end in ends if end > at_utc)


def place_reminder(
    at: datetime, event_at: datetime, zone: str, quiet: QuietHours
) -> datetime | None:
    """Pull a reminder due in quiet hours back to just before they began, or skip it (None)."""
    if not is_quiet(at, zone, quiet):
        return at
    tz = get_zone(zone)
    at_utc = _utc(at, "at")
    event_utc = _utc(event_at, "event_at")
    today = at_utc.astimezone(tz).date()
    # The quiet period containing `at` began at the latest local `start` not after `at`.
    starts = [datetime.combine(today - timedelta(days=offset), quiet.start) for offset in range(3)]
    began = max(local for local in starts if resolve_local(local, tz) <= at_utc)
    # One elapsed minute before quiet hours began: 20:59 on an ordinary evening, and 01:59 EST
    # when quiet starts at 03:00 on a spring-forward night (02:59 never happens).
    moved = resolve_local(began, tz) - timedelta(minutes=1)
    # A start inside a DST gap resolves later than the jump that already made the clock read
    # past it, so step back to the last minute that is really outside quiet hours.
    for _ in range(_MAX_STEPS_BACK):
        if not is_quiet(moved, zone, quiet):
            break
        moved -= timedelta(minutes=1)
    else:
        return None
    lead = event_utc - moved
    if timedelta(0) <= lead <= _MAX_REMINDER_LEAD:
        return moved
    return None


def is_stale(due_at: datetime, now: datetime, stale_minutes: int) -> bool:
    """Report whether a message due at ``due_at`` is more than ``stale_minutes`` late at ``now``."""
    if stale_minutes < 0:
        raise ValueError("stale_minutes must not be negative")
    return _utc(now, "now") - _utc(due_at, "due_at") > timedelta(minutes=stale_minutes)


def close_time(
    sent_at: datetime,
    *,
    grace_minutes: int | None = None,
    confirm_window_hours: int | None = None,
) -> datetime:
    """Return when a prompt closes: elapsed grace minutes or confirm-window hours after sending."""
    if grace_minutes is not None and confirm_window_hours is None:
        window = timedelta(minutes=grace_minutes)
    elif confirm_window_hours is not None and grace_minutes is None:
        window = timedelta(hours=confirm_window_hours)
    else:
        raise ValueError("give exactly one of grace_minutes or confirm_window_hours")
    if window < timedelta(0):
        raise ValueError("the closing window must not be negative")
    # Elapsed time, so add in UTC: adding to an aware local time would count wall-clock hours.
    return _utc(sent_at, "sent_at") + window
