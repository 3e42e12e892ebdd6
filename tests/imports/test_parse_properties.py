"""Property tests: no JSON value, text or byte string makes a parser raise anything but FeedError."""

from __future__ import annotations

import json
import re
import unicodedata
import zoneinfo
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.meeting_import import (
    ATTENDANCE_OPTIONS,
    FeedError,
    ParseResult,
    parse_bmlt,
    parse_csv,
    parse_feed,
    parse_tsml,
)

ZONES = zoneinfo.available_timezones()
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _plausible(*examples: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from(examples) | json_values


TSML_FIELDS = {
    "name": _plausible("Big Book", "  <b>Men&amp;s</b> ", "x" * 300, "\x00\u202e", "\ud800x"),
    "slug": _plausible("a", "b", 7, 7.0, "a-1", " "),
    "day": _plausible(0, "6", "Sunday", "Sun", [1, 3], [], "", 7, -1, 2.5, True),
    "time": _plausible("7:30", "19:30:00", "7:30 PM", "noon", "", "25:61", "12 am"),
    "end_time": _plausible("8:30", "20:30", "", "9 PM"),
    "timezone": _plausible(
        "America/New_York", "america/chicago", "", "Mars/Base", "/etc/passwd", "../x"
    ),
    "types": _plausible(["O", 11, "12x12"], "O, D", "", [None, True, 1.5], "TC", ["ONL"]),
    "conference_url": _plausible("https://zoom.us/j/1", "javascript:alert(1)", "http://[::1", ""),
    "conference_phone": _plausible("+1 555 0100", "", "call"),
    "formatted_address": _plausible("1 Main St", "", "Town"),
    "address": _plausible("1 Main St"),
    "city": _plausible("Springfield"),
    "approximate": _plausible("yes", "no", True),
    "notes": _plausible("<p>a</p><script>x</script>", "&#0;&#xD800;", "a\r\nb"),
    "regions": _plausible(["A", "B"], [1, None]),
    "region": _plausible("North"),
    "updated": _plausible(
        "2024-01-01 00:00:00", "2024-13-45 99:99:99", "9999-12-31T23:59:59+14:00"
    ),
}
BMLT_FIELDS = {
    "id_bigint": _plausible("1", "2", 3, ""),
    "meeting_name": _plausible("Clean", ""),
    "weekday_tinyint": _plausible("1", "7", "0", "8", 3),
    "start_time": _plausible("19:00:00", "", "x"),
    "duration_time": _plausible("01:00:00", "99:99", ""),
    "time_zone": _plausible("America/New_York", ""),
    "venue_type": _plausible("1", "2", "3", 2),
    "virtual_meeting_link": _plausible("https://zoom.us/j/1", ""),
    "phone_meeting_number": _plausible("+1 555", ""),
    "formats": _plausible("O,BT,WC", "TC", ""),
    "published": _plausible("1", "0", 0),
}
tsml_rows = st.fixed_dictionaries({}, optional=TSML_FIELDS) | json_values
bmlt_rows = st.fixed_dictionaries({}, optional=BMLT_FIELDS) | json_values
default_zones = st.sampled_from([None, "UTC", "America/Chicago"])


def _clean(text: str, *, newlines: bool = False) -> bool:
    return all(
        (ch == "\n" and newlines) or unicodedata.category(ch) not in ("Cc", "Cs") for ch in text
    )


def check_result(result: ParseResult) -> None:
    """Assert the invariants every parse result must hold."""
    slugs = [r.slug for r in result.records]
    assert len(slugs) == len(set(slugs))
    for record in result.records:
        assert record.slug and _clean(record.slug) and len(record.slug) <= 210
        assert record.name and _clean(record.name) and len(record.name) <= 255
        assert record.name == record.name.strip()
        assert (record.day is None) == (record.time is None) == (record.end_time is None)
        if record.day is not None:
            assert 0 <= record.day <= 6
            assert HHMM.match(record.time) and HHMM.match(record.end_time)
            assert record.timezone in ZONES
        assert record.timezone is None or record.timezone in ZONES
        assert record.attendance in ATTENDANCE_OPTIONS
        assert len(record.types) == len(record.type_labels)
        assert all(code == code.upper() and code for code in record.types)
        assert record.conference_url is None or record.conference_url.startswith(
            ("http://", "https://")
        )
        if record.notes is not None:
            assert _clean(record.notes, newlines=True) and len(record.notes) <= 10_000
        for text in (record.location, record.address, record.region, record.conference_phone):
            assert text is None or (text and _clean(text))
        assert len(record.content_hash()) == 64
    assert all(isinstance(s.reason, str) and s.reason for s in result.skipped)


@SETTINGS
@given(data=json_values, tz=default_zones)
def test_tsml_any_json_value(data: Any, tz: str | None) -> None:
    try:
        result = parse_tsml(data, default_timezone=tz)
    except FeedError:
        assert not isinstance(data, list)
        return
    check_result(result)


@SETTINGS
@given(rows=st.lists(tsml_rows, max_size=8), tz=default_zones)
def test_tsml_meeting_shaped_rows(rows: list[Any], tz: str | None) -> None:
    result = parse_tsml(rows, default_timezone=tz)
    check_result(result)
    # Every input row is accounted for: imported (maybe expanded) or skipped.
    assert len(result.records) + len(result.skipped) >= len(rows)


@SETTINGS
@given(data=json_values | st.lists(bmlt_rows, max_size=8), tz=default_zones)
def test_bmlt_any_json_value(data: Any, tz: str | None) -> None:
    try:
        result = parse_bmlt(data, default_timezone=tz)
    except FeedError:
        assert not isinstance(data, list)
        return
    check_result(result)


csv_cells = st.text(max_size=12) | st.sampled_from(
    ["Monday", "7:30 PM", "O, D", "a", "America/Chicago"]
)


@SETTINGS
@given(
    text=st.text()
    | st.lists(st.lists(csv_cells, max_size=6), max_size=5).map(
        lambda rows: "Name,Day,Time,Slug,Types,Timezone\n" + "\n".join(",".join(r) for r in rows)
    ),
    tz=default_zones,
)
def test_csv_any_text(text: str, tz: str | None) -> None:
    try:
        result = parse_csv(text, default_timezone=tz)
    except FeedError:
        return
    check_result(result)


@SETTINGS
@given(
    raw=st.binary(max_size=300),
    content_type=st.sampled_from([None, "application/json", "text/csv"]),
)
def test_feed_any_bytes(raw: bytes, content_type: str | None) -> None:
    try:
        result = parse_feed(raw, content_type=content_type, default_timezone="UTC")
    except FeedError:
        return
    check_result(result)


@SETTINGS
@given(data=json_values | st.lists(tsml_rows, max_size=6) | st.lists(bmlt_rows, max_size=6))
def test_feed_any_json_document(data: Any) -> None:
    raw = json.dumps(data).encode()
    try:
        result = parse_feed(raw, content_type="application/json", default_timezone="UTC")
    except FeedError:
        return
    check_result(result)
