"""Tests for the NA BMLT GetSearchResults parser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from service.meeting_import import FeedError, MeetingRecord, Skipped, parse_bmlt

BASE = {
    "id_bigint": "9",
    "meeting_name": "Test",
    "weekday_tinyint": "2",
    "start_time": "19:00:00",
    "duration_time": "01:00:00",
    "time_zone": "America/New_York",
    "venue_type": "1",
    "location_street": "1 Main St",
    "published": "1",
}


def _one(row: dict[str, Any], **kwargs: Any) -> MeetingRecord:
    result = parse_bmlt([row], default_timezone=kwargs.pop("default_timezone", "UTC"), **kwargs)
    assert result.skipped == []
    (record,) = result.records
    return record


@pytest.fixture
def result(fixture_json: Callable[[str], Any]):
    return parse_bmlt(fixture_json("bmlt.json"), default_timezone="America/Chicago")


def test_records_and_skips(result) -> None:
    assert result.format == "bmlt"
    assert [r.slug for r in result.records] == ["101", "102", "103", "104", "107"]
    assert result.skipped == [
        Skipped("105", "unpublished"),
        Skipped("101", "duplicate slug"),
        Skipped("106", "invalid day"),
    ]


def test_in_person_meeting(result) -> None:
    assert result.records[0] == MeetingRecord(
        slug="101",
        name="Clean & Serene",
        day=1,  # BMLT 2 = Monday
        time="19:30",
        end_time="21:00",  # start + duration 01:30:00
        timezone="America/New_York",
        fellowship="na",
        location="Grace Church",
        address="1 Broadway, New York, NY 10004",
        conference_url=None,
        conference_phone=None,
        types=("O", "BT", "WC"),
        type_labels=("Open", "Basic Text", "Wheelchair Accessible"),
        notes="Literature available\n\nBasement, side entrance",
        attendance="in_person",
        region=None,
        updated=None,
    )


def test_virtual_meeting_uses_default_zone_and_wraps_midnight(result) -> None:
    record = result.records[1]
    assert (record.day, record.time, record.end_time) == (0, "23:30", "00:30")  # BMLT 1 = Sunday
    assert record.timezone == "America/Chicago"  # empty time_zone -> default
    assert record.attendance == "online"
    assert record.conference_url == "https://zoom.us/j/555000111"
    assert record.conference_phone == "+1 929 205 6099"
    assert record.notes == "Meeting ID 555 000 111"
    assert record.type_labels == ("Closed", "Just for Today", "Virtual Meeting")


def test_hybrid_saturday_with_zero_duration(result) -> None:
    record = result.records[2]
    assert (record.day, record.time, record.end_time) == (6, "10:00", "11:00")  # BMLT 7 = Saturday
    assert record.attendance == "hybrid"
    assert record.address == "22 Bay St, Brooklyn, NY 11201"


def test_virtual_without_link_and_temporarily_closed_are_inactive(result) -> None:
    assert result.records[3].attendance == "inactive"
    closed = result.records[4]
    assert closed.attendance == "inactive"
    assert closed.types == ("TC", "O", "XYZ")
    assert closed.type_labels == ("Temporarily Closed", "Open", "XYZ")


def test_wrapped_get_used_formats_shape(fixture_json: Callable[[str], Any]) -> None:
    wrapped = {"meetings": fixture_json("bmlt.json"), "formats": [{"key_string": "O"}]}
    result = parse_bmlt(wrapped, default_timezone="America/Chicago")
    assert [r.slug for r in result.records] == ["101", "102", "103", "104", "107"]


def test_no_zone_and_no_default_is_skipped() -> None:
    result = parse_bmlt([{**BASE, "time_zone": ""}], default_timezone=None)
    assert result.skipped == [Skipped("9", "no timezone")]


@pytest.mark.parametrize(("weekday", "day"), [("1", 0), ("4", 3), ("7", 6), (5, 4), (" 3 ", 2)])
def test_weekday_mapping(weekday: Any, day: int) -> None:
    assert _one({**BASE, "weekday_tinyint": weekday}).day == day


@pytest.mark.parametrize("weekday", ["0", "8", "Monday", -1, True])
def test_bad_weekday_is_skipped(weekday: Any) -> None:
    result = parse_bmlt([{**BASE, "weekday_tinyint": weekday}], default_timezone="UTC")
    assert result.skipped == [Skipped("9", "invalid day")]


def test_missing_weekday_is_unscheduled() -> None:
    record = _one({**BASE, "weekday_tinyint": ""})
    assert (record.day, record.time, record.end_time) == (None, None, None)


@pytest.mark.parametrize(
    ("duration", "end"),
    [
        ("00:45:00", "19:45"),
        ("1:30", "20:30"),
        ("", "20:00"),
        ("24:00:00", "20:00"),
        (None, "20:00"),
    ],
)
def test_duration(duration: Any, end: str) -> None:
    assert _one({**BASE, "duration_time": duration}).end_time == end


def test_missing_id_and_name() -> None:
    result = parse_bmlt(
        [{**BASE, "id_bigint": ""}, {**BASE, "meeting_name": "  "}, 7], default_timezone="UTC"
    )
    assert result.skipped == [
        Skipped(None, "missing id"),
        Skipped("9", "missing name"),
        Skipped(None, "not an object"),
    ]


def test_integer_id_and_fellowship_override() -> None:
    record = _one({**BASE, "id_bigint": 12, "formats": "O,D"}, fellowship="aa")
    assert record.slug == "12"
    assert record.fellowship == "aa"
    assert record.type_labels == ("Open", "Discussion")


def test_in_person_meeting_with_link_is_hybrid() -> None:
    assert _one({**BASE, "virtual_meeting_link": "https://z.example/j/1"}).attendance == "hybrid"


@pytest.mark.parametrize("data", [{"formats": []}, "x", 1, None])
def test_not_a_meeting_array_raises(data: Any) -> None:
    with pytest.raises(FeedError):
        parse_bmlt(data, default_timezone="UTC")
