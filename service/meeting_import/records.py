"""Parsed meeting records, skip reports and parse results shared by every feed format."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

ATTENDANCE_IN_PERSON = "in_person"
ATTENDANCE_ONLINE = "online"
ATTENDANCE_HYBRID = "hybrid"
ATTENDANCE_INACTIVE = "inactive"
ATTENDANCE_OPTIONS = (
    ATTENDANCE_IN_PERSON,
    ATTENDANCE_ONLINE,
    ATTENDANCE_HYBRID,
    ATTENDANCE_INACTIVE,
)

# Skip reasons are fixed strings so callers and tests can match on them.
SKIP_NOT_OBJECT = "not an object"
SKIP_MISSING_SLUG = "missing slug"
SKIP_MISSING_ID = "missing id"
SKIP_MISSING_NAME = "missing name"
SKIP_DUPLICATE_SLUG = "duplicate slug"
SKIP_INVALID_DAY = "invalid day"
SKIP_INVALID_TIME = "invalid time"
SKIP_NO_TIMEZONE = "no timezone"
SKIP_INVALID_TIMEZONE = "invalid timezone"
SKIP_UNPUBLISHED = "unpublished"

# `updated` is the feed's own bookkeeping: a bumped timestamp with identical
# content must still hash equal, so it is left out of content_hash.
_NOT_CONTENT = frozenset({"updated"})


@dataclass(frozen=True)
class MeetingRecord:
    """One scheduled (or unscheduled) meeting, normalised from any feed format."""

    slug: str
    name: str
    day: int | None  # 0 = Sunday ... 6 = Saturday; None when unscheduled
    time: str | None  # "HH:MM", 24 h; None exactly when day is None
    end_time: str | None
    timezone: str | None  # canonical IANA name
    fellowship: str
    location: str | None
    address: str | None
    conference_url: str | None
    conference_phone: str | None
    types: tuple[str, ...]  # codes, uppercased
    type_labels: tuple[str, ...]
    notes: str | None
    attendance: str  # one of ATTENDANCE_OPTIONS
    region: str | None
    updated: str | None  # ISO 8601 UTC, "YYYY-MM-DDTHH:MM:SSZ"

    def content_hash(self) -> str:
        """Return a sha256 hex digest of the content fields, stable across runs."""
        content = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name not in _NOT_CONTENT
        }
        canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(canonical.encode("ascii")).hexdigest()


_FIELD_NAMES = frozenset(f.name for f in dataclasses.fields(MeetingRecord))


def record_from(fields: dict[str, Any]) -> MeetingRecord:
    """Return MeetingRecord(**fields), built without the frozen __init__'s per-field setattr.

    A feed of 10,000 meetings builds 10,000 records; the frozen dataclass's generated
    __init__ (one object.__setattr__ per field) was a sizeable share of parsing. The result
    is an ordinary, equal, still-frozen record; anything but the exact field set goes
    through the real constructor (and its TypeError).
    """
    if fields.keys() != _FIELD_NAMES:
        return MeetingRecord(**fields)
    record = object.__new__(MeetingRecord)
    record.__dict__.update(fields)
    return record


@dataclass
class Skipped:
    """A feed row that was not imported, and why."""

    slug: str | None
    reason: str


@dataclass
class ParseResult:
    """Everything one feed yielded: records to upsert and rows left out.

    A streamed parse (tsml.stream_tsml) checks the feed's shape at once and leaves its rows
    in `pending`: each `parse_more()` parses the next few into `records` and `skipped`, so
    an import can write the first meetings while later rows are still raw. `finish()` parses
    the rest; after it the result is what the whole parse gives.
    """

    records: list[MeetingRecord] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    format: str = ""
    pending: Iterator[None] | None = field(default=None, repr=False, compare=False)

    def parse_more(self) -> bool:
        """Parse the next rows of a streamed parse; return False once every row is parsed."""
        if self.pending is None:
            return False
        for _ in self.pending:
            return True
        self.pending = None
        return False

    def finish(self) -> ParseResult:
        """Parse every row still pending; return self."""
        while self.parse_more():
            pass
        return self


class FeedError(ValueError):
    """The feed as a whole cannot be parsed (wrong shape, not JSON/CSV, too deep)."""
