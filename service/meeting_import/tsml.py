"""Parse Meeting Guide / 12 Step Meeting List (TSML) JSON into meeting records.

A meeting whose `day` is an array becomes one record per listed day, each with
the slug "{slug}-{day}" (0 = Sunday), so every record keeps a stable identity
of its own; the feed's slug is claimed once and its later duplicates skipped.
A meeting without a day or without a time is kept unscheduled (day, time and
end_time all None) rather than invented onto a Sunday midnight.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from itertools import islice
from typing import Any

from service.meeting_import.normalize import (
    MAX_ADDRESS,
    MAX_LOCATION,
    MAX_NAME,
    MAX_NOTES,
    MAX_REGION,
    MAX_SLUG,
    Collector,
    Invalid,
    attendance_for,
    canonical_timezone,
    check_default_timezone,
    clean_text,
    end_time_or_default,
    http_url,
    join_address,
    join_notes,
    parse_days,
    parse_time,
    parse_updated,
    phone_text,
    truthy_flag,
)
from service.meeting_import.records import (
    SKIP_MISSING_NAME,
    SKIP_MISSING_SLUG,
    SKIP_NO_TIMEZONE,
    SKIP_NOT_OBJECT,
    FeedError,
    ParseResult,
    record_from,
)
from service.meeting_import.types import labels_for, normalize_codes, normalize_fellowship

logger = logging.getLogger(__name__)

FORMAT = "tsml"


STREAM_ROWS = 500  # feed rows parsed per ParseResult.parse_more() of a streamed parse


def parse_tsml(data: Any, *, default_timezone: str | None, fellowship: str = "aa") -> ParseResult:
    """Parse a decoded TSML JSON value (an array of meeting objects)."""
    return stream_tsml(data, default_timezone=default_timezone, fellowship=fellowship).finish()


def stream_tsml(
    data: Any, *, default_timezone: str | None, fellowship: str = "aa", rows: int = STREAM_ROWS
) -> ParseResult:
    """Check a TSML value's shape and options now; parse its rows `rows` at a time later.

    Raises FeedError or ValueError here, before any row is parsed; the rows themselves only
    ever become records or skips. The result's `parse_more()` parses the next rows.
    """
    fellowship = normalize_fellowship(fellowship)
    default_timezone = check_default_timezone(default_timezone)
    if not isinstance(data, list):
        raise FeedError(f"a TSML feed is a JSON array of meetings, not a JSON {_json_kind(data)}")
    collector = Collector(FORMAT)
    collector.result.pending = _parse_rows(data, collector, default_timezone, fellowship, rows)
    return collector.result


def _parse_rows(
    data: list[Any], collector: Collector, default_timezone: str | None, fellowship: str, rows: int
) -> Iterator[None]:
    remaining = iter(data)
    for _start in range(0, len(data), rows):
        for row in islice(remaining, rows):
            add_tsml_row(row, collector, default_timezone=default_timezone, fellowship=fellowship)
        yield
    logger.debug(
        "tsml feed: %d records, %d skipped",
        len(collector.result.records),
        len(collector.result.skipped),
    )


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return "null" if value is None else type(value).__name__


def _region(row: Mapping[str, Any]) -> str | None:
    raw = row.get("regions")
    if raw is None and row.get("sub_region") is None:
        return clean_text(row.get("region"), MAX_REGION)  # the one-name case
    names: list[str] = []
    if isinstance(raw, list):
        names = [n for n in (clean_text(item, MAX_REGION) for item in raw[:10]) if n]
    if not names:
        names = [
            n
            for n in (
                clean_text(row.get("region"), MAX_REGION),
                clean_text(row.get("sub_region"), MAX_REGION),
            )
            if n
        ]
    # The hierarchy reads outer to inner, e.g. "Downtown > Financial District".
    joined = " > ".join(dict.fromkeys(names))
    return joined[:MAX_REGION].rstrip() or None


def _address(row: Mapping[str, Any]) -> str | None:
    formatted = clean_text(row.get("formatted_address"), MAX_ADDRESS)
    if formatted:
        return formatted
    state_zip = " ".join(
        p for p in (clean_text(row.get("state"), 100), clean_text(row.get("postal_code"), 20)) if p
    )
    return join_address(
        clean_text(row.get("address"), MAX_ADDRESS),
        clean_text(row.get("city"), 100),
        state_zip or None,
        clean_text(row.get("country"), 100),
    )


def add_tsml_row(
    row: Any,
    collector: Collector,
    *,
    default_timezone: str | None,
    fellowship: str,
) -> None:
    """Turn one TSML meeting object into zero or more records on the collector."""
    if not isinstance(row, dict):
        collector.skip(None, SKIP_NOT_OBJECT)
        return
    slug = clean_text(row.get("slug"), MAX_SLUG, html=False)
    if slug is None:
        collector.skip(None, SKIP_MISSING_SLUG)
        return
    if not collector.claim(slug):
        return
    name = clean_text(row.get("name"), MAX_NAME)
    if name is None:
        collector.skip(slug, SKIP_MISSING_NAME)
        return
    try:
        days = parse_days(row.get("day"))
        start = parse_time(row.get("time"))
        timezone = canonical_timezone(row.get("timezone")) or default_timezone
    except Invalid as exc:
        collector.skip(slug, exc.reason)
        return
    scheduled = days is not None and start is not None
    # An unscheduled meeting has no clock time to anchor, so it needs no zone.
    if scheduled and timezone is None:
        collector.skip(slug, SKIP_NO_TIMEZONE)
        return

    types = normalize_codes(row.get("types"), fellowship)
    address = _address(row)
    conference_url = http_url(row.get("conference_url"))
    conference_phone = phone_text(row.get("conference_phone"))
    fields: dict[str, Any] = {
        "name": name,
        "timezone": timezone,
        "fellowship": fellowship,
        "location": clean_text(row.get("location"), MAX_LOCATION),
        "address": address,
        "conference_url": conference_url,
        "conference_phone": conference_phone,
        "types": types,
        "type_labels": labels_for(types, fellowship),
        "notes": join_notes(
            clean_text(row.get("notes"), MAX_NOTES, multiline=True),
            clean_text(row.get("location_notes"), MAX_NOTES, multiline=True),
            clean_text(row.get("conference_url_notes"), MAX_NOTES, multiline=True),
            clean_text(row.get("conference_phone_notes"), MAX_NOTES, multiline=True),
        ),
        "attendance": attendance_for(
            conference_url=conference_url,
            conference_phone=conference_phone,
            has_address=address is not None,
            approximate=truthy_flag(row.get("approximate")),
            types=types,
        ),
        "region": _region(row),
        "updated": parse_updated(row.get("updated")),
    }
    fields["slug"] = slug
    if not scheduled:
        fields["day"] = fields["time"] = fields["end_time"] = None
        collector.add(record_from(fields))
        return
    assert days is not None and start is not None  # narrowed by `scheduled`
    fields["time"] = start
    fields["end_time"] = end_time_or_default(row.get("end_time"), start)
    if not isinstance(row.get("day"), list):
        fields["day"] = days[0]  # a scalar day is exactly one
        collector.add(record_from(fields))
        return
    for day in days:
        collector.add(record_from({**fields, "slug": f"{slug}-{day}", "day": day}))
