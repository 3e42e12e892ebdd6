"""Property tests: expansion agrees with brute-force references built from first principles."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from dateutil.rrule import rrulestr
from hypothesis import given, settings
from hypothesis import strategies as st

from service.schedule import expand, get_zone

# Zones chosen for awkward transitions: 30-minute DST (Lord_Howe), changes at midnight
# (Santiago, Havana, historic Sao_Paulo), negative DST (Dublin), +12:45 (Chatham), a
# skipped calendar day (Apia 2011), a half-hour zone without DST (Kolkata) and none at all.
ZONES = [
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
    "America/Santiago",
    "America/Havana",
    "America/Sao_Paulo",
    "Europe/Dublin",
    "Pacific/Chatham",
    "America/St_Johns",
    "Asia/Tehran",
    "Pacific/Apia",
    "UTC",
]

# Instants near known transitions, so windows often straddle one.
ANCHORS = [
    datetime(2026, 11, 1, 6, tzinfo=UTC),
    datetime(2027, 3, 14, 7, tzinfo=UTC),
    datetime(2027, 3, 28, 1, tzinfo=UTC),
    datetime(2026, 10, 25, 1, tzinfo=UTC),
    datetime(2027, 4, 3, 16, tzinfo=UTC),
    datetime(2026, 10, 3, 16, tzinfo=UTC),
    datetime(2011, 12, 30, 10, tzinfo=UTC),
    datetime(2018, 11, 4, 3, tzinfo=UTC),
    datetime(2022, 9, 11, 4, tzinfo=UTC),
]

# iCal day codes indexed by TSML day number (0 = Sunday).
ICAL_DAYS = ("SU", "MO", "TU", "WE", "TH", "FR", "SA")

RULES = [
    "FREQ=DAILY",
    "FREQ=DAILY;INTERVAL=3",
    "FREQ=WEEKLY;BYDAY=MO,TH",
    "FREQ=WEEKLY;INTERVAL=2;BYDAY=SU",
    "FREQ=HOURLY",
    "FREQ=HOURLY;INTERVAL=5",
    "FREQ=DAILY;BYHOUR=0,1,2,3",
    "FREQ=MONTHLY;BYDAY=1SU",
    "FREQ=DAILY;UNTIL=20270101T000000",
    "FREQ=DAILY;COUNT=40",
]


def wall(instant: datetime, tz: ZoneInfo) -> datetime:
    return instant.astimezone(tz).replace(tzinfo=None)


@lru_cache(maxsize=4096)
def nearby_offsets(day: date, zone: str) -> frozenset[timedelta]:
    """Every UTC offset in force within two days of ``day``, sampled every half hour."""
    tz = get_zone(zone)
    first = datetime.combine(day - timedelta(days=2), time(0), tzinfo=UTC)
    samples = (first + timedelta(minutes=30 * k) for k in range(5 * 48))
    return frozenset(s.astimezone(tz).utcoffset() for s in samples)  # type: ignore[misc]


def candidates(local: datetime, tz: ZoneInfo) -> list[datetime]:
    """Every UTC instant that could show ``local``: local minus each offset in force nearby."""
    base = local.replace(tzinfo=UTC)
    return sorted(base - offset for offset in nearby_offsets(local.date(), str(tz.key)))


def exists(local: datetime, tz: ZoneInfo) -> bool:
    return any(wall(c, tz) == local for c in candidates(local, tz))


def policy(local: datetime, tz: ZoneInfo) -> datetime:
    """The DST policy from first principles: first instant showing it, else just after the gap."""
    options = candidates(local, tz)
    showing = [c for c in options if wall(c, tz) == local]
    if showing:
        return showing[0]
    return min(c for c in options if wall(c, tz) > local)


@st.composite
def windows(draw: st.DrawFn) -> tuple[datetime, datetime]:
    anchored = draw(st.booleans())
    if anchored:
        anchor = draw(st.sampled_from(ANCHORS))
        start = anchor + timedelta(minutes=draw(st.integers(-4 * 24 * 60, 24 * 60)))
    else:
        start = datetime(2008, 1, 1, tzinfo=UTC) + timedelta(
            minutes=draw(st.integers(0, 22 * 365 * 24 * 60))
        )
    length = timedelta(minutes=draw(st.integers(1, 40 * 24 * 60)))
    return start, start + length


local_times = st.builds(
    time,
    st.one_of(st.integers(0, 3), st.integers(0, 23)),
    st.sampled_from([0, 15, 30, 45, 59]) | st.integers(0, 59),
)


def reference(
    rule: str,
    at_time: time,
    tz: ZoneInfo,
    starts_on: date,
    start: datetime,
    end: datetime,
    excluded: set[datetime],
) -> list[tuple[datetime, datetime]]:
    """Expand from DTSTART with no shortcuts, resolve by ``policy`` and keep the first per instant."""
    naive = rrulestr(rule, dtstart=datetime.combine(starts_on, at_time))
    horizon = wall(end, tz) + timedelta(days=3)
    # A DST gap moves a wall time forward by at most a day, so earlier ones cannot land in
    # the window; skipping them only saves resolving, the iteration itself has no shortcut.
    earliest = wall(start, tz) - timedelta(days=3)
    seen: dict[datetime, datetime] = {}
    for local in naive.between(datetime.combine(starts_on, at_time), horizon, inc=True):
        if local < earliest or local in excluded:
            continue
        at = policy(local, tz)
        if start <= at < end:
            seen.setdefault(at, local)
    return sorted((at, local) for at, local in seen.items())


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    at_time=local_times,
    window=windows(),
    lead_days=st.integers(-30, 400),
)
def test_daily_matches_day_by_day_brute_force(
    zone: str, at_time: time, window: tuple[datetime, datetime], lead_days: int
) -> None:
    start, end = window
    tz = get_zone(zone)
    starts_on = wall(start, tz).date() - timedelta(days=lead_days)
    got = expand("FREQ=DAILY", at_time, zone, starts_on, start, end)

    # One wall time per calendar day, no rrule involved.
    expected: dict[datetime, datetime] = {}
    day = max(starts_on, wall(start, tz).date() - timedelta(days=3))
    while day <= wall(end, tz).date() + timedelta(days=3):
        local = datetime.combine(day, at_time)
        at = policy(local, tz)
        if start <= at < end:
            expected.setdefault(at, local)
        day += timedelta(days=1)

    assert [(o.at, o.local) for o in got] == sorted(expected.items())
    assert len(got) == len(expected)


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    rule=st.sampled_from(RULES),
    at_time=local_times,
    window=windows(),
    lead_days=st.integers(-10, 500),
    data=st.data(),
)
def test_expansion_invariants(
    zone: str,
    rule: str,
    at_time: time,
    window: tuple[datetime, datetime],
    lead_days: int,
    data: st.DataObject,
) -> None:
    start, end = window
    tz = get_zone(zone)
    starts_on = wall(start, tz).date() - timedelta(days=lead_days)
    unexcluded = reference(rule, at_time, tz, starts_on, start, end, set())
    picks = data.draw(st.sets(st.integers(0, max(len(unexcluded) - 1, 0)), max_size=3))
    excluded = {unexcluded[i][1] for i in picks if i < len(unexcluded)}

    got = expand(rule, at_time, zone, starts_on, start, end, exdates=excluded)

    instants = [o.at for o in got]
    assert all(start <= at < end for at in instants)
    assert all(a < b for a, b in zip(instants, instants[1:], strict=False))
    assert all(at.utcoffset() == timedelta(0) for at in instants)
    assert not any(o.local in excluded for o in got)
    for o in got:
        shown = wall(o.at, tz)
        if exists(o.local, tz):
            assert shown == o.local
        else:
            # Moved forward by exactly the jump in offset across the gap.
            jump = shown - o.local
            before = o.at - jump
            assert jump > timedelta(0)
            assert jump == (wall(o.at, tz) - o.at.replace(tzinfo=None)) - (
                wall(before, tz) - before.replace(tzinfo=None)
            )
    assert [(o.at, o.local) for o in got] == reference(
        rule, at_time, tz, starts_on, start, end, excluded
    )


@settings(max_examples=200, deadline=None)
@given(
    zone=st.sampled_from(ZONES),
    day=st.integers(0, 6),
    at_time=local_times,
    window=windows(),
)
def test_weekly_meetings_fall_on_their_day(
    zone: str, day: int, at_time: time, window: tuple[datetime, datetime]
) -> None:
    start, end = window
    tz = get_zone(zone)
    got = expand(
        f"FREQ=WEEKLY;BYDAY={ICAL_DAYS[day]}",
        at_time,
        zone,
        date(2000, 1, 2),
        start,
        end,
    )
    assert all(o.local.isoweekday() % 7 == day and o.local.time() == at_time for o in got)
    assert all(o.at == policy(o.local, tz) for o in got)
    # A week of wall time apart; at least six days as instants (Apia 2011 lost a whole day).
    assert all(b.at - a.at >= timedelta(days=6) for a, b in zip(got, got[1:], strict=False))
