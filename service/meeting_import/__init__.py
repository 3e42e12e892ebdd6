"""Parse recovery-meeting schedule feeds (TSML JSON, BMLT JSON, CSV) and import them into a directory."""

from __future__ import annotations

from service.meeting_import.bmlt import parse_bmlt
from service.meeting_import.csvfeed import parse_csv
from service.meeting_import.detect import decode_body, parse_feed
from service.meeting_import.mapping import ImportFailed
from service.meeting_import.records import (
    ATTENDANCE_OPTIONS,
    FeedError,
    MeetingRecord,
    ParseResult,
    Skipped,
)
from service.meeting_import.sources import (
    default_feed_key,
    import_decoded,
    import_feed,
    import_source,
    refresh_due_feeds,
)
from service.meeting_import.store import ImportReport, import_records
from service.meeting_import.tsml import parse_tsml
from service.meeting_import.types import labels_for, normalize_fellowship

__all__ = [
    "ATTENDANCE_OPTIONS",
    "FeedError",
    "ImportFailed",
    "ImportReport",
    "MeetingRecord",
    "ParseResult",
    "Skipped",
    "decode_body",
    "default_feed_key",
    "import_decoded",
    "import_feed",
    "import_records",
    "import_source",
    "labels_for",
    "normalize_fellowship",
    "parse_bmlt",
    "parse_csv",
    "parse_feed",
    "parse_tsml",
    "refresh_due_feeds",
]
