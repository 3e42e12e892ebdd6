"""Helpers for the import tests: small TSML feeds and row counts."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select

from service.db import db
from service.models import Alert, AuditEntry, Event, Meeting, MeetingFeed

DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def tsml_row(n: int, **fields: Any) -> dict[str, Any]:
    """Return a TSML meeting numbered n (slug "meeting-n"), with overrides."""
    row: dict[str, Any] = {
        "slug": f"meeting-{n}",
        "name": f"Meeting {n}",
        "day": n % 7,
        "time": f"{7 + n % 14:02d}:30",
        "timezone": "America/Chicago",
        "location": f"Hall {n}",
        "formatted_address": f"{n} Main St, Springfield, IL",
        "types": ["O", "D"],
    }
    row.update(fields)
    return row


def tsml_feed(count: int, start: int = 1) -> list[dict[str, Any]]:
    """Return a TSML feed of `count` meetings numbered from `start`."""
    return [tsml_row(n) for n in range(start, start + count)]


def as_bytes(feed: Any) -> bytes:
    """Encode a feed as the JSON bytes a server would send."""
    return json.dumps(feed).encode()


def count(model: Any, *where: Any) -> int:
    """Return how many rows of `model` match."""
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def row_counts() -> dict[str, int]:
    """Return the row counts an import may change."""
    return {m.__tablename__: count(m) for m in (Meeting, MeetingFeed, Event, Alert, AuditEntry)}


def report_counts(report: Any) -> tuple[int, int, int, int, int]:
    """Return (created, updated, unchanged, deactivated, skipped) of a report or its dict."""
    data = report if isinstance(report, dict) else report.as_dict()
    return (
        data["created"], data["updated"], data["unchanged"], data["deactivated"],
        len(data["skipped"]),
    )  # fmt: skip
