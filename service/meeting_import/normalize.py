"""Field-level cleaning shared by the feed parsers: text, days, times, zones, attendance."""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import re
import unicodedata
import zoneinfo
from datetime import UTC, date, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from service.meeting_import.records import (
    ATTENDANCE_HYBRID,
    ATTENDANCE_IN_PERSON,
    ATTENDANCE_INACTIVE,
    ATTENDANCE_ONLINE,
    SKIP_DUPLICATE_SLUG,
    SKIP_INVALID_DAY,
    SKIP_INVALID_TIME,
    SKIP_INVALID_TIMEZONE,
    SKIP_NO_TIMEZONE,
    MeetingRecord,
    ParseResult,
    Skipped,
)

logger = logging.getLogger(__name__)

MAX_NAME = 255
MAX_SLUG = 200  # leaves room for the "-{day}" suffix of expanded day arrays
MAX_LOCATION = 255
MAX_ADDRESS = 500
MAX_REGION = 255
MAX_NOTES = 10_000
MAX_PHONE = 100
MAX_URL = 2048
MAX_TIMEZONE = 64
# Raw input is cut before HTML parsing so a hostile field can't cost much CPU.
_RAW_FACTOR = 4
# Feeds repeat the same few values (times, zones, notes, type lists) thousands of times, so
# short ones are cleaned once per process; the length cap keeps the caches' memory bounded.
_CACHE_SIZE = 4096
_CACHED_LENGTH = 256

# Zero-width joiner/non-joiner carry meaning in emoji and some scripts; every
# other format character (bidi overrides, BOMs, soft hyphens) is dropped.
_KEEP_FORMAT_CHARS = frozenset("\u200c\u200d")

_DAY_NAMES = {
    "sunday": 0,
    "sun": 0,
    "monday": 1,
    "mon": 1,
    "tuesday": 2,
    "tue": 2,
    "tues": 2,
    "wednesday": 3,
    "wed": 3,
    "thursday": 4,
    "thu": 4,
    "thur": 4,
    "thurs": 4,
    "friday": 5,
    "fri": 5,
    "saturday": 6,
    "sat": 6,
}

_TIME_RE = re.compile(
    r"^(?P<h>\d{1,2})(?::(?P<m>\d{2}))?(?::(?P<s>\d{2}))?\s*"
    r"(?:(?P<ampm>[ap])\.?\s*m?\.?)?$",
    re.IGNORECASE,
)

_UPDATED_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y")
# The TSML plugin's own spelling of the first format, read without strptime.
# An http(s) URL whose host is a plain name (no user info, no brackets, ASCII only).
_PLAIN_HTTP_URL = re.compile(r"(?i:https?)://[A-Za-z0-9._~-]+(?::[0-9]{0,5})?(?:[/?#]|\Z)")
_UPDATED_PLAIN = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")
# The same spelling with a year from 1000 and a real clock time, where only the day (say
# 2024-02-30) is left to check and the text is already the stored shape but for "T"/"Z".
_UPDATED_FAST = re.compile(
    r"[1-9][0-9]{3}-[0-9]{2}-[0-9]{2} (?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
)


class Invalid(Exception):
    """A field is present but unusable; carries the skip reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def scalar_text(value: Any) -> str | None:
    """Return a JSON scalar as text (numbers included), or None for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        # str() of a huge int raises in 3.11+; nothing sane is that long.
        return str(value) if abs(value) < 10**30 else None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() and abs(value) < 10**15 else repr(value)
    return None


def _clean_chars(text: str, *, multiline: bool) -> str:
    if text.isascii() and text.isprintable():
        # The common case: printable ASCII has no control or format characters to drop.
        return text
    text = text.replace("\r\n", "\n")
    out = []
    for ch in text:
        if ch in "\n\r\t\v\f\x85\u2028\u2029":
            out.append("\n" if multiline and ch not in "\t\v\f" else " ")
            continue
        category = unicodedata.category(ch)
        if category in ("Cc", "Cs") or (category == "Cf" and ch not in _KEEP_FORMAT_CHARS):
            continue
        out.append(ch)
    return "".join(out)


def _squash(text: str, *, multiline: bool) -> str:
    if not multiline:
        return " ".join(text.split())
    lines = [" ".join(line.split()) for line in text.split("\n")]
    joined = "\n".join(lines).strip("\n")
    return re.sub(r"\n{3,}", "\n\n", joined)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rstrip()


def clean_text(value: Any, limit: int, *, multiline: bool = False, html: bool = True) -> str | None:
    """Return value as plain, stripped, control-free text capped at limit; None if empty."""
    if value is None:
        return None
    if (
        type(value) is str
        and len(value) <= limit
        and value.isascii()
        and value.isprintable()
        and (not html or ("<" not in value and "&" not in value))
        and "  " not in value
        and value[:1] != " "
        and value[-1:] != " "
    ):
        # The common case, already clean: printable ASCII has no control, format or line
        # characters, so the only whitespace is single inner spaces and nothing changes.
        return value or None
    if type(value) is str and len(value) <= _CACHED_LENGTH:
        return _clean_text_cached(value, limit, multiline, html)
    return _clean_text_full(value, limit, multiline=multiline, html=html)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _clean_text_cached(value: str, limit: int, multiline: bool, html: bool) -> str | None:
    return _clean_text_full(value, limit, multiline=multiline, html=html)


def _clean_text_full(value: Any, limit: int, *, multiline: bool, html: bool) -> str | None:
    """clean_text without its fast path (kept separate so tests can compare the two)."""
    text = scalar_text(value)
    if text is None:
        return None
    text = text[: limit * _RAW_FACTOR]
    if html:
        text = html_to_text(text)
    text = _squash(_clean_chars(text, multiline=multiline), multiline=multiline)
    text = _truncate(text, limit)
    return text or None


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset(
        {"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol"}
    )
    _SKIP = frozenset({"script", "style", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(fragment: str) -> str:
    """Strip tags from an HTML fragment and unescape its entities."""
    if "<" not in fragment and "&" not in fragment:
        return fragment
    parser = _TextExtractor()
    try:
        parser.feed(fragment)
        parser.close()
    except Exception:  # html.parser is lenient, but one fragment must never sink a row
        logger.debug("html fragment not parseable; keeping it as text")
        return fragment
    return "".join(parser.parts)


def parse_day(value: Any) -> int | None:
    """Return 0-6 (0 = Sunday) for a day value, None if absent, or raise Invalid."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise Invalid(SKIP_INVALID_DAY)
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            raise Invalid(SKIP_INVALID_DAY)
        number = int(value)
    elif isinstance(value, str):
        text = value.strip().casefold().rstrip(".")
        if text in _DAY_NAMES:
            return _DAY_NAMES[text]
        if not (text.isascii() and text.isdigit() and len(text) <= 2):
            raise Invalid(SKIP_INVALID_DAY)
        number = int(text)
    else:
        raise Invalid(SKIP_INVALID_DAY)
    if not 0 <= number <= 6:
        raise Invalid(SKIP_INVALID_DAY)
    return number


def parse_days(value: Any) -> list[int] | None:
    """Return the list of days for a scalar or array day value (None if absent)."""
    if type(value) is int and 0 <= value <= 6:
        return [value]  # the TSML plugin's own spelling
    if isinstance(value, list):
        days: list[int] = []
        for item in value:
            day = parse_day(item)
            if day is None:
                raise Invalid(SKIP_INVALID_DAY)
            if day not in days:
                days.append(day)
        return days or None
    day = parse_day(value)
    return None if day is None else [day]


def parse_time(value: Any) -> str | None:
    """Return "HH:MM" for the many time spellings feeds use, None if absent, or raise Invalid."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid(SKIP_INVALID_TIME)
    if len(value) <= _CACHED_LENGTH:
        return _parse_time_cached(value)
    return _parse_time_text(value)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _parse_time_cached(value: str) -> str | None:
    return _parse_time_text(value)  # Invalid propagates and is not cached


def _parse_time_text(value: str) -> str | None:
    text = value.strip().casefold()
    if not text:
        return None
    if text == "noon":
        return "12:00"
    if text == "midnight":
        return "00:00"
    match = _TIME_RE.match(text) if len(text) <= 20 else None
    if not match:
        raise Invalid(SKIP_INVALID_TIME)
    hour = int(match["h"])
    minute = int(match["m"] or 0)
    ampm = match["ampm"]
    if minute > 59 or (match["s"] and int(match["s"]) > 59):
        raise Invalid(SKIP_INVALID_TIME)
    if ampm:
        if not 1 <= hour <= 12:
            raise Invalid(SKIP_INVALID_TIME)
        hour = hour % 12 + (12 if ampm == "p" else 0)
    elif match["m"] is None or hour > 23:
        # A bare "7" is ambiguous and "25:00" is nonsense.
        raise Invalid(SKIP_INVALID_TIME)
    return f"{hour:02d}:{minute:02d}"


def add_minutes(hhmm: str, minutes: int) -> str:
    """Return hhmm plus minutes, wrapping past midnight."""
    hour, minute = (int(part) for part in hhmm.split(":"))
    total = (hour * 60 + minute + minutes) % (24 * 60)
    return f"{total // 60:02d}:{total % 60:02d}"


def end_time_or_default(raw_end: Any, start: str) -> str:
    """Return the parsed end time, or start + 1 h when absent or unusable."""
    try:
        end = parse_time(raw_end)
    except Invalid:
        # A broken end time is not worth losing the meeting over.
        end = None
    return end or add_minutes(start, 60)


@functools.cache
def _zone_index() -> dict[str, str]:
    return {name.casefold(): name for name in zoneinfo.available_timezones()}


@functools.cache
def _exact_zones() -> dict[str, str]:
    return {name: name for name in _zone_index().values()}


def canonical_timezone(value: Any) -> str | None:
    """Return the canonical IANA name for value, None if absent, or raise Invalid."""
    if type(value) is str:
        name = _exact_zones().get(value)
        if name is not None:
            return name  # the common case: a zone spelled as IANA spells it
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str) or len(value) > MAX_TIMEZONE:
        raise Invalid(SKIP_INVALID_TIMEZONE)
    # Looking names up in the known set (not ZoneInfo(value)) keeps arbitrary
    # feed strings away from the filesystem and accepts sloppy casing.
    index = _zone_index()
    name = index.get(value) or index.get(value.strip().casefold())
    if name is None:
        raise Invalid(SKIP_INVALID_TIMEZONE)
    return name


def resolve_timezone(value: Any, default: str | None) -> str:
    """Return the row's timezone or the default, raising Invalid with the skip reason."""
    zone = canonical_timezone(value)
    if zone is not None:
        return zone
    if default is None:
        raise Invalid(SKIP_NO_TIMEZONE)
    return default


def http_url(value: Any) -> str | None:
    """Return value if it is an absolute http(s) URL, else None."""
    text = scalar_text(value)
    if text is None:
        return None
    text = text.strip()
    # The only character both printable and whitespace is the ASCII space.
    if not text or len(text) > MAX_URL or " " in text or not text.isprintable():
        return None
    if _PLAIN_HTTP_URL.match(text):
        return text  # urlsplit would find an http(s) scheme and a plain host name
    try:
        parts = urlsplit(text)
        hostname = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not hostname:
        return None
    return text


def phone_text(value: Any) -> str | None:
    """Return a conference phone string if it contains at least one digit."""
    text = clean_text(value, MAX_PHONE, html=False)
    if text is None or not any(ch.isdigit() for ch in text):
        return None
    return text


def truthy_flag(value: Any) -> bool:
    """Interpret "yes"/"true"/"1"/True as true; anything else is false."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == 1
    if isinstance(value, str):
        return value.strip().casefold() in ("yes", "y", "true", "1")
    return False


def parse_updated(value: Any) -> str | None:
    """Return a feed timestamp (UTC) as "YYYY-MM-DDTHH:MM:SSZ", or None if unreadable."""
    if not isinstance(value, str):
        return None
    text = value.strip()[:40]
    if not text:
        return None
    if _UPDATED_FAST.fullmatch(text) is not None:
        day = text[:10]
        if _is_plain_date(day):
            return f"{day}T{text[11:]}Z"  # a real day and time, already in the stored shape
    moment: datetime | None = None
    plain = _UPDATED_PLAIN.fullmatch(text)
    if plain is not None:
        year, month, day, hour, minute, second = map(int, plain.groups())
        try:
            moment = datetime(year, month, day, hour, minute, second)
        except ValueError:
            pass  # out of range: the general path below decides
        else:
            # strftime's %Y is not zero-padded below year 1000; the text already is.
            return f"{text[:10]}T{text[11:]}Z" if year >= 1000 else _iso_z(moment)
    for fmt in _UPDATED_FORMATS:
        try:
            moment = datetime.strptime(text, fmt)  # feeds publish naive UTC
            break
        except ValueError:
            continue
    if moment is None:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return _iso_z(moment)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _is_plain_date(text: str) -> bool:
    """Return whether "YYYY-MM-DD" (digits) names a real day; a feed's stamps share few days."""
    try:
        date(int(text[:4]), int(text[5:7]), int(text[8:10]))
    except ValueError:
        return False
    return True


def _iso_z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def attendance_for(
    *,
    conference_url: str | None,
    conference_phone: str | None,
    has_address: bool,
    approximate: bool,
    types: tuple[str, ...],
    online_only: bool = False,
) -> str:
    """Decide in_person / online / hybrid / inactive from conference info and address."""
    has_conference = bool(conference_url or conference_phone)
    physical = has_address and not approximate
    if has_conference:
        # A temporarily closed location can only be attended online, whatever
        # the address says; showing "hybrid" would send people to a locked door.
        if not physical or "TC" in types:
            return ATTENDANCE_ONLINE
        return ATTENDANCE_HYBRID
    if "TC" in types:
        return ATTENDANCE_INACTIVE
    # Online-only (declared, or only an approximate location) with nothing to join.
    if online_only or approximate or ("ONL" in types and not physical):
        return ATTENDANCE_INACTIVE
    return ATTENDANCE_IN_PERSON


def slugify(text: str, limit: int = 80) -> str:
    """Return a lowercase ASCII slug of text."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:limit].rstrip("-")


def derived_slug(name: str, day: str, time: str, address: str) -> str:
    """Return a stable slug from a meeting's name, day, time and address."""
    key = "\x1f".join(" ".join(part.split()).casefold() for part in (name, day, time, address))
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    base = slugify(name, 60)
    return f"{base}-{digest}" if base else f"meeting-{digest}"


def check_default_timezone(value: str | None) -> str | None:
    """Return the canonical default timezone, raising ValueError if it is not a real zone."""
    try:
        return canonical_timezone(value)
    except Invalid:
        raise ValueError(f"default_timezone {value!r} is not an IANA timezone") from None


def join_notes(*parts: str | None) -> str | None:
    """Join distinct non-empty note sections with blank lines, capped at MAX_NOTES."""
    kept: list[str] = []
    for part in parts:
        if part and part not in kept:
            kept.append(part)
    return _truncate("\n\n".join(kept), MAX_NOTES) or None


def join_address(*parts: str | None) -> str | None:
    """Join non-empty address parts with commas, capped at MAX_ADDRESS."""
    return _truncate(", ".join(p for p in parts if p), MAX_ADDRESS) or None


class Collector:
    """Accumulate records and skips for one feed, enforcing unique slugs."""

    def __init__(self, format_name: str) -> None:
        self.result = ParseResult(format=format_name)
        self._claimed: set[str] = set()
        self._emitted: set[str] = set()

    def skip(self, slug: str | None, reason: str) -> None:
        """Report a row as not imported."""
        self.result.skipped.append(Skipped(slug=slug, reason=reason))

    def claim(self, slug: str) -> bool:
        """Claim a feed slug for its first row; later rows with it are skipped."""
        if slug in self._claimed:
            self.skip(slug, SKIP_DUPLICATE_SLUG)
            return False
        self._claimed.add(slug)
        return True

    def add(self, record: MeetingRecord) -> None:
        """Keep a record unless an earlier one already produced its slug."""
        # Day expansion can collide with a real slug ("x" on [1] vs a row "x-1").
        if record.slug in self._emitted:
            self.skip(record.slug, SKIP_DUPLICATE_SLUG)
            return
        self._emitted.add(record.slug)
        self.result.records.append(record)
