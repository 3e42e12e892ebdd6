"""Tests for the Google-Sheets style CSV parser."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from service.meeting_import import FeedError, Skipped, parse_csv


@pytest.fixture
def result(fixture_bytes: Callable[[str], bytes]):
    # The fixture starts with a UTF-8 BOM; decode without stripping it here.
    return parse_csv(fixture_bytes("meetings.csv").decode("utf-8"), default_timezone=None)


def test_records_and_skips(result) -> None:
    assert result.format == "csv"
    assert [r.slug for r in result.records] == [
        "downtown-big-book",
        "lunch-bunch-f62dc96960",
        "online-step-study",
        "by-appt",
    ]
    assert result.skipped == [Skipped("bad-day", "invalid day")]


def test_first_row_all_columns(result) -> None:
    record = result.records[0]
    assert (record.name, record.day, record.time, record.end_time) == (
        "Downtown Big Book",
        1,
        "19:00",
        "20:00",
    )
    assert record.location == "St. Mark's"
    assert record.address == "100 Main St, Springfield, IL 62701, US"
    assert record.types == ("O", "B", "X")  # codes and labels mixed in one cell
    assert record.type_labels == ("Open", "Big Book", "Wheelchair Access")
    assert record.notes == "Bring a book, any edition\n\nSide door"
    assert record.region == "Downtown > Loop"
    assert record.timezone == "America/Chicago"
    assert record.updated == "2024-02-01T09:00:00Z"
    assert record.attendance == "in_person"


def test_labels_in_types_and_multiline_notes(result) -> None:
    record = result.records[1]
    assert record.types == ("O", "D")
    assert record.notes == "Two-line note:\nbring lunch"
    assert (record.day, record.time, record.end_time) == (3, "12:00", "13:00")


def test_online_row(result) -> None:
    record = result.records[2]
    assert record.attendance == "online"
    assert record.conference_url == "https://zoom.us/j/42"
    assert record.notes == "Passcode 42"


def test_unscheduled_row_without_zone(result) -> None:
    record = result.records[3]
    assert (record.day, record.time, record.timezone) == (None, None, None)
    assert record.notes == "Call us"


def test_headers_are_case_space_and_separator_insensitive() -> None:
    text = "  NAME ,day,TIME, end_time ,postal-code,Slug\nA,Tue,9:00 AM,10:30 AM,12345,a\n"
    (record,) = parse_csv(text, default_timezone="UTC").records
    assert (record.name, record.day, record.time, record.end_time) == ("A", 2, "09:00", "10:30")
    assert record.address == "12345"


def test_derived_slug_is_stable_and_follows_the_schedule() -> None:
    def slug(row: str) -> str:
        return parse_csv("Name,Day,Time,Address\n" + row, default_timezone="UTC").records[0].slug

    first = slug("Lunch Bunch,Wednesday,12:00 PM,200 Oak Ave\n")
    assert first == slug("Lunch Bunch,Wednesday,12:00 PM,200 Oak Ave\n")
    # Same meeting spelled differently keeps its identity...
    assert first == slug("lunch  bunch,wed,12:00,200 OAK AVE\n")
    # ...a real change of time or place does not.
    assert first != slug("Lunch Bunch,Wednesday,1:00 PM,200 Oak Ave\n")
    assert first != slug("Lunch Bunch,Wednesday,12:00 PM,201 Oak Ave\n")
    assert first.startswith("lunch-bunch-")


def test_duplicate_rows_without_slug_collapse() -> None:
    text = "Name,Day,Time\nA,Monday,7 PM\nA,Monday,7 PM\n"
    result = parse_csv(text, default_timezone="UTC")
    assert len(result.records) == 1
    assert result.skipped == [Skipped(result.records[0].slug, "duplicate slug")]


def test_several_days_in_one_cell_expand() -> None:
    result = parse_csv('Name,Day,Time,Slug\nA,"Monday, Wednesday",7 PM,a\n', default_timezone="UTC")
    assert [(r.slug, r.day) for r in result.records] == [("a-1", 1), ("a-3", 3)]


def test_tab_separated() -> None:
    (record,) = parse_csv(
        "Name\tDay\tTime\tSlug\nA\tFriday\t18:00\ta\n", default_timezone="UTC"
    ).records
    assert (record.slug, record.day, record.time) == ("a", 5, "18:00")


def test_no_name_column_is_a_feed_error() -> None:
    with pytest.raises(FeedError, match="no Name column"):
        parse_csv("Day,Time\nMonday,7 PM\n", default_timezone="UTC")


def test_empty_and_oversized_cells_are_feed_errors() -> None:
    with pytest.raises(FeedError, match="empty"):
        parse_csv("", default_timezone="UTC")
    with pytest.raises(FeedError, match="malformed CSV"):
        parse_csv('Name,Notes\nA,"' + "x" * 200_000 + '"\n', default_timezone="UTC")


def test_short_and_long_rows() -> None:
    result = parse_csv(
        "Name,Day,Time,Slug\nA,Monday\nB,Monday,7 PM,b,extra,cells\n", default_timezone="UTC"
    )
    assert [(r.name, r.day, r.time) for r in result.records] == [
        ("A", None, None),
        ("B", 1, "19:00"),
    ]
