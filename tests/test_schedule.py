"""Pinned, table-driven tests for recurrence expansion and the DST policy in service.schedule."""

from __future__ import annotations

import time as clock
from datetime import UTC, date, datetime, time, timedelta

import pytest

from service.schedule import (
    Occurrence,
    ScheduleError,
    dst_warning,
    expand,
    expand_weekly_meeting,
    get_zone,
    parse_local_time,
    resolve_local,
    validate_rrule,
    weekly_rrule_for_day,
    zone_has_dst,
)

NY = "America/New_York"
LONDON = "Europe/London"
SYDNEY = "Australia/Sydney"
KOLKATA = "Asia/Kolkata"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(*args: int) -> datetime:
    return datetime(*args)


# Expected instants below are worked out by hand from the offsets in force, e.g. EDT = -4,
# EST = -5, BST = +1, AEDT = +11, AEST = +10, IST = +5:30, LHST = +10:30, LHDT = +11.
RESOLVE_CASES = [
    # America/New_York falls back 2026-11-01 02:00 EDT -> 01:00 EST.
    (NY, local(2026, 11, 1, 0, 59), utc(2026, 11, 1, 4, 59)),
    (NY, local(2026, 11, 1, 1, 0), utc(2026, 11, 1, 5, 0)),
    (NY, local(2026, 11, 1, 1, 30), utc(2026, 11, 1, 5, 30)),  # fold: first (EDT)
    (NY, local(2026, 11, 1, 1, 59), utc(2026, 11, 1, 5, 59)),
    (NY, local(2026, 11, 1, 2, 0), utc(2026, 11, 1, 7, 0)),
    (NY, local(2026, 11, 1, 2, 30), utc(2026, 11, 1, 7, 30)),
    # America/New_York springs forward 2027-03-14 02:00 EST -> 03:00 EDT.
    (NY, local(2027, 3, 14, 1, 59), utc(2027, 3, 14, 6, 59)),
    (NY, local(2027, 3, 14, 2, 0), utc(2027, 3, 14, 7, 0)),  # gap -> 03:00 EDT
    (NY, local(2027, 3, 14, 2, 30), utc(2027, 3, 14, 7, 30)),  # gap -> 03:30 EDT
    (NY, local(2027, 3, 14, 3, 0), utc(2027, 3, 14, 7, 0)),
    (NY, local(2027, 3, 14, 3, 30), utc(2027, 3, 14, 7, 30)),
    # Europe/London: spring 2027-03-28 01:00 GMT -> 02:00 BST; autumn 2026-10-25 02:00 -> 01:00.
    (LONDON, local(2027, 3, 28, 1, 30), utc(2027, 3, 28, 1, 30)),  # gap -> 02:30 BST
    (LONDON, local(2027, 3, 28, 2, 30), utc(2027, 3, 28, 1, 30)),
    (LONDON, local(2026, 10, 25, 1, 30), utc(2026, 10, 25, 0, 30)),  # fold: first (BST)
    (LONDON, local(2026, 10, 25, 2, 30), utc(2026, 10, 25, 2, 30)),
    # Australia/Sydney: falls back 2027-04-04 03:00 AEDT -> 02:00 AEST;
    # springs forward 2026-10-04 02:00 AEST -> 03:00 AEDT.
    (SYDNEY, local(2027, 4, 4, 2, 30), utc(2027, 4, 3, 15, 30)),  # fold: first (AEDT)
    (SYDNEY, local(2027, 4, 4, 1, 30), utc(2027, 4, 3, 14, 30)),
    (SYDNEY, local(2026, 10, 4, 2, 30), utc(2026, 10, 3, 16, 30)),  # gap -> 03:30 AEDT
    (SYDNEY, local(2026, 10, 4, 1, 30), utc(2026, 10, 3, 15, 30)),
    # Asia/Kolkata never changes: +05:30 all year.
    (KOLKATA, local(2027, 3, 14, 2, 30), utc(2027, 3, 13, 21, 0)),
    (KOLKATA, local(2026, 11, 1, 1, 30), utc(2026, 10, 31, 20, 0)),
    # Australia/Lord_Howe moves by 30 minutes: 2026-10-04 02:00 LHST -> 02:30 LHDT.
    ("Australia/Lord_Howe", local(2026, 10, 4, 2, 15), utc(2026, 10, 3, 15, 45)),
]


@pytest.mark.parametrize(("zone", "wall", "expected"), RESOLVE_CASES)
def test_resolve_local_follows_the_policy(zone: str, wall: datetime, expected: datetime) -> None:
    got = resolve_local(wall, get_zone(zone))
    assert got == expected
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("zone", "wall", "shown"),
    [
        (NY, local(2027, 3, 14, 2, 30), local(2027, 3, 14, 3, 30)),
        (NY, local(2027, 3, 14, 2, 0), local(2027, 3, 14, 3, 0)),
        (LONDON, local(2027, 3, 28, 1, 15), local(2027, 3, 28, 2, 15)),
        (SYDNEY, local(2026, 10, 4, 2, 45), local(2026, 10, 4, 3, 45)),
        ("Australia/Lord_Howe", local(2026, 10, 4, 2, 15), local(2026, 10, 4, 2, 45)),
        (NY, local(2026, 11, 1, 1, 30), local(2026, 11, 1, 1, 30)),
    ],
)
def test_gap_times_move_forward_by_the_gap(zone: str, wall: datetime, shown: datetime) -> None:
    tz = get_zone(zone)
    assert resolve_local(wall, tz).astimezone(tz).replace(tzinfo=None) == shown


def test_resolve_local_rejects_aware_input() -> None:
    with pytest.raises(TypeError):
        resolve_local(utc(2027, 3, 14, 2, 30), get_zone(NY))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:00", time(0, 0)),
        ("08:30", time(8, 30)),
        ("20:00", time(20, 0)),
        ("23:59", time(23, 59)),
    ],
)
def test_parse_local_time_accepts_hh_mm(text: str, expected: time) -> None:
    assert parse_local_time(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "24:00",
        "12:60",
        "8:30",
        "08:3",
        "0830",
        "08:30:00",
        " 08:30",
        "08:30 ",
        "08:30\n",
        "8.30",
        "ab:cd",
        "\u0661\u0662:\u0663\u0660",  # Arabic-Indic digits match \d but are not HH:MM
        "08:30pm",
        None,
        830,
    ],
)
def test_parse_local_time_rejects_anything_else(text: object) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_local_time(text)  # type: ignore[arg-type]
    assert info.value.field == "time"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "name", [NY, LONDON, SYDNEY, KOLKATA, "UTC", "Etc/GMT+5", "Pacific/Chatham"]
)
def test_get_zone_accepts_iana_names(name: str) -> None:
    zone = get_zone(name)
    assert zone.key == name
    assert get_zone(name) is zone


@pytest.mark.parametrize(
    "name",
    [
        "",
        "localtime",
        "posixrules",
        "Factory",
        "/etc/localtime",
        "/usr/share/zoneinfo/America/New_York",
        "../../etc/passwd",
        "America/../Europe/London",
        "America/New_York/",
        "america/new_york",
        " America/New_York",
        "America/New_York ",
        "America/New York",
        "Mars/Olympus_Mons",
        "EDT",
        "+05:30",
        None,
        42,
    ],
)
def test_get_zone_rejects_junk(name: object) -> None:
    with pytest.raises(ScheduleError) as info:
        get_zone(name)  # type: ignore[arg-type]
    assert info.value.field == "timezone"


@pytest.mark.parametrize(
    ("rule", "normalised"),
    [
        ("FREQ=DAILY", "FREQ=DAILY"),
        ("RRULE:FREQ=WEEKLY;BYDAY=MO,WE", "FREQ=WEEKLY;BYDAY=MO,WE"),
        ("rrule:freq=weekly;byday=mo", "FREQ=WEEKLY;BYDAY=MO"),
        ("  FREQ=DAILY  ", "FREQ=DAILY"),
        ("INTERVAL=2;FREQ=WEEKLY", "FREQ=WEEKLY;INTERVAL=2"),
        ("FREQ=DAILY;BYHOUR=8,9", "FREQ=DAILY;BYHOUR=8,9"),
        ("FREQ=DAILY;BYHOUR=8;BYMINUTE=15", "FREQ=DAILY;BYMINUTE=15;BYHOUR=8"),
        ("FREQ=HOURLY", "FREQ=HOURLY"),
        ("FREQ=HOURLY;INTERVAL=3", "FREQ=HOURLY;INTERVAL=3"),
        ("FREQ=MONTHLY;BYDAY=1MO", "FREQ=MONTHLY;BYDAY=1MO"),
        ("FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=1", "FREQ=YEARLY;BYMONTHDAY=1;BYMONTH=1"),
        ("FREQ=DAILY;COUNT=10", "FREQ=DAILY;COUNT=10"),
        ("FREQ=DAILY;UNTIL=20271231T200000", "FREQ=DAILY;UNTIL=20271231T200000"),
        ("FREQ=DAILY;UNTIL=20271231", "FREQ=DAILY;UNTIL=20271231T235959"),
        ("FREQ=WEEKLY;BYDAY=MO;WKST=SU", "FREQ=WEEKLY;BYDAY=MO;WKST=SU"),
        ("FREQ=DAILY;BYMINUTE=0,0", "FREQ=DAILY;BYMINUTE=0,0"),
    ],
)
def test_validate_rrule_accepts_and_normalises(rule: str, normalised: str) -> None:
    assert validate_rrule(rule) == normalised


@pytest.mark.parametrize(
    "rule",
    [
        "",
        "   ",
        "RRULE:",
        "not a rule",
        "FREQ=MINUTELY",
        "FREQ=SECONDLY",
        "FREQ=MINUTELY;INTERVAL=120",
        "FREQ=DAILY;BYMINUTE=0,15",
        "FREQ=DAILY;BYMINUTE=0,30",
        "FREQ=HOURLY;BYMINUTE=0,30",
        "FREQ=WEEKLY;BYSECOND=0,30",
        "FREQ=HOURLY;INTERVAL=0",
        "FREQ=DAILY;INTERVAL=0",
        "FREQ=DAILY;INTERVAL=-1",
        "FREQ=DAILY;INTERVAL=1.5",
        "FREQ=DAILY;COUNT=0",
        "FREQ=DAILY;COUNT=-1",
        "FREQ=DAILY;UNTIL=20270101T000000Z",
        "FREQ=DAILY;UNTIL=2027-01-01",
        "FREQ=DAILY;UNTIL=garbage",
        "FREQ=DAILY;COUNT=3;UNTIL=20270101T000000",
        "DTSTART:20260101T090000\nRRULE:FREQ=DAILY",
        "DTSTART=20260101T090000;FREQ=DAILY",
        "FREQ=DAILY;FREQ=WEEKLY",
        "FREQ=FORTNIGHTLY",
        "BYDAY=MO",
        "FREQ=WEEKLY;BYDAY=XX",
        "FREQ=DAILY;BYHOUR=24",
        "FREQ=MONTHLY;BYMONTHDAY=0",
        "FREQ=YEARLY;BYYEARDAY=0",
        "FREQ=DAILY;BYEASTER=0",
        "FREQ=DAILY;X-NAME=1",
        "FREQ=DAILY;;",
        "FREQ=DAILY;BYHOUR=",
        None,
    ],
)
def test_validate_rrule_rejects(rule: object) -> None:
    with pytest.raises(ScheduleError) as info:
        validate_rrule(rule)  # type: ignore[arg-type]
    assert info.value.field == "rrule"
    assert str(info.value)


# TSML numbers days from Sunday = 0; Python's weekday() has Monday = 0 and BMLT Sunday = 1.
TSML_DAYS = [(0, "SU"), (1, "MO"), (2, "TU"), (3, "WE"), (4, "TH"), (5, "FR"), (6, "SA")]


@pytest.mark.parametrize(("day", "byday"), TSML_DAYS)
def test_weekly_rrule_for_day(day: int, byday: str) -> None:
    assert weekly_rrule_for_day(day) == f"FREQ=WEEKLY;BYDAY={byday}"


@pytest.mark.parametrize("day", [-1, 7, True, "1", 1.0, None])
def test_weekly_rrule_for_day_rejects_bad_days(day: object) -> None:
    with pytest.raises(ScheduleError):
        weekly_rrule_for_day(day)  # type: ignore[arg-type]


# 2026-11-01 is a Sunday, so TSML day d falls on 2026-11-01 + d days (and a week later).
@pytest.mark.parametrize(("day", "byday"), TSML_DAYS)
def test_weekly_meeting_lands_on_its_tsml_day(day: int, byday: str) -> None:
    assert date(2026, 11, 1).isoweekday() == 7
    got = expand_weekly_meeting(
        day, time(19, 0), NY, date(2026, 1, 1), utc(2026, 11, 1, 5), utc(2026, 11, 15, 5)
    )
    first = date(2026, 11, 1) + timedelta(days=day)
    assert [o.local for o in got] == [
        datetime.combine(first, time(19, 0)),
        datetime.combine(first + timedelta(days=7), time(19, 0)),
    ]
    assert all(o.local.isoweekday() % 7 == day for o in got)
    # 19:00 EST is 00:00Z the next day.
    assert [o.at for o in got] == [
        datetime.combine(first + timedelta(days=1), time(0, 0), tzinfo=UTC),
        datetime.combine(first + timedelta(days=8), time(0, 0), tzinfo=UTC),
    ]


def occ(wall: datetime, at: datetime) -> Occurrence:
    return Occurrence(local=wall, at=at)


EXPAND_CASES = [
    pytest.param(
        NY,
        "FREQ=DAILY",
        time(1, 30),
        [
            occ(local(2026, 10, 31, 1, 30), utc(2026, 10, 31, 5, 30)),
            occ(local(2026, 11, 1, 1, 30), utc(2026, 11, 1, 5, 30)),
            occ(local(2026, 11, 2, 1, 30), utc(2026, 11, 2, 6, 30)),
        ],
        utc(2026, 10, 31),
        utc(2026, 11, 3),
        id="ny-0130-fall-back",
    ),
    pytest.param(
        NY,
        "FREQ=DAILY",
        time(2, 30),
        [
            occ(local(2026, 10, 31, 2, 30), utc(2026, 10, 31, 6, 30)),
            occ(local(2026, 11, 1, 2, 30), utc(2026, 11, 1, 7, 30)),
            occ(local(2026, 11, 2, 2, 30), utc(2026, 11, 2, 7, 30)),
        ],
        utc(2026, 10, 31),
        utc(2026, 11, 3),
        id="ny-0230-fall-back",
    ),
    pytest.param(
        NY,
        "FREQ=DAILY",
        time(1, 30),
        [
            occ(local(2027, 3, 13, 1, 30), utc(2027, 3, 13, 6, 30)),
            occ(local(2027, 3, 14, 1, 30), utc(2027, 3, 14, 6, 30)),
            occ(local(2027, 3, 15, 1, 30), utc(2027, 3, 15, 5, 30)),
        ],
        utc(2027, 3, 13),
        utc(2027, 3, 16),
        id="ny-0130-spring-forward",
    ),
    pytest.param(
        NY,
        "FREQ=DAILY",
        time(2, 30),
        [
            occ(local(2027, 3, 13, 2, 30), utc(2027, 3, 13, 7, 30)),
            occ(local(2027, 3, 14, 2, 30), utc(2027, 3, 14, 7, 30)),  # sent 03:30 EDT
            occ(local(2027, 3, 15, 2, 30), utc(2027, 3, 15, 6, 30)),
        ],
        utc(2027, 3, 13),
        utc(2027, 3, 16),
        id="ny-0230-spring-forward",
    ),
    pytest.param(
        LONDON,
        "FREQ=WEEKLY;BYDAY=SU",
        time(1, 30),
        [
            occ(local(2027, 3, 21, 1, 30), utc(2027, 3, 21, 1, 30)),
            occ(local(2027, 3, 28, 1, 30), utc(2027, 3, 28, 1, 30)),  # sent 02:30 BST
            occ(local(2027, 4, 4, 1, 30), utc(2027, 4, 4, 0, 30)),
        ],
        utc(2027, 3, 20),
        utc(2027, 4, 5),
        id="london-0130-spring-forward",
    ),
    pytest.param(
        LONDON,
        "FREQ=WEEKLY;BYDAY=SU",
        time(1, 30),
        [
            occ(local(2026, 10, 18, 1, 30), utc(2026, 10, 18, 0, 30)),
            occ(local(2026, 10, 25, 1, 30), utc(2026, 10, 25, 0, 30)),  # first 01:30 (BST)
            occ(local(2026, 11, 1, 1, 30), utc(2026, 11, 1, 1, 30)),
        ],
        utc(2026, 10, 17),
        utc(2026, 11, 2),
        id="london-0130-fall-back",
    ),
    pytest.param(
        SYDNEY,
        "FREQ=WEEKLY;BYDAY=SU",
        time(2, 30),
        [
            occ(local(2027, 3, 28, 2, 30), utc(2027, 3, 27, 15, 30)),
            occ(local(2027, 4, 4, 2, 30), utc(2027, 4, 3, 15, 30)),  # first 02:30 (AEDT)
            occ(local(2027, 4, 11, 2, 30), utc(2027, 4, 10, 16, 30)),
        ],
        utc(2027, 3, 27),
        utc(2027, 4, 12),
        id="sydney-0230-fall-back",
    ),
    pytest.param(
        SYDNEY,
        "FREQ=WEEKLY;BYDAY=SU",
        time(2, 30),
        [
            occ(local(2026, 9, 27, 2, 30), utc(2026, 9, 26, 16, 30)),
            occ(local(2026, 10, 4, 2, 30), utc(2026, 10, 3, 16, 30)),  # sent 03:30 AEDT
            occ(local(2026, 10, 11, 2, 30), utc(2026, 10, 10, 15, 30)),
        ],
        utc(2026, 9, 26),
        utc(2026, 10, 12),
        id="sydney-0230-spring-forward",
    ),
    pytest.param(
        KOLKATA,
        "FREQ=DAILY",
        time(2, 30),
        [
            occ(local(2027, 3, 14, 2, 30), utc(2027, 3, 13, 21, 0)),
            occ(local(2027, 3, 15, 2, 30), utc(2027, 3, 14, 21, 0)),
        ],
        utc(2027, 3, 13, 12),
        utc(2027, 3, 15, 12),
        id="kolkata-no-dst",
    ),
    pytest.param(
        # The window opens at the jump (03:00 EDT); 02:30 resolves inside it although its
        # wall time is earlier than the window's.
        NY,
        "FREQ=DAILY",
        time(2, 30),
        [occ(local(2027, 3, 14, 2, 30), utc(2027, 3, 14, 7, 30))],
        utc(2027, 3, 14, 7),
        utc(2027, 3, 14, 7, 31),
        id="ny-gap-time-just-inside-window",
    ),
    pytest.param(
        # The window opens at local midnight of Apia's 31st; noon of the skipped 30th lands in it.
        "Pacific/Apia",
        "FREQ=DAILY",
        time(12, 0),
        [occ(local(2011, 12, 30, 12, 0), utc(2011, 12, 30, 22, 0))],
        utc(2011, 12, 30, 10),
        utc(2011, 12, 31),
        id="apia-skipped-day-window-edge",
    ),
    pytest.param(
        # Hourly through the gap: 02:30 moves to 03:30 EDT, the instant of the real 03:30,
        # so that instant is texted once, as the earlier (02:30) occurrence.
        NY,
        "FREQ=HOURLY",
        time(0, 30),
        [
            occ(local(2027, 3, 14, 0, 30), utc(2027, 3, 14, 5, 30)),
            occ(local(2027, 3, 14, 1, 30), utc(2027, 3, 14, 6, 30)),
            occ(local(2027, 3, 14, 2, 30), utc(2027, 3, 14, 7, 30)),
            occ(local(2027, 3, 14, 4, 30), utc(2027, 3, 14, 8, 30)),
        ],
        utc(2027, 3, 14, 5),
        utc(2027, 3, 14, 9),
        id="ny-hourly-gap-collides-once",
    ),
    pytest.param(
        NY,
        "FREQ=HOURLY",
        time(0, 30),
        [
            occ(local(2026, 11, 1, 0, 30), utc(2026, 11, 1, 4, 30)),
            occ(local(2026, 11, 1, 1, 30), utc(2026, 11, 1, 5, 30)),
            occ(local(2026, 11, 1, 2, 30), utc(2026, 11, 1, 7, 30)),
            occ(local(2026, 11, 1, 3, 30), utc(2026, 11, 1, 8, 30)),
        ],
        utc(2026, 11, 1, 4),
        utc(2026, 11, 1, 9),
        id="ny-hourly-fold-skips-repeat",
    ),
    pytest.param(
        # Samoa skipped 2011-12-30 entirely (-10 -> +14): noon that day moves a whole day on
        # and coincides with noon on the 31st.
        "Pacific/Apia",
        "FREQ=DAILY",
        time(12, 0),
        [
            occ(local(2011, 12, 29, 12, 0), utc(2011, 12, 29, 22, 0)),
            occ(local(2011, 12, 30, 12, 0), utc(2011, 12, 30, 22, 0)),
            occ(local(2012, 1, 1, 12, 0), utc(2011, 12, 31, 22, 0)),
        ],
        utc(2011, 12, 29),
        utc(2012, 1, 1),
        id="apia-skipped-day",
    ),
]


@pytest.mark.parametrize(("zone", "rule", "at_time", "expected", "start", "end"), EXPAND_CASES)
def test_expand_across_transitions(
    zone: str,
    rule: str,
    at_time: time,
    expected: list[Occurrence],
    start: datetime,
    end: datetime,
) -> None:
    assert expand(rule, at_time, zone, date(2011, 1, 1), start, end) == expected


# Daily 20:00 commitments: the local time never moves, the UTC instant shifts by an hour.
DAILY_2000_CASES = [
    (NY, date(2026, 10, 31), utc(2026, 11, 1, 0), utc(2026, 11, 2, 1)),
    (NY, date(2027, 3, 13), utc(2027, 3, 14, 1), utc(2027, 3, 15, 0)),
    (LONDON, date(2027, 3, 27), utc(2027, 3, 27, 20), utc(2027, 3, 28, 19)),
    (LONDON, date(2026, 10, 24), utc(2026, 10, 24, 19), utc(2026, 10, 25, 20)),
    (SYDNEY, date(2027, 4, 3), utc(2027, 4, 3, 9), utc(2027, 4, 4, 10)),
    (SYDNEY, date(2026, 10, 3), utc(2026, 10, 3, 10), utc(2026, 10, 4, 9)),
    (KOLKATA, date(2027, 3, 13), utc(2027, 3, 13, 14, 30), utc(2027, 3, 14, 14, 30)),
]


@pytest.mark.parametrize(("zone", "eve", "first_at", "second_at"), DAILY_2000_CASES)
def test_daily_2000_commitment_keeps_local_time(
    zone: str, eve: date, first_at: datetime, second_at: datetime
) -> None:
    window_start = first_at - timedelta(hours=1)
    window_end = second_at + timedelta(hours=1)
    got = expand("FREQ=DAILY", time(20, 0), zone, date(2026, 1, 1), window_start, window_end)
    assert [o.local for o in got] == [
        datetime.combine(eve, time(20, 0)),
        datetime.combine(eve + timedelta(days=1), time(20, 0)),
    ]
    assert [o.at for o in got] == [first_at, second_at]


def test_exdates_remove_local_occurrences() -> None:
    start, end = utc(2026, 10, 31, 12), utc(2026, 11, 3, 12)
    got = expand(
        "FREQ=DAILY",
        time(20, 0),
        NY,
        date(2026, 1, 1),
        start,
        end,
        exdates=[local(2026, 11, 1, 20, 0), local(2026, 11, 1, 20, 1), local(2030, 1, 1, 20, 0)],
    )
    assert [o.local for o in got] == [local(2026, 10, 31, 20, 0), local(2026, 11, 2, 20, 0)]


def test_exdate_of_a_gap_time_uses_the_scheduled_wall_time() -> None:
    got = expand(
        "FREQ=DAILY",
        time(2, 30),
        NY,
        date(2027, 1, 1),
        utc(2027, 3, 13),
        utc(2027, 3, 16),
        exdates=iter([local(2027, 3, 14, 2, 30)]),
    )
    assert [o.at for o in got] == [utc(2027, 3, 13, 7, 30), utc(2027, 3, 15, 6, 30)]


def test_exdates_must_be_naive() -> None:
    with pytest.raises(TypeError):
        expand(
            "FREQ=DAILY",
            time(20, 0),
            NY,
            date(2026, 1, 1),
            utc(2026, 10, 31),
            utc(2026, 11, 3),
            exdates=[utc(2026, 11, 2, 1)],
        )


def test_starts_on_in_the_middle_of_the_window() -> None:
    got = expand(
        "FREQ=DAILY", time(20, 0), NY, date(2026, 11, 4), utc(2026, 11, 1), utc(2026, 11, 9)
    )
    assert [o.local.date() for o in got] == [date(2026, 11, d) for d in (4, 5, 6, 7)]


def test_starts_on_after_the_window_gives_nothing() -> None:
    assert (
        expand("FREQ=DAILY", time(20, 0), NY, date(2027, 1, 1), utc(2026, 11, 1), utc(2026, 11, 8))
        == []
    )


def test_window_is_half_open() -> None:
    # 20:00 EST on 2026-11-02 is 01:00Z on 2026-11-03.
    at = utc(2026, 11, 3, 1)
    assert [
        o.at
        for o in expand("FREQ=DAILY", time(20), NY, date(2026, 1, 1), at, at + timedelta(hours=1))
    ] == [at]
    assert expand("FREQ=DAILY", time(20), NY, date(2026, 1, 1), at - timedelta(hours=1), at) == []


@pytest.mark.parametrize(
    ("start", "end"), [(utc(2026, 11, 8), utc(2026, 11, 1)), (utc(2026, 11, 1), utc(2026, 11, 1))]
)
def test_empty_or_backwards_window(start: datetime, end: datetime) -> None:
    assert expand("FREQ=DAILY", time(20), NY, date(2026, 1, 1), start, end) == []


def test_naive_window_is_refused() -> None:
    with pytest.raises(TypeError):
        expand(
            "FREQ=DAILY", time(20), NY, date(2026, 1, 1), datetime(2026, 11, 1), utc(2026, 11, 2)
        )


@pytest.mark.parametrize(
    ("rule", "zone", "field"),
    [("FREQ=MINUTELY", NY, "rrule"), ("FREQ=DAILY", "Nowhere/Special", "timezone")],
)
def test_expand_validates_its_inputs(rule: str, zone: str, field: str) -> None:
    with pytest.raises(ScheduleError) as info:
        expand(rule, time(20), zone, date(2026, 1, 1), utc(2026, 11, 1), utc(2026, 11, 2))
    assert info.value.field == field


def test_aware_local_time_is_refused() -> None:
    with pytest.raises(ScheduleError) as info:
        expand(
            "FREQ=DAILY",
            time(20, tzinfo=UTC),
            NY,
            date(2026, 1, 1),
            utc(2026, 11, 1),
            utc(2026, 11, 2),
        )
    assert info.value.field == "time"


@pytest.mark.parametrize(
    ("rule", "last_day", "count"),
    [
        ("FREQ=DAILY;UNTIL=20271231", date(2027, 12, 31), 5),  # a bare date includes that day
        ("FREQ=DAILY;UNTIL=20271231T200000", date(2027, 12, 31), 5),  # inclusive
        ("FREQ=DAILY;UNTIL=20271231T195959", date(2027, 12, 30), 4),
        ("FREQ=DAILY;COUNT=3", date(2027, 12, 29), 3),
    ],
)
def test_until_and_count(rule: str, last_day: date, count: int) -> None:
    got = expand(rule, time(20), NY, date(2027, 12, 27), utc(2027, 12, 1), utc(2028, 2, 1))
    assert len(got) == count
    assert got[-1].local == datetime.combine(last_day, time(20))


@pytest.mark.parametrize(
    ("rule", "starts_on", "period_days", "weekdays"),
    [
        ("FREQ=DAILY;INTERVAL=3", date(2026, 1, 1), 3, None),
        ("FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH", date(2026, 1, 5), 14, {1, 4}),
        ("FREQ=WEEKLY;BYDAY=SA", date(1901, 1, 1), 7, {6}),
    ],
)
def test_long_rules_keep_their_phase_years_later(
    rule: str, starts_on: date, period_days: int, weekdays: set[int] | None
) -> None:
    got = expand(rule, time(9), LONDON, starts_on, utc(2031, 6, 1), utc(2031, 8, 1))
    assert got
    for o in got:
        offset = (o.local.date() - starts_on).days
        if weekdays is None:
            assert offset % period_days == 0
        else:
            # TSML numbering of isoweekday: Sunday 0 .. Saturday 6.
            assert o.local.isoweekday() % 7 in weekdays
            week_start = starts_on - timedelta(days=starts_on.weekday())
            assert ((o.local.date() - week_start).days // 7) % (period_days // 7) == 0


@pytest.mark.parametrize("rule", ["FREQ=HOURLY", "FREQ=DAILY", "FREQ=WEEKLY;BYDAY=MO"])
def test_short_window_on_an_ancient_rule_is_fast(rule: str) -> None:
    # Iterating hourly from year 1 would take minutes; the window itself is a day.
    began = clock.perf_counter()
    got = expand(rule, time(9), NY, date(1, 1, 1), utc(2027, 3, 14), utc(2027, 3, 22))
    assert clock.perf_counter() - began < 2.0
    assert got
    assert all(utc(2027, 3, 14) <= o.at < utc(2027, 3, 22) for o in got)


@pytest.mark.parametrize(
    ("zone", "year", "observes"),
    [
        (NY, 2026, True),
        (LONDON, 2027, True),
        (SYDNEY, 2026, True),
        ("Europe/Dublin", 2026, True),  # negative DST in winter still counts
        (KOLKATA, 2026, False),
        ("Asia/Tokyo", 2026, False),
        ("UTC", 2026, False),
        ("America/Phoenix", 2026, False),
        ("Australia/Brisbane", 2026, False),
        ("America/Sao_Paulo", 2018, True),
        ("America/Sao_Paulo", 2020, False),  # Brazil dropped DST in 2019
        ("Europe/Moscow", 2010, True),
        ("Europe/Moscow", 2015, False),
    ],
)
def test_zone_has_dst(zone: str, year: int, observes: bool) -> None:
    assert zone_has_dst(zone, year) is observes


def test_zone_has_dst_defaults_to_now() -> None:
    assert zone_has_dst(NY) is True
    assert zone_has_dst(KOLKATA) is False
    with pytest.raises(ScheduleError):
        zone_has_dst("Nowhere/Special")


@pytest.mark.parametrize(
    ("at_time", "zone", "warns"),
    [
        (time(0, 59), NY, False),
        (time(1, 0), NY, True),
        (time(1, 30), NY, True),
        (time(2, 30), NY, True),
        (time(2, 59), NY, True),
        (time(3, 0), NY, False),
        (time(20, 0), NY, False),
        (time(1, 30), LONDON, True),
        (time(2, 30), SYDNEY, True),
        (time(2, 30), KOLKATA, False),
        (time(2, 30), "America/Phoenix", False),
    ],
)
def test_dst_warning(at_time: time, zone: str, warns: bool) -> None:
    warning = dst_warning(at_time, zone)
    if warns:
        assert warning is not None
        assert "DST" in warning
        assert "first" in warning
    else:
        assert warning is None


def test_dst_warning_rejects_bad_zone() -> None:
    with pytest.raises(ScheduleError):
        dst_warning(time(2, 30), "localtime")
