"""Map parsed meeting records onto directory rows: vocabulary, zones, keys, caps and hashes."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from typing import Any

from service.meeting_import.normalize import Invalid, canonical_timezone
from service.meeting_import.records import MeetingRecord
from service.meeting_import.types import normalize_fellowship
from service.models.vocab import RECOVERY_PATHS

logger = logging.getLogger(__name__)

MAX_SLUG = 200  # Meeting.slug
MAX_KEY = 500  # MeetingFeed.key
_COLUMN_CAPS = {"name": 255, "location": 500, "address": 500, "conference_phone": 100,
                "region": 200}  # fmt: skip
_MAX_CONFERENCE_URL = 2000
_HASHED = ("name", "fellowship", "day", "time", "end_time", "timezone", "location", "address",
           "conference_url", "conference_phone", "types", "notes", "region", "attendance")  # fmt: skip

# Directory fellowship -> the parser's type-code table; the rest use Meeting Guide (AA) codes.
_TABLE_FOR = {"na": "na", "recovery_dharma": "rd", "refuge": "rd"}
_PATH_FOR_TABLE = {"aa": "aa", "na": "na", "rd": "recovery_dharma"}
_PATH_ALIASES = {
    "alcoholics_anonymous": "aa", "narcotics_anonymous": "na", "cocaine_anonymous": "ca",
    "smart_recovery": "smart", "refuge_recovery": "refuge", "rr": "refuge",
    "rd": "recovery_dharma", "celebrate_recovery": "celebrate",
}  # fmt: skip


class ImportFailed(Exception):
    """The feed cannot be imported at all; nothing was written. `field` names the bad input."""

    def __init__(self, message: str, *, field: str = "source", reason: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.field = field  # "source" (the feed itself), "timezone", "fellowship", "feed_key"
        self.reason = reason  # a fetch reason code, "parse", "empty" or "invalid"


def resolve_fellowship(name: str | None) -> tuple[str | None, str | None]:
    """Return (directory fellowship, parser type table) for a fellowship name; (None, None) if absent."""
    if name is None or not str(name).strip():
        return None, None
    key = "_".join(str(name).replace("-", " ").split()).casefold()
    path = _PATH_ALIASES.get(key, key)
    if path in RECOVERY_PATHS:
        return path, _TABLE_FOR.get(path, "aa")
    try:
        table = normalize_fellowship(str(name))
    except ValueError:
        known = ", ".join(RECOVERY_PATHS)
        raise ImportFailed(
            f"unknown fellowship {name!r} (known: {known})", field="fellowship"
        ) from None
    return _PATH_FOR_TABLE[table], table


def fellowship_for_table(table: str) -> str:
    """Return the directory fellowship for a parser type table (aa, na, rd)."""
    return _PATH_FOR_TABLE[table]


def check_timezone(name: str | None) -> str | None:
    """Return the canonical IANA name of a default timezone, or raise ImportFailed."""
    try:
        return canonical_timezone(name)
    except Invalid:
        raise ImportFailed(f"{name!r} is not an IANA timezone", field="timezone") from None


def check_feed_key(key: str | None) -> str:
    """Return a usable feed key or raise ImportFailed."""
    key = (key or "").strip()
    if not key:
        raise ImportFailed("a feed key is required for this source", field="feed_key")
    if len(key) > MAX_KEY:
        raise ImportFailed(f"the feed key is longer than {MAX_KEY} characters", field="feed_key")
    return key


def stored_slug(slug: str) -> str:
    """Return the slug as stored: long ones are cut and suffixed with a digest to stay unique."""
    if len(slug) <= MAX_SLUG:
        return slug
    digest = hashlib.sha256(slug.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{slug[: MAX_SLUG - 13]}~{digest}"


def _canonical_encoder() -> Callable[[Any], str]:
    """Return a function giving exactly JSONEncoder(ensure_ascii, compact).encode's text.

    `JSONEncoder.encode` builds a new C encoder object on every call; the hash of each
    meeting needs only one, made here once. Without circular-reference markers: what is
    hashed is a flat list of scalars and one list of strings.
    """
    encoder = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator: the encoder's own (slower) path
        return encoder.encode
    chunks = make(
        None, encoder.default, json.encoder.encode_basestring_ascii, None,
        encoder.key_separator, encoder.item_separator, False, False, True,
    )  # fmt: skip
    join = "".join

    def encode(value: Any) -> str:
        return join(chunks(value, 0))

    return encode


_CANONICAL = _canonical_encoder()


def content_hash(values: dict[str, Any]) -> str:
    """Return the sha256 of the stored columns, so equal hashes mean nothing to write."""
    # Hashing what is stored (not MeetingRecord.content_hash(), which also covers derived
    # labels) is both exact and cheap: one encode of a list per meeting (the encoder is
    # built once; json.dumps with options builds a new one per call).
    content = [values[column] for column in _HASHED]
    canonical = _CANONICAL(content)
    return hashlib.sha256(f"v1{canonical}".encode("ascii")).hexdigest()


def meeting_values(record: MeetingRecord, timezone: str, fellowship: str) -> dict[str, Any]:
    """Return the Meeting columns for a record, capped to the column sizes."""
    values: dict[str, Any] = {
        "name": record.name, "fellowship": fellowship, "day": record.day, "time": record.time,
        "end_time": record.end_time, "timezone": timezone, "location": record.location,
        "address": record.address, "conference_url": record.conference_url,
        "conference_phone": record.conference_phone, "types": list(record.types),
        "notes": record.notes, "region": record.region, "attendance": record.attendance,
    }  # fmt: skip
    for column, cap in _COLUMN_CAPS.items():
        if values[column] is not None and len(values[column]) > cap:
            values[column] = values[column][:cap].rstrip()
    # A cut URL would be a wrong link; no link is better.
    if values["conference_url"] and len(values["conference_url"]) > _MAX_CONFERENCE_URL:
        values["conference_url"] = None
    values["content_hash"] = content_hash(values)
    return values
