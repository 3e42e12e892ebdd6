"""Pinned, table-driven tests for quiet hours, deferral, reminder placement and closing times."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from service.quiet_hours import (
    DEFAULT_QUIET_HOURS,
    QuietHours,
    close_time,
    defer_question,
    is_quiet,
    is_stale,
    place_reminder,
)
from service.schedule import ScheduleError

NY = "America/New_York"
LONDON = "Europe/London"
SYDNEY = "Australia/Sydney"
KOLKATA = "Asia/Kolkata"
QUIET = QuietHours(time(21, 0), time(8, 0))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("quiet", "local", "expected"),
    [
        (QUIET, time(20, 59), False),
        (QUIET, time(20, 59, 59), False),
        (QUIET, time(21, 0), True),
        (QUIET, time(23, 59), True),
        (QUIET, time(0, 0), True),
        (QUIET, time(7, 59), True),
        (QUIET, time(7, 59, 59), True),
        (QUIET, time(8, 0), False),
        (QUIET, time(12, 0), False),
        (QuietHours(time(13, 0), time(15, 0)), time(12, 59), False),
        (QuietHours(time(13, 0), time(15, 0)), time(13, 0), True),
        (QuietHours(time(13, 0), time(15, 0)), time(14, 59), True),
        (QuietHours(time(13, 0), time(15, 0)), time(15, 0), False),
        (QuietHours(time(13, 0), time(15, 0)), time(2, 0), False),
        (QuietHours(time(23, 0), time(0, 0)), time(23, 0), True),
        (QuietHours(time(23, 0), time(0, 0)), time(0, 0), False),
        (QuietHours(time(0, 0), time(6, 0)), time(0, 0), True),
        (QuietHours(time(0, 0), time(6, 0)), time(23, 59), False),
        (QuietHours(time(22, 0), time(22, 0)), time(22, 0), False),
        (QuietHours(time(22, 0), time(22, 0)), time(3, 0), False),
    ],
)
def test_contains_is_half_open(quiet: QuietHours, local: time, expected: bool) -> None:
    assert quiet.contains(local) is expected


def test_defaults_and_parsing() -> None:
    assert DEFAULT_QUIET_HOURS == QUIET
    assert QuietHours.from_strings("21:00", "08:00") == QUIET
    with pytest.raises(ScheduleError) as info:
        QuietHours.from_strings("9pm", "08:00")
    assert info.value.field == "time"
    with pytest.raises(TypeError):
        QuietHours(time(21, tzinfo=UTC), time(8))


@pytest.mark.parametrize(
    ("at", "zone", "expected"),
    [
        (utc(2026, 7, 1, 0, 59), NY, False),  # 20:59 EDT
        (utc(2026, 7, 1, 1, 0), NY, True),  # 21:00 EDT
        (utc(2026, 7, 1, 11, 59), NY, True),  # 07:59 EDT
        (utc(2026, 7, 1, 12, 0), NY, False),  # 08:00 EDT
        (utc(2026, 12, 1, 1, 59), NY, False),  # 20:59 EST
        (utc(2026, 12, 1, 2, 0), NY, True),  # 21:00 EST
        (utc(2026, 12, 1, 12, 59), NY, True),  # 07:59 EST
        (utc(2026, 12, 1, 13, 0), NY, False),  # 08:00 EST
        (utc(2026, 7, 1, 15, 29), KOLKATA, False),  # 20:59 IST
        (utc(2026, 7, 1, 15, 30), KOLKATA, True),  # 21:00 IST
        (utc(2027, 1, 15, 9, 59), SYDNEY, False),  # 20:59 AEDT
        (utc(2027, 1, 15, 10, 0), SYDNEY, True),  # 21:00 AEDT
        (utc(2026, 11, 1, 6, 30), NY, True),  # the repeated 01:30 (EST)
    ],
)
def test_is_quiet_uses_recipient_local_time(at: datetime, zone: str, expected: bool) -> None:
    assert is_quiet(at, zone, QUIET) is expected


def test_is_quiet_needs_an_aware_instant_and_a_real_zone() -> None:
    with pytest.raises(TypeError):
        is_quiet(datetime(2026, 7, 1, 1), NY, QUIET)
    with pytest.raises(ScheduleError):
        is_quiet(utc(2026, 7, 1, 1), "localtime", QUIET)


@pytest.mark.parametrize(
    ("at", "zone", "quiet", "expected"),
    [
        # An ordinary summer night: 23:00 EDT -> 08:00 EDT.
        (utc(2026, 7, 1, 3), NY, QUIET, utc(2026, 7, 1, 12)),
        # Exactly 21:00 EDT is quiet and waits until 08:00 EDT next morning.
        (utc(2026, 7, 1, 1), NY, QUIET, utc(2026, 7, 1, 12)),
        # One minute before the end.
        (utc(2026, 7, 1, 11, 59), NY, QUIET, utc(2026, 7, 1, 12)),
        # Fall-back night: 23:00 EDT on Oct 31 -> 08:00 EST on Nov 1 (a ten-hour wait).
        (utc(2026, 11, 1, 3), NY, QUIET, utc(2026, 11, 1, 13)),
        # Inside the repeated hour (01:30 EST) -> 08:00 EST.
        (utc(2026, 11, 1, 6, 30), NY, QUIET, utc(2026, 11, 1, 13)),
        # Spring-forward night: 23:00 EST on Mar 13 -> 08:00 EDT on Mar 14 (an eight-hour wait).
        (utc(2027, 3, 14, 4), NY, QUIET, utc(2027, 3, 14, 12)),
        # London spring forward: 22:00 GMT -> 08:00 BST.
        (utc(2027, 3, 27, 22), LONDON, QUIET, utc(2027, 3, 28, 7)),
        # Sydney fall back: 22:00 AEDT on Apr 3 -> 08:00 AEST on Apr 4.
        (utc(2027, 4, 3, 11), SYDNEY, QUIET, utc(2027, 4, 3, 22)),
        # Kolkata: 23:30 IST -> 08:00 IST next day.
        (utc(2026, 7, 1, 18), KOLKATA, QUIET, utc(2026, 7, 2, 2, 30)),
        # A daytime window that does not wrap midnight: 14:00 EDT -> 15:00 EDT.
        (utc(2026, 7, 1, 18), NY, QuietHours(time(13), time(15)), utc(2026, 7, 1, 19)),
        # Quiet hours ending at 02:30 on the spring-forward night end at 03:30 EDT.
        (utc(2027, 3, 14, 5), NY, QuietHours(time(22), time(2, 30)), utc(2027, 3, 14, 7, 30)),
    ],
)
def test_defer_question_to_end_of_quiet_hours(
    at: datetime, zone: str, quiet: QuietHours, expected: datetime
) -> None:
    got = defer_question(at, zone, quiet)
    assert got == expected
    assert not is_quiet(got, zone, quiet)


@pytest.mark.parametrize(
    "at",
    [utc(2026, 7, 1, 0, 59), utc(2026, 7, 1, 12), utc(2026, 7, 1, 18)],
)
def test_defer_question_outside_quiet_hours_is_unchanged(at: datetime) -> None:
    assert defer_question(at, NY, QUIET) is at


@pytest.mark.parametrize(
    ("at", "event_at", "zone", "expected"),
    [
        # 06:30 EDT reminder for a 07:30 EDT meeting -> 20:59 EDT the evening before (10h31m).
        (utc(2026, 7, 15, 10, 30), utc(2026, 7, 15, 11, 30), NY, utc(2026, 7, 15, 0, 59)),
        # Reminder for a 09:30 EDT meeting would be 12h31m ahead -> skipped.
        (utc(2026, 7, 15, 11, 30), utc(2026, 7, 15, 13, 30), NY, None),
        # Exactly 12 hours ahead (08:59 EDT event) is still allowed.
        (utc(2026, 7, 15, 11, 59), utc(2026, 7, 15, 12, 59), NY, utc(2026, 7, 15, 0, 59)),
        # 12h01m ahead (09:00 EDT event) is not.
        (utc(2026, 7, 15, 11, 59), utc(2026, 7, 15, 13, 0), NY, None),
        # 23:00 EDT reminder for a 23:30 EDT event -> 20:59 EDT the same evening.
        (utc(2026, 7, 16, 3), utc(2026, 7, 16, 3, 30), NY, utc(2026, 7, 16, 0, 59)),
        # Fall-back night is an hour longer: 07:00 EST reminder for 08:30 EST -> 20:59 EDT is
        # 12h31m ahead -> skipped ...
        (utc(2026, 11, 1, 12), utc(2026, 11, 1, 13, 30), NY, None),
        # ... while the same reminder a week later moves to 20:59 EST (11h31m ahead).
        (utc(2026, 11, 8, 12), utc(2026, 11, 8, 13, 30), NY, utc(2026, 11, 8, 1, 59)),
        # Spring-forward night is an hour shorter: 07:30 EDT for 09:30 EDT -> 20:59 EST is
        # 11h31m ahead -> moved ...
        (utc(2027, 3, 14, 11, 30), utc(2027, 3, 14, 13, 30), NY, utc(2027, 3, 14, 1, 59)),
        # ... while a week later 20:59 EDT is 12h31m ahead -> skipped.
        (utc(2027, 3, 21, 11, 30), utc(2027, 3, 21, 13, 30), NY, None),
        # Kolkata: 06:00 IST reminder for 07:00 IST -> 20:59 IST the evening before.
        (utc(2026, 7, 15, 0, 30), utc(2026, 7, 15, 1, 30), KOLKATA, utc(2026, 7, 14, 15, 29)),
    ],
)
def test_place_reminder_moves_earlier_or_skips(
    at: datetime, event_at: datetime, zone: str, expected: datetime | None
) -> None:
    got = place_reminder(at, event_at, zone, QUIET)
    assert got == expected
    if got is not None:
        assert not is_quiet(got, zone, QUIET)
        assert got <= at


@pytest.mark.parametrize(
    ("quiet", "at", "event_at", "expected"),
    [
        # Quiet from 03:00 on the spring-forward night began when clocks jumped 01:59 EST ->
        # 03:00 EDT (07:00Z); the last minute before it is 01:59 EST (06:59Z), not "02:59".
        (
            QuietHours(time(3), time(8)),
            utc(2027, 3, 14, 7, 30),
            utc(2027, 3, 14, 9),
            utc(2027, 3, 14, 6, 59),
        ),
        # Quiet from 02:30 (inside the gap) also began at the jump.
        (
            QuietHours(time(2, 30), time(8)),
            utc(2027, 3, 14, 8),
            utc(2027, 3, 14, 9),
            utc(2027, 3, 14, 6, 59),
        ),
        # Quiet from 01:30 on the fall-back night began at the first 01:30 (EDT, 05:30Z).
        (
            QuietHours(time(1, 30), time(8)),
            utc(2026, 11, 1, 6, 45),
            utc(2026, 11, 1, 9),
            utc(2026, 11, 1, 5, 29),
        ),
    ],
)
def test_place_reminder_when_quiet_starts_at_a_transition(
    quiet: QuietHours, at: datetime, event_at: datetime, expected: datetime
) -> None:
    got = place_reminder(at, event_at, NY, quiet)
    assert got == expected
    assert got is not None
    assert not is_quiet(got, NY, quiet)
    assert is_quiet(got + timedelta(minutes=1), NY, quiet)


def test_place_reminder_outside_quiet_hours_is_unchanged() -> None:
    at = utc(2026, 7, 15, 0, 59)  # 20:59 EDT
    assert place_reminder(at, utc(2026, 7, 16, 0, 0), NY, QUIET) is at


def test_place_reminder_with_no_quiet_hours_is_unchanged() -> None:
    at = utc(2026, 7, 15, 6)  # 02:00 EDT
    assert place_reminder(at, at + timedelta(days=2), NY, QuietHours(time(0), time(0))) is at


@pytest.mark.parametrize(
    ("due_at", "now", "stale_minutes", "expected"),
    [
        (utc(2026, 7, 1, 12), utc(2026, 7, 1, 12, 30), 30, False),
        (utc(2026, 7, 1, 12), utc(2026, 7, 1, 12, 30, 1), 30, True),
        (utc(2026, 7, 1, 12), utc(2026, 7, 1, 11), 30, False),
        (utc(2026, 7, 1, 12), utc(2026, 7, 1, 12), 0, False),
        (utc(2026, 7, 1, 12), utc(2026, 7, 1, 12, 0, 1), 0, True),
        # An aware local due time compares by instant: 08:00 EDT is 12:00Z.
        (datetime(2026, 7, 1, 8, tzinfo=ZoneInfo(NY)), utc(2026, 7, 1, 12, 31), 30, True),
    ],
)
def test_is_stale(due_at: datetime, now: datetime, stale_minutes: int, expected: bool) -> None:
    assert is_stale(due_at, now, stale_minutes) is expected


def test_is_stale_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        is_stale(utc(2026, 7, 1), utc(2026, 7, 2), -1)
    with pytest.raises(TypeError):
        is_stale(datetime(2026, 7, 1), utc(2026, 7, 2), 5)


@pytest.mark.parametrize(
    ("sent_at", "kwargs", "expected"),
    [
        (utc(2026, 7, 1, 12), {"grace_minutes": 30}, utc(2026, 7, 1, 12, 30)),
        (utc(2026, 7, 1, 12), {"confirm_window_hours": 12}, utc(2026, 7, 2, 0)),
        # 24 elapsed hours from 20:00 EST on the eve of spring forward is 21:00 EDT (01:00Z),
        # not 20:00 EDT as wall-clock arithmetic would give.
        (
            datetime(2027, 3, 13, 20, tzinfo=ZoneInfo(NY)),
            {"confirm_window_hours": 24},
            utc(2027, 3, 15, 1),
        ),
        # ... and across fall back it is 19:00 EST (00:00Z).
        (
            datetime(2026, 10, 31, 20, tzinfo=ZoneInfo(NY)),
            {"confirm_window_hours": 24},
            utc(2026, 11, 2, 0),
        ),
        (
            datetime(2026, 11, 1, 1, 50, tzinfo=ZoneInfo(NY)),  # 01:50 EDT (first)
            {"grace_minutes": 30},
            utc(2026, 11, 1, 6, 20),
        ),
    ],
)
def test_close_time_counts_elapsed_time(
    sent_at: datetime, kwargs: dict[str, int], expected: datetime
) -> None:
    got = close_time(sent_at, **kwargs)
    assert got == expected
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"grace_minutes": 5, "confirm_window_hours": 1},
        {"grace_minutes": -5},
        {"confirm_window_hours": -1},
    ],
)
def test_close_time_rejects_bad_windows(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        close_time(utc(2026, 7, 1), **kwargs)


def test_close_time_needs_an_aware_instant() -> None:
    with pytest.raises(TypeError):
        close_time(datetime(2026, 7, 1), grace_minutes=30)
