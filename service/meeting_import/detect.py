"""Decode a fetched feed body, tell TSML, BMLT and CSV apart, and parse it."""

from __future__ import annotations

import codecs
import json
import logging
from itertools import chain, compress
from typing import Any

from service.meeting_import.bmlt import parse_bmlt
from service.meeting_import.csvfeed import parse_csv
from service.meeting_import.records import FeedError, ParseResult
from service.meeting_import.tsml import parse_tsml, stream_tsml

logger = logging.getLogger(__name__)

# Real meeting feeds nest three levels deep; anything far deeper is hostile.
MAX_JSON_DEPTH = 32
# BMLT-only keys; a TSML object never carries them.
_BMLT_KEYS = frozenset({"id_bigint", "meeting_name", "weekday_tinyint", "venue_type"})
_SNIFF_ROWS = 25
_FALLBACK_ERRORS = "steadfast-cp1252-fallback"


def _cp1252_fallback(exc: UnicodeError) -> tuple[str, int]:
    """Decode bytes that aren't UTF-8 as cp1252, or latin-1 where cp1252 has a hole."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start : exc.end]
    chars = []
    for byte in bad:
        try:
            chars.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            chars.append(chr(byte))
    return "".join(chars), exc.end


codecs.register_error(_FALLBACK_ERRORS, _cp1252_fallback)


def _declared_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset":
            name = value.strip().strip("\"'")
            try:
                return codecs.lookup(name).name
            except LookupError:
                return None
    return None


def decode_body(raw: bytes, content_type: str | None = None) -> str:
    """Decode a feed body: BOM, then UTF-8, then a declared charset, else UTF-8 with cp1252 repair."""
    for bom, encoding in (
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if raw.startswith(bom):
            return raw[len(bom) :].decode(encoding, errors="replace")
    try:
        # Valid UTF-8 is a far stronger signal than a header WordPress got wrong.
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    declared = _declared_charset(content_type)
    if declared and declared not in ("utf-8", "ascii"):
        return raw.decode(declared, errors="replace")
    # Mostly-UTF-8 text with stray Windows-1252 bytes (a pasted curly quote) is
    # the common case; repairing byte by byte keeps the valid UTF-8 intact.
    return raw.decode("utf-8", errors=_FALLBACK_ERRORS)


_IS_DICT = frozenset({dict}).__contains__
_IS_LIST = frozenset({list}).__contains__
_IS_CONTAINER = frozenset({dict, list}).__contains__


def _json_depth_exceeds(value: Any, limit: int) -> bool:
    """Return whether json.loads output nests containers deeper than limit (the top is depth 1).

    Level by level, with the per-value work (type tests, gathering children) done by
    map/compress/chain in C, so a 10,000-meeting feed costs a fraction of its json.loads.
    """
    level = [value] if _IS_CONTAINER(type(value)) else []
    depth = 1
    while level:
        if depth > limit:
            return True
        kinds = list(map(type, level))
        children = list(
            chain(
                chain.from_iterable(map(dict.values, compress(level, map(_IS_DICT, kinds)))),
                chain.from_iterable(compress(level, map(_IS_LIST, kinds))),
            )
        )
        level = list(compress(children, map(_IS_CONTAINER, map(type, children))))
        depth += 1
    return False


def _load_json(text: str) -> Any:
    try:
        data = json.loads(text)
    except RecursionError:
        raise FeedError("the JSON feed is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, and ints past the digit limit
        raise FeedError(f"the feed is not valid JSON: {exc}") from None
    if _json_depth_exceeds(data, MAX_JSON_DEPTH):
        raise FeedError("the JSON feed is nested too deeply")
    return data


def _looks_like_bmlt(data: Any) -> bool:
    rows = data.get("meetings") if isinstance(data, dict) else data
    if not isinstance(rows, list):
        return False
    objects = [row for row in rows[:_SNIFF_ROWS] if isinstance(row, dict)]
    return any(_BMLT_KEYS & row.keys() for row in objects)


def parse_feed(
    raw: bytes,
    *,
    content_type: str | None,
    default_timezone: str | None,
    fellowship: str | None = None,
    stream: bool = False,
) -> ParseResult:
    """Detect the feed format, decode and parse it; fellowship None picks aa (TSML/CSV) or na (BMLT).

    With `stream`, a TSML feed's rows are left pending (see ParseResult.parse_more).
    """
    text = decode_body(raw, content_type).removeprefix("\ufeff")
    stripped = text.lstrip()
    if not stripped:
        raise FeedError("the feed is empty")
    media_type = (content_type or "").split(";")[0].strip().lower()

    if stripped[0] in "[{" or media_type.endswith("json"):
        data = _load_json(stripped)
        if _looks_like_bmlt(data):
            return parse_bmlt(
                data, default_timezone=default_timezone, fellowship=fellowship or "na"
            )
        parse = stream_tsml if stream else parse_tsml
        return parse(data, default_timezone=default_timezone, fellowship=fellowship or "aa")

    if stripped[0] == "<":
        raise FeedError("the feed is an HTML/XML page, not meeting JSON or CSV")
    first_line = stripped.split("\n", 1)[0]
    if "csv" in media_type or "," in first_line or "\t" in first_line:
        return parse_csv(text, default_timezone=default_timezone, fellowship=fellowship or "aa")
    raise FeedError("the feed is neither JSON nor CSV")
