"""Tests for feed format detection and robust decoding."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from service.meeting_import import FeedError, decode_body, parse_feed


def _parse(raw: bytes, content_type: str | None = None, **kwargs):
    return parse_feed(
        raw, content_type=content_type, default_timezone=kwargs.pop("tz", "UTC"), **kwargs
    )


@pytest.mark.parametrize(
    ("name", "content_type", "fmt", "fellowship", "count"),
    [
        ("tsml_wordpress.json", "application/json; charset=UTF-8", "tsml", "aa", 10),
        ("tsml_sheets.json", "application/json", "tsml", "aa", 2),
        ("bmlt.json", "text/javascript", "bmlt", "na", 5),
        ("meetings.csv", "text/csv", "csv", "aa", 4),
        ("meetings.csv", None, "csv", "aa", 4),
        ("bmlt.json", None, "bmlt", "na", 5),
    ],
)
def test_detects_each_fixture(
    fixture_bytes: Callable[[str], bytes],
    name: str,
    content_type: str | None,
    fmt: str,
    fellowship: str,
    count: int,
) -> None:
    result = _parse(fixture_bytes(name), content_type)
    assert result.format == fmt
    assert len(result.records) == count
    assert {r.fellowship for r in result.records} == {fellowship}


def test_bom_prefixed_csv_keeps_first_header(fixture_bytes: Callable[[str], bytes]) -> None:
    raw = fixture_bytes("meetings.csv")
    assert raw.startswith(b"\xef\xbb\xbf")
    assert _parse(raw).records[0].time == "19:00"  # "Time" was not read as "\ufeffTime"


def test_explicit_fellowship_overrides_default(fixture_bytes: Callable[[str], bytes]) -> None:
    result = _parse(fixture_bytes("tsml_wordpress.json"), fellowship="rd")
    assert {r.fellowship for r in result.records} == {"rd"}


def test_bmlt_wrapper_object_detected(fixture_bytes: Callable[[str], bytes]) -> None:
    wrapped = {"meetings": json.loads(fixture_bytes("bmlt.json")), "formats": []}
    result = _parse(json.dumps(wrapped).encode())
    assert result.format == "bmlt"
    assert len(result.records) == 5


def test_cp1252_csv_is_decoded() -> None:
    raw = "Name,Day,Time,Notes\nCaf\u00e9 \u201cSerenity\u201d,Monday,7 PM,Cr\u00e8me\n".encode(
        "cp1252"
    )
    (record,) = _parse(raw).records
    assert record.name == "Caf\u00e9 \u201cSerenity\u201d"
    assert record.notes == "Cr\u00e8me"


def test_mostly_utf8_with_stray_cp1252_bytes_keeps_both() -> None:
    raw = '[{"name": "Caf\u00e9 '.encode() + b'\x93Hope\x94", "slug": "x"}]'
    (record,) = _parse(raw).records
    assert record.name == "Caf\u00e9 \u201cHope\u201d"


def test_bytes_undefined_in_cp1252_fall_back_to_latin1() -> None:
    assert decode_body(b"a\x81b\xe9") == "a\x81b\u00e9"


def test_declared_charset_used_when_not_utf8() -> None:
    raw = '[{"name": "\u0417\u0434\u0440\u0430\u0432\u0441\u0442\u0432\u0443\u0439", "slug": "ru"}]'.encode(
        "koi8-r"
    )
    (record,) = _parse(raw, "application/json; charset=KOI8-R").records
    assert record.name == "\u0417\u0434\u0440\u0430\u0432\u0441\u0442\u0432\u0443\u0439"


def test_valid_utf8_wins_over_a_wrong_declared_charset() -> None:
    raw = '[{"name": "Caf\u00e9", "slug": "x"}]'.encode()
    assert _parse(raw, "application/json; charset=iso-8859-1").records[0].name == "Caf\u00e9"


def test_utf16_with_bom() -> None:
    raw = '[{"name": "Caf\u00e9", "slug": "x"}]'.encode("utf-16")
    assert _parse(raw).records[0].name == "Caf\u00e9"


def test_malformed_json_fixture(fixture_bytes: Callable[[str], bytes]) -> None:
    with pytest.raises(FeedError, match="not valid JSON"):
        _parse(fixture_bytes("malformed.json"))


@pytest.mark.parametrize(
    ("raw", "content_type", "message"),
    [
        (b"", None, "empty"),
        (b"  \n\t ", None, "empty"),
        (b"\xef\xbb\xbf", None, "empty"),
        (b'{"error": "not found"}', "application/json", "JSON array"),
        (b'"just a string"', "application/json", "JSON array"),
        (b"<!DOCTYPE html><html><body>Log in</body></html>", "text/html", "HTML"),
        (b"<?xml version='1.0'?><meetings/>", None, "HTML/XML"),
        (b"hello world", "text/plain", "neither JSON nor CSV"),
        (b"[" * 100 + b"]" * 100, None, "nested too deeply"),
        (b"[" * 200_000, None, "nested too deeply|not valid JSON"),
        (b"[1, 2", None, "not valid JSON"),
        (b"[" + b"9" * 5000 + b"]", None, "not valid JSON"),
    ],
)
def test_whole_feed_errors(raw: bytes, content_type: str | None, message: str) -> None:
    with pytest.raises(FeedError, match=message):
        _parse(raw, content_type)


def test_feed_error_is_a_value_error() -> None:
    assert issubclass(FeedError, ValueError)


def test_array_of_non_objects_is_parsed_as_all_skipped() -> None:
    result = _parse(b"[1, 2, null]")
    assert result.records == []
    assert [s.reason for s in result.skipped] == ["not an object"] * 3


def test_moderately_nested_junk_inside_a_meeting_is_fine() -> None:
    nested = json.dumps({"name": "A", "slug": "a", "entity": [[[[[[["deep"]]]]]]]})
    assert _parse(f"[{nested}]".encode()).records[0].slug == "a"
