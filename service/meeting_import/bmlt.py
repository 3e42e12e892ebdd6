"""Parse NA BMLT `GetSearchResults` JSON into meeting records."""

from __future__ import annotations

import logging
import re
from typing import Any

from service.meeting_import.normalize import (
    MAX_ADDRESS,
    MAX_LOCATION,
    MAX_NAME,
    MAX_NOTES,
    MAX_SLUG,
    Collector,
    Invalid,
    add_minutes,
    attendance_for,
    canonical_timezone,
    check_default_timezone,
    clean_text,
    http_url,
    join_address,
    join_notes,
    parse_time,
    phone_text,
    scalar_text,
)
from service.meeting_import.records import (
    SKIP_INVALID_DAY,
    SKIP_MISSING_ID,
    SKIP_MISSING_NAME,
    SKIP_NO_TIMEZONE,
    SKIP_NOT_OBJECT,
    SKIP_UNPUBLISHED,
    FeedError,
    MeetingRecord,
    ParseResult,
)
from service.meeting_import.types import labels_for, normalize_codes, normalize_fellowship

logger = logging.getLogger(__name__)

FORMAT = "bmlt"

VENUE_IN_PERSON = 1
VENUE_VIRTUAL = 2
VENUE_HYBRID = 3

_DURATION_RE = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")


def parse_bmlt(data: Any, *, default_timezone: str | None, fellowship: str = "na") -> ParseResult:
    """Parse a decoded BMLT JSON value: a meeting array, or {"meetings": [...], ...}."""
    fellowship = normalize_fellowship(fellowship)
    default_timezone = check_default_timezone(default_timezone)
    # `get_used_formats=1` wraps the array in an object next to the format list.
    if isinstance(data, dict) and isinstance(data.get("meetings"), list):
        data = data["meetings"]
    if not isinstance(data, list):
        raise FeedError("a BMLT feed is a JSON array of meetings")
    collector = Collector(FORMAT)
    for row in data:
        _add_row(row, collector, default_timezone=default_timezone, fellowship=fellowship)
    return collector.result


def _small_int(value: Any) -> int | None:
    text = scalar_text(value)
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 3 else None


def _weekday(value: Any) -> int | None:
    """Map BMLT's 1 = Sunday ... 7 = Saturday onto 0 = Sunday ... 6 = Saturday."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = _small_int(value)
    if number is None or not 1 <= number <= 7:
        raise Invalid(SKIP_INVALID_DAY)
    return number - 1


def _duration_minutes(value: Any) -> int:
    text = value.strip() if isinstance(value, str) else ""
    match = _DURATION_RE.match(text)
    if not match:
        return 60
    minutes = int(match[1]) * 60 + int(match[2])
    # Zero or day-long durations are placeholders, not real meeting lengths.
    return minutes if 0 < minutes < 24 * 60 else 60


def _add_row(
    row: Any, collector: Collector, *, default_timezone: str | None, fellowship: str
) -> None:
    if not isinstance(row, dict):
        collector.skip(None, SKIP_NOT_OBJECT)
        return
    slug = clean_text(row.get("id_bigint"), MAX_SLUG, html=False)
    if slug is None:
        collector.skip(None, SKIP_MISSING_ID)
        return
    if not collector.claim(slug):
        return
    if _small_int(row.get("published")) == 0:
        collector.skip(slug, SKIP_UNPUBLISHED)
        return
    name = clean_text(row.get("meeting_name"), MAX_NAME)
    if name is None:
        collector.skip(slug, SKIP_MISSING_NAME)
        return
    try:
        day = _weekday(row.get("weekday_tinyint"))
        start = parse_time(row.get("start_time"))
        timezone = canonical_timezone(row.get("time_zone")) or default_timezone
    except Invalid as exc:
        collector.skip(slug, exc.reason)
        return
    scheduled = day is not None and start is not None
    if scheduled and timezone is None:
        collector.skip(slug, SKIP_NO_TIMEZONE)
        return

    venue = _small_int(row.get("venue_type"))
    types = normalize_codes(row.get("formats"), fellowship)
    state_zip = " ".join(
        p
        for p in (
            clean_text(row.get("location_province"), 100),
            clean_text(row.get("location_postal_code_1"), 20),
        )
        if p
    )
    address = join_address(
        clean_text(row.get("location_street"), MAX_ADDRESS),
        clean_text(row.get("location_municipality"), 100),
        state_zip or None,
        clean_text(row.get("location_nation"), 100),
    )
    conference_url = http_url(row.get("virtual_meeting_link"))
    conference_phone = phone_text(row.get("phone_meeting_number"))
    end = (
        add_minutes(start, _duration_minutes(row.get("duration_time")))
        if scheduled and start
        else None
    )
    collector.add(
        MeetingRecord(
            slug=slug,
            name=name,
            day=day if scheduled else None,
            time=start if scheduled else None,
            end_time=end,
            timezone=timezone,
            fellowship=fellowship,
            location=clean_text(row.get("location_text"), MAX_LOCATION),
            address=address,
            conference_url=conference_url,
            conference_phone=conference_phone,
            types=types,
            type_labels=labels_for(types, fellowship),
            notes=join_notes(
                clean_text(row.get("comments"), MAX_NOTES, multiline=True),
                clean_text(row.get("location_info"), MAX_NOTES, multiline=True),
                clean_text(row.get("virtual_meeting_additional_info"), MAX_NOTES, multiline=True),
            ),
            # A virtual meeting's address (if any) is only an approximate area.
            attendance=attendance_for(
                conference_url=conference_url,
                conference_phone=conference_phone,
                has_address=address is not None,
                approximate=venue == VENUE_VIRTUAL,
                types=types,
                online_only=venue == VENUE_VIRTUAL,
            ),
            region=None,
            updated=None,
        )
    )
