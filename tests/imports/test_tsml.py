"""Tests for the TSML / Meeting Guide JSON parser."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest

from service.meeting_import import FeedError, MeetingRecord, Skipped, parse_tsml


def _by_slug(records: list[MeetingRecord]) -> dict[str, MeetingRecord]:
    return {r.slug: r for r in records}


def _one(row: dict[str, Any], **kwargs: Any) -> MeetingRecord:
    result = parse_tsml([row], default_timezone=kwargs.pop("default_timezone", "UTC"), **kwargs)
    assert result.skipped == []
    (record,) = result.records
    return record


BASE = {"name": "Test Meeting", "slug": "test", "day": 1, "time": "19:00"}


class TestWordPressFeed:
    @pytest.fixture
    def result(self, fixture_json: Callable[[str], Any]):
        return parse_tsml(fixture_json("tsml_wordpress.json"), default_timezone="America/Denver")

    def test_record_slugs_in_feed_order(self, result) -> None:
        assert result.format == "tsml"
        assert [r.slug for r in result.records] == [
            "monday-night-big-book",
            "tue-thu-step-study-2",
            "tue-thu-step-study-4",
            "1042",
            "by-appointment",
            "zoom-daily-reflections",
            "friday-womens-hybrid",
            "saturday-closed",
            "online-no-link",
            "sketchy-link",
        ]

    def test_skips_with_reasons(self, result) -> None:
        assert result.skipped == [
            Skipped("monday-night-big-book", "duplicate slug"),
            Skipped("bad-zone", "invalid timezone"),
            Skipped("funday", "invalid day"),
            Skipped(None, "missing slug"),
            Skipped("no-name", "missing name"),
            Skipped(None, "not an object"),
        ]

    def test_full_record(self, result) -> None:
        assert _by_slug(result.records)["monday-night-big-book"] == MeetingRecord(
            slug="monday-night-big-book",
            name="Monday Night Big Book",
            day=1,
            time="19:30",
            end_time="20:30",
            timezone="America/Chicago",
            fellowship="aa",
            location="St. Mark\u2019s Church",
            address="100 Main St, Springfield, IL 62701, USA",
            conference_url=None,
            conference_phone=None,
            types=("O", "B", "X"),
            type_labels=("Open", "Big Book", "Wheelchair Access"),
            notes=(
                "Enter through the side door & go upstairs.\n\n"
                "Coffee provided.\n\n"
                "Parking behind the building"
            ),
            attendance="in_person",
            region="Downtown > Loop",
            updated="2024-01-15T18:22:03Z",
        )

    def test_day_array_expands_with_suffixed_slugs(self, result) -> None:
        records = _by_slug(result.records)
        tuesday, thursday = records["tue-thu-step-study-2"], records["tue-thu-step-study-4"]
        assert (tuesday.day, thursday.day) == (2, 4)
        assert tuesday.time == thursday.time == "19:30"  # from "7:30 PM"
        assert tuesday.end_time == "20:30"  # no end_time: start + 1 h
        assert tuesday.types == ("ST", "11", "12X12")  # numeric 11 kept as a code
        assert tuesday.type_labels == (
            "Step Study",
            "11th Step Meditation",
            "12 Steps & 12 Traditions",
        )
        assert tuesday.address == "200 Oak Ave, Springfield, IL 62702, US"
        assert dataclasses.replace(tuesday, slug="x", day=0) == dataclasses.replace(
            thursday, slug="x", day=0
        )

    def test_integer_slug_string_day_and_default_timezone(self, result) -> None:
        record = _by_slug(result.records)["1042"]
        assert (record.day, record.time, record.end_time) == (0, "07:00", "08:00")
        assert record.timezone == "America/Denver"
        assert record.types == ("O", "D", "BE")
        assert record.type_labels == ("Open", "Discussion", "Newcomer")

    def test_by_appointment_stays_unscheduled(self, result) -> None:
        record = _by_slug(result.records)["by-appointment"]
        assert (record.day, record.time, record.end_time) == (None, None, None)
        assert record.notes == "Call the office to arrange a time."
        assert record.attendance == "in_person"

    def test_attendance(self, result) -> None:
        records = _by_slug(result.records)
        assert {slug: r.attendance for slug, r in records.items()} == {
            "monday-night-big-book": "in_person",
            "tue-thu-step-study-2": "in_person",
            "tue-thu-step-study-4": "in_person",
            "1042": "in_person",
            "by-appointment": "in_person",
            "zoom-daily-reflections": "online",  # conference + approximate=yes
            "friday-womens-hybrid": "hybrid",  # conference + real address
            "saturday-closed": "inactive",  # TC and nothing online
            "online-no-link": "inactive",  # online-only with no URL or phone
            "sketchy-link": "in_person",  # javascript: URL is no conference info
        }

    def test_online_meeting_fields(self, result) -> None:
        record = _by_slug(result.records)["zoom-daily-reflections"]
        assert (record.day, record.time, record.end_time) == (3, "19:30", "20:15")
        assert record.conference_url == "https://zoom.us/j/123456789"
        assert record.conference_phone == "+1 646 558 8656,,123456789#"
        assert record.notes == "Password: serenity"
        assert record.types == ("DR", "ONL")

    def test_seconds_and_abbreviated_day_and_lowercase_zone(self, result) -> None:
        record = _by_slug(result.records)["friday-womens-hybrid"]
        assert (record.day, record.time, record.end_time) == (5, "18:00", "19:00")
        assert record.timezone == "America/Chicago"

    def test_unsafe_conference_url_dropped(self, result) -> None:
        assert _by_slug(result.records)["sketchy-link"].conference_url is None

    def test_without_default_timezone_rows_without_zone_are_skipped(
        self, fixture_json: Callable[[str], Any]
    ) -> None:
        result = parse_tsml(fixture_json("tsml_wordpress.json"), default_timezone=None)
        assert Skipped("1042", "no timezone") in result.skipped
        assert "1042" not in _by_slug(result.records)
        # Unscheduled meetings have no clock time, so they need no zone.
        assert _by_slug(result.records)["by-appointment"].timezone is None


def test_google_sheets_shaped_feed(fixture_json: Callable[[str], Any]) -> None:
    result = parse_tsml(fixture_json("tsml_sheets.json"), default_timezone=None)
    assert result.skipped == []
    noon, midnight = result.records
    assert (noon.slug, noon.day, noon.time, noon.end_time) == (
        "monday-noon-discussion",
        1,
        "12:00",
        "13:00",
    )
    assert noon.types == ("O", "D", "LIT")
    assert noon.region == "North > Riverside"
    assert noon.updated == "2024-01-15T10:22:33Z"
    assert noon.address == "12 Library Ln, Springfield, IL 62701, US"
    assert (midnight.day, midnight.time, midnight.end_time) == (6, "00:00", "01:00")
    assert midnight.types == ("C", "GR")  # "Grapevine" label mapped back to its code
    assert midnight.attendance == "online"
    assert midnight.address == "Springfield, IL"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("7:30", "07:30"),
        ("19:30", "19:30"),
        ("19:30:00", "19:30"),
        ("7:30 PM", "19:30"),
        ("7:30pm", "19:30"),
        ("7:30 p.m.", "19:30"),
        ("7 PM", "19:00"),
        ("12:00 PM", "12:00"),
        ("12:15 am", "00:15"),
        ("noon", "12:00"),
        ("0:00", "00:00"),
    ],
)
def test_time_spellings(raw: str, expected: str) -> None:
    assert _one({**BASE, "time": raw}).time == expected


@pytest.mark.parametrize("raw", ["25:00", "7", "13:00 PM", "7:60", "soon", 1930, "19h30"])
def test_invalid_time_is_skipped(raw: Any) -> None:
    result = parse_tsml([{**BASE, "time": raw}], default_timezone="UTC")
    assert result.records == []
    assert result.skipped == [Skipped("test", "invalid time")]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(0, 0), ("0", 0), (6, 6), ("Sunday", 0), ("sunday", 0), ("Sun", 0), ("THURS", 4), (3.0, 3)],
)
def test_day_spellings(raw: Any, expected: int) -> None:
    assert _one({**BASE, "day": raw}).day == expected


@pytest.mark.parametrize("raw", [7, -1, "7", "Funday", True, 1.5, {"d": 1}, [1, 9]])
def test_invalid_day_is_skipped(raw: Any) -> None:
    result = parse_tsml([{**BASE, "day": raw}], default_timezone="UTC")
    assert result.skipped == [Skipped("test", "invalid day")]


@pytest.mark.parametrize(
    "changes", [{"day": None}, {"time": None}, {"day": []}, {"time": "  "}, {"day": "", "time": ""}]
)
def test_missing_day_or_time_means_unscheduled(changes: dict[str, Any]) -> None:
    record = _one({**BASE, **changes, "end_time": "20:00"})
    assert (record.slug, record.day, record.time, record.end_time) == ("test", None, None, None)


def test_single_day_array_is_still_suffixed() -> None:
    # Arrays always suffix, so a feed growing [1] into [1, 3] keeps "x-1" stable.
    assert _one({**BASE, "day": [1]}).slug == "test-1"


def test_day_array_duplicates_collapse() -> None:
    result = parse_tsml([{**BASE, "day": ["Monday", 1, "1"]}], default_timezone="UTC")
    assert [r.slug for r in result.records] == ["test-1"]


def test_expanded_slug_colliding_with_a_real_slug_is_skipped() -> None:
    result = parse_tsml(
        [{**BASE, "day": [1, 3]}, {**BASE, "slug": "test-1", "name": "Other"}],
        default_timezone="UTC",
    )
    assert [r.slug for r in result.records] == ["test-1", "test-3"]
    assert result.skipped == [Skipped("test-1", "duplicate slug")]


def test_duplicate_slug_keeps_first_even_when_first_is_invalid() -> None:
    result = parse_tsml(
        [{**BASE, "day": "Funday"}, {**BASE, "name": "Second"}], default_timezone="UTC"
    )
    assert result.records == []
    assert result.skipped == [Skipped("test", "invalid day"), Skipped("test", "duplicate slug")]


def test_end_time_wraps_past_midnight_and_bad_end_time_defaults() -> None:
    assert _one({**BASE, "time": "23:30"}).end_time == "00:30"
    assert _one({**BASE, "end_time": "whenever"}).end_time == "20:00"
    assert _one({**BASE, "end_time": "9:15 PM"}).end_time == "21:15"


def test_explicit_invalid_timezone_is_not_replaced_by_default() -> None:
    result = parse_tsml([{**BASE, "timezone": "Nowhere/Special"}], default_timezone="UTC")
    assert result.skipped == [Skipped("test", "invalid timezone")]


def test_html_and_entities_stripped_everywhere() -> None:
    record = _one(
        {
            **BASE,
            "name": "Men&#8217;s <em>Stag</em> &amp; Step",
            "notes": "<script>alert(1)</script><ul><li>One</li><li>Two &lt;3</li></ul>",
            "location": "<a href='https://x'>Hall</a>",
        }
    )
    assert record.name == "Men\u2019s Stag & Step"
    assert record.notes == "One\n\nTwo <3"
    assert record.location == "Hall"


def test_control_characters_removed_and_name_capped() -> None:
    record = _one(
        {
            **BASE,
            "name": "A\x00B\u202eC\u200bD\tE" + "n" * 400,
            "notes": "line1\r\nline2\x07",
        }
    )
    assert record.name.startswith("ABCD E")
    assert len(record.name) == 255
    assert record.notes == "line1\nline2"


def test_slug_is_stripped_and_numeric_slug_is_text() -> None:
    assert _one({**BASE, "slug": "  spaced  "}).slug == "spaced"
    assert _one({**BASE, "slug": 77}).slug == "77"
    assert _one({**BASE, "slug": 77.0}).slug == "77"


def test_types_in_all_their_shapes() -> None:
    record = _one({**BASE, "types": ["o", 11, "D, SP", "", None, "Big Book", "weird-code"]})
    assert record.types == ("O", "11", "D", "SP", "B", "WEIRD-CODE")
    assert record.type_labels == (
        "Open",
        "11th Step Meditation",
        "Discussion",
        "Speaker",
        "Big Book",
        "WEIRD-CODE",
    )


@pytest.mark.parametrize(
    ("fields", "attendance"),
    [
        ({}, "in_person"),
        ({"conference_phone": "+1 555 0100"}, "online"),  # conference, no address
        ({"conference_url": "https://z.example/j/1", "formatted_address": "1 A St"}, "hybrid"),
        (
            {
                "conference_url": "https://z.example/j/1",
                "formatted_address": "Town",
                "approximate": "yes",
            },
            "online",
        ),
        ({"types": ["TC"], "formatted_address": "1 A St"}, "inactive"),
        # A closed location with a link is online, not hybrid: nobody should walk there.
        (
            {
                "types": ["TC"],
                "formatted_address": "1 A St",
                "conference_url": "https://z.example/",
            },
            "online",
        ),
        ({"approximate": "yes", "formatted_address": "Town"}, "inactive"),
        ({"types": ["ONL"]}, "inactive"),
        # ONL is legacy: with a real address and no link it is just in person.
        ({"types": ["ONL"], "formatted_address": "1 A St"}, "in_person"),
        ({"conference_url": "ftp://z.example/", "formatted_address": "1 A St"}, "in_person"),
        ({"conference_phone": "call us"}, "in_person"),  # no digits: not a phone
    ],
)
def test_attendance_rules(fields: dict[str, Any], attendance: str) -> None:
    assert _one({**BASE, **fields}).attendance == attendance


def test_fellowship_selects_label_table() -> None:
    record = _one({**BASE, "types": ["O", "BT"]}, fellowship="na")
    assert record.fellowship == "na"
    assert record.type_labels == ("Open", "Basic Text")


def test_content_hash_ignores_updated_but_not_content() -> None:
    first = _one({**BASE, "updated": "2024-01-01 00:00:00"})
    bumped = _one({**BASE, "updated": "2024-06-01 00:00:00"})
    renamed = _one({**BASE, "name": "Renamed"})
    assert first.content_hash() == bumped.content_hash()
    assert first.content_hash() != renamed.content_hash()
    assert len(first.content_hash()) == 64
    # Pinned: a changed canonical form would make every stored row look "changed".
    assert _one(dict(BASE)).content_hash() == (
        "3b2f6f1215593ed18f3c4f49517b7da2ab87fcc8f792b55102ef5de7d6db327c"
    )


@pytest.mark.parametrize("data", [{"meetings": []}, "meetings", 3, None, True])
def test_whole_feed_that_is_not_an_array_raises(data: Any) -> None:
    with pytest.raises(FeedError, match="JSON array"):
        parse_tsml(data, default_timezone="UTC")


def test_bad_parameters_raise_value_error() -> None:
    with pytest.raises(ValueError, match="fellowship"):
        parse_tsml([], default_timezone="UTC", fellowship="xyz")
    with pytest.raises(ValueError, match="default_timezone"):
        parse_tsml([], default_timezone="Not/AZone")
