"""Parse the Google-Sheets style meeting CSV (plain-language headers) into records."""

from __future__ import annotations

import csv
import io
import logging
from typing import Any

from service.meeting_import.normalize import (
    Collector,
    Invalid,
    check_default_timezone,
    derived_slug,
    parse_day,
    parse_time,
)
from service.meeting_import.records import FeedError, ParseResult
from service.meeting_import.tsml import add_tsml_row
from service.meeting_import.types import normalize_fellowship

logger = logging.getLogger(__name__)

FORMAT = "csv"

# Normalised header -> TSML key. Headers are matched case-, space-, "_"- and
# "-"-insensitively, so "End Time", "end_time" and "END-TIME" are one column.
HEADERS: dict[str, str] = {
    "time": "time",
    "start time": "time",
    "end time": "end_time",
    "day": "day",
    "name": "name",
    "meeting name": "name",
    "location": "location",
    "address": "address",
    "formatted address": "formatted_address",
    "city": "city",
    "state": "state",
    "postal code": "postal_code",
    "zip": "postal_code",
    "zip code": "postal_code",
    "country": "country",
    "types": "types",
    "notes": "notes",
    "region": "region",
    "sub region": "sub_region",
    "subregion": "sub_region",
    "conference url": "conference_url",
    "conference url notes": "conference_url_notes",
    "conference phone": "conference_phone",
    "conference phone notes": "conference_phone_notes",
    "slug": "slug",
    "timezone": "timezone",
    "time zone": "timezone",
    "group": "group",
    "location notes": "location_notes",
    "updated": "updated",
    "approximate": "approximate",
}


def _header_key(header: str) -> str:
    text = header.replace("\ufeff", "").replace("_", " ").replace("-", " ")
    return " ".join(text.split()).casefold()


def _dialect(text: str) -> type[csv.Dialect]:
    first_line = text.split("\n", 1)[0]
    # Sheets exports as comma CSV; a pasted tab-separated export is the other real case.
    if "\t" in first_line and "," not in first_line:
        return csv.excel_tab
    return csv.excel


def _slug_for(row: dict[str, Any]) -> str:
    """Derive a stable slug from name, day, time and address when the sheet has none."""

    def normal(parse: Any, raw: Any) -> str:
        try:
            value = parse(raw)
        except Invalid:
            value = None
        return str(value) if value is not None else str(raw or "")

    address = row.get("formatted_address") or " ".join(
        str(row.get(k) or "") for k in ("address", "city", "state", "postal_code")
    )
    return derived_slug(
        str(row.get("name") or ""),
        normal(parse_day, row.get("day")),
        normal(parse_time, row.get("time")),
        address,
    )


def parse_csv(text: str, *, default_timezone: str | None, fellowship: str = "aa") -> ParseResult:
    """Parse meeting CSV text whose first row holds the column headers."""
    fellowship = normalize_fellowship(fellowship)
    default_timezone = check_default_timezone(default_timezone)
    text = text.removeprefix("\ufeff")
    reader = csv.reader(io.StringIO(text, newline=""), dialect=_dialect(text))
    try:
        # A cell past csv's 128 KiB field limit lands here too; no real sheet has one.
        rows = list(reader)
    except csv.Error as exc:
        raise FeedError(f"malformed CSV near line {reader.line_num}: {exc}") from None
    if not rows:
        raise FeedError("the CSV feed is empty")
    keys = [HEADERS.get(_header_key(h)) for h in rows[0]]
    if "name" not in keys:
        raise FeedError("the CSV header row has no Name column")

    collector = Collector(FORMAT)
    for cells in rows[1:]:
        if not any(cell.strip() for cell in cells):
            continue  # spreadsheets end with blank rows
        row: dict[str, Any] = {}
        for key, cell in zip(keys, cells, strict=False):
            # The first column of a name wins, so a stray duplicate header can't blank it.
            if key is not None and key not in row:
                row[key] = cell
        if not str(row.get("slug") or "").strip():
            row["slug"] = _slug_for(row)
        day = row.get("day")
        if isinstance(day, str) and "," in day:
            # "Monday, Wednesday" expands like a TSML day array.
            row["day"] = [part for part in (p.strip() for p in day.split(",")) if part]
        add_tsml_row(row, collector, default_timezone=default_timezone, fellowship=fellowship)
    return collector.result
