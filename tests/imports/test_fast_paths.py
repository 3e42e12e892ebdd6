"""The import's fast paths give exactly what the general code gives.

Parsing keeps shortcuts for the common case (already-clean ASCII text, the plugin's own
timestamp spelling, plain http(s) URLs, cached type lists) and the store inserts new meetings
with a driver-level executemany; each is compared here with the path it short-cuts.
"""

from __future__ import annotations

import gc
import json
import unicodedata
import zoneinfo
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from service.db import db
from service.meeting_import import detect, mapping, normalize, sources, types
from service.meeting_import.mapping import meeting_values
from service.meeting_import.records import MeetingRecord, record_from
from service.meeting_import.store import _Inserter
from service.meeting_import.tsml import parse_tsml
from service.models import Meeting, MeetingFeed
from tests.imports.support import tsml_row

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)

# Text that reaches the fast path often: ASCII words and spaces, with the odd tag or entity.
ascii_text = st.text(alphabet=st.sampled_from("ab Z09<>&;-\t\n"), max_size=30)
any_text = ascii_text | st.text(max_size=30)


@SETTINGS
@given(value=any_text | st.none() | st.integers() | st.floats(), limit=st.sampled_from((5, 255)),
       multiline=st.booleans(), html=st.booleans())  # fmt: skip
@example(value="  a  b ", limit=255, multiline=False, html=True)
@example(value="a &amp; b", limit=255, multiline=True, html=True)
@example(value="x" * 6, limit=5, multiline=False, html=False)
def test_clean_text_fast_path_matches_the_general_path(
    value: Any, limit: int, multiline: bool, html: bool
) -> None:
    expected = normalize._clean_text_full(value, limit, multiline=multiline, html=html)
    assert normalize.clean_text(value, limit, multiline=multiline, html=html) == expected
    # and again, now that the value may sit in the cache
    assert normalize.clean_text(value, limit, multiline=multiline, html=html) == expected


def _general_http_url(value: Any) -> str | None:
    """http_url as it was before its shortcuts: a character scan and urlsplit."""
    text = normalize.scalar_text(value)
    if text is None:
        return None
    text = text.strip()
    if not text or any(ch.isspace() or not ch.isprintable() for ch in text):
        return None
    try:
        parts = urlsplit(text)
        hostname = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not hostname:
        return None
    return text


url_text = st.builds(
    lambda scheme, host, port, rest: f"{scheme}://{host}{port}{rest}",
    st.sampled_from(("http", "HTTPS", "ftp", "javascript", "http:")),
    st.text(alphabet=st.sampled_from("az09.-_~@[]:%é"), max_size=12),
    st.sampled_from(("", ":", ":80", ":99999", ":8a", ":123456")),
    st.text(alphabet=st.sampled_from("/?#a [] \t"), max_size=8),
)


@SETTINGS
@given(value=url_text | any_text)
@example(value="https://zoom.us/j/123")
@example(value="http://[::1")
@example(value="http://user@host/")
def test_http_url_fast_path_matches_urlsplit(value: str) -> None:
    assert normalize.http_url(value) == _general_http_url(value)


def test_only_the_ascii_space_is_printable_whitespace() -> None:
    # http_url's `" " in text or not text.isprintable()` relies on this.
    both = [chr(c) for c in range(0x110000) if chr(c).isspace() and chr(c).isprintable()]
    assert both == [" "]


@SETTINGS
@given(
    year=st.integers(0, 9999), month=st.integers(0, 13), day=st.integers(0, 32),
    hour=st.integers(0, 25), minute=st.integers(0, 61), second=st.integers(0, 61),
)  # fmt: skip
def test_plain_updated_timestamps_read_as_strptime_reads_them(
    year: int, month: int, day: int, hour: int, minute: int, second: int
) -> None:
    text = f"{year:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}"
    try:
        expected: str | None = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    except ValueError:
        expected = "fallback"
    got = normalize.parse_updated(text)
    if expected == "fallback":
        # Out of range for strptime: the general path decides (fromisoformat or None).
        try:
            moment = datetime.fromisoformat(text)
            assert got == moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        except ValueError:
            assert got is None
    else:
        assert got == expected


@SETTINGS
@given(raw=st.lists(st.sampled_from(("O", "d", " 12x12 ", "Open", "x\u200b", "", "A,B", "ONL")),
                    max_size=6) | st.text(max_size=20),
       fellowship=st.sampled_from(("aa", "na", "rd")))  # fmt: skip
def test_cached_type_codes_match_uncached(raw: Any, fellowship: str) -> None:
    uncached = types._codes(raw if isinstance(raw, list) else [raw], fellowship)
    assert types.normalize_codes(raw, fellowship) == uncached
    assert types.normalize_codes(raw, fellowship) == uncached  # a cache hit
    codes = uncached + ("o", "UNKNOWN")
    table = types.FELLOWSHIP_TABLES[fellowship]
    assert types.labels_for(codes, fellowship) == tuple(table.get(c.upper(), c) for c in codes)


def test_record_from_builds_the_same_frozen_record() -> None:
    record = parse_tsml([tsml_row(1)], default_timezone=None).records[0]
    fields = {name: getattr(record, name) for name in record.__dataclass_fields__}
    built = record_from(fields)
    assert built == MeetingRecord(**fields) and hash(built) == hash(record)
    try:
        built.name = "changed"  # type: ignore[misc]
    except AttributeError:
        pass
    else:
        raise AssertionError("a record built by record_from must stay frozen")
    try:
        record_from({**fields, "extra": 1})
    except TypeError:
        pass
    else:
        raise AssertionError("an unknown field must be refused as the constructor refuses it")


def _depth(value: Any) -> int:
    if isinstance(value, dict | list):
        children = value.values() if isinstance(value, dict) else value
        return 1 + max((_depth(child) for child in children), default=0)
    return 0


json_values = st.recursive(
    st.none() | st.integers() | st.text(max_size=3),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=40,
)


@SETTINGS
@given(value=json_values, limit=st.integers(0, 6))
def test_json_depth_check_counts_nesting(value: Any, limit: int) -> None:
    assert detect._json_depth_exceeds(value, limit) == (_depth(value) > limit)


def test_bulk_inserter_writes_what_a_core_insert_writes(people: Any) -> None:
    """The driver-level executemany stores the same row as SQLAlchemy's own insert."""
    practice_id = people.riverside.id
    feed = MeetingFeed(practice_id=practice_id, key="fast-path", created_at=T0)
    db.session.add(feed)
    db.session.flush()
    rows = [
        tsml_row(1, types=["O", "D"]),
        tsml_row(2, types=[], day=None, time=None, notes="<p>Side door</p>"),
        tsml_row(3, types=["ONL"], conference_url="https://zoom.us/j/1", name="Café ☕"),
    ]
    records = parse_tsml(rows, default_timezone=None).records
    with _Inserter(practice_id, feed.id, T0) as inserter:
        for record in records:
            inserter.add(record.slug, meeting_values(record, record.timezone or "UTC", "aa"))
        fast_ids = [row["id"] for row in inserter.rows]
        assert inserter.flush() == 3 and inserter.rows == []

    def stored(ids: list[str]) -> list[dict[str, Any]]:
        table = Meeting.__table__
        found = db.session.execute(select(table).where(table.c.id.in_(ids)).order_by(table.c.slug))
        return [{k: v for k, v in row._mapping.items() if k != "id"} for row in found]

    fast = stored(fast_ids)
    db.session.execute(delete(Meeting).where(Meeting.id.in_(fast_ids)))
    core_rows = [
        {**meeting_values(r, r.timezone or "UTC", "aa"), "id": f"mt_core{i}", "slug": r.slug,
         "practice_id": practice_id, "feed_id": feed.id, "active": True, "created_at": T0,
         "updated_at": T0, "revision": 0}
        for i, r in enumerate(records)
    ]  # fmt: skip
    db.session.execute(insert(Meeting.__table__), core_rows)
    core = stored([row["id"] for row in core_rows])
    assert fast == core
    assert [row["types"] for row in fast] == [["O", "D"], [], ["ONL"]]
    assert json.loads(json.dumps(fast[0]["types"])) == ["O", "D"]
    db.session.rollback()


def test_nfkc_host_names_are_left_to_urlsplit() -> None:
    # Non-ASCII hosts never take the shortcut; urlsplit's own checks decide.
    value = "https://exa\uff4dple.org/"
    assert unicodedata.normalize("NFKC", value) != value
    assert normalize.http_url(value) == _general_http_url(value)


@SETTINGS
@given(content=st.lists(any_text | st.none() | st.integers() | st.lists(any_text, max_size=4),
                        max_size=16))  # fmt: skip
def test_canonical_encoding_is_json_dumps(content: list[Any]) -> None:
    assert mapping._CANONICAL(content) == json.dumps(content, separators=(",", ":"))


@SETTINGS
@given(name=st.sampled_from(sorted(zoneinfo.available_timezones())),
       spelling=st.sampled_from((str, str.lower, str.upper, lambda s: f" {s} ")))  # fmt: skip
def test_exact_zone_names_read_as_the_index_reads_them(name: str, spelling: Any) -> None:
    value = spelling(name)
    index = normalize._zone_index()
    assert normalize.canonical_timezone(value) == (
        index.get(value) or index.get(value.strip().casefold())
    )


def test_the_collector_pause_restores_what_it_found() -> None:
    assert gc.isenabled()
    with sources._collector_paused():
        assert not gc.isenabled()
        with sources._collector_paused():  # a second import meanwhile leaves it alone
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    try:
        with sources._collector_paused():
            raise ValueError("a failed import")
    except ValueError:
        pass
    assert gc.isenabled()
