"""The import's overlap of parsing, normalising and inserting gives what one pass after another gives.

On PostgreSQL the insert batches travel in psycopg's pipeline mode (sent without waiting for
each answer); these tests hold it to what one statement at a time gives: the same rows, the
same IntegrityError (the API's 409), a session that rolls back cleanly, and no connection left
in pipeline mode. A TSML feed's rows are parsed as the import needs them (stream_tsml); that
gives the whole parse's records and skips, the same reports and rows, and still refuses an
all-bad feed before writing anything.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError

from service.db import db
from service.meeting_import import ImportFailed, import_records, import_source, store
from service.meeting_import.mapping import meeting_values
from service.meeting_import.store import _Inserter
from service.meeting_import.tsml import parse_tsml, stream_tsml
from service.models import Meeting, MeetingFeed
from tests.imports.support import as_bytes, row_counts, tsml_feed, tsml_row

T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
_KEEP = object()  # a tsml_row field left as it is


def _feed(practice_id: str, key: str = "pipeline") -> MeetingFeed:
    feed = MeetingFeed(practice_id=practice_id, key=key, created_at=T0)
    db.session.add(feed)
    db.session.flush()
    return feed


def _values(count: int) -> list[tuple[str, dict[str, Any]]]:
    records = parse_tsml(tsml_feed(count), default_timezone=None).records
    return [(r.slug, meeting_values(r, r.timezone or "UTC", "aa")) for r in records]


def _stored(ids: list[str]) -> list[dict[str, Any]]:
    table = Meeting.__table__
    found = db.session.execute(select(table).where(table.c.id.in_(ids)).order_by(table.c.slug))
    return [{k: v for k, v in row._mapping.items() if k != "id"} for row in found]


def _not_in_pipeline_mode() -> bool:
    driver = db.session.connection().connection.driver_connection
    pgconn = getattr(driver, "pgconn", None)
    return pgconn is None or pgconn.pipeline_status == 0  # 0: PQ_PIPELINE_OFF


def test_batches_store_what_one_core_insert_stores(people: Any) -> None:
    practice_id = people.riverside.id
    feed = _feed(practice_id)
    rows = _values(7)
    with _Inserter(practice_id, feed.id, T0) as inserter:
        handled = 0
        for start in range(0, 7, 3):  # three batches: 3, 3 and 1 rows
            for slug, values in rows[start : start + 3]:
                inserter.add(slug, dict(values))
            ids = [row["id"] for row in inserter.rows]
            handled += inserter.flush()
            assert inserter.rows == [] and len(ids) == min(3, 7 - start)
    assert handled == 7
    assert _not_in_pipeline_mode()
    fast = _stored(
        [m.id for m in db.session.scalars(select(Meeting).where(Meeting.feed_id == feed.id))]
    )

    db.session.execute(text("DELETE FROM meetings WHERE feed_id = :f"), {"f": feed.id})
    core_rows = [
        {**values, "id": f"mt_core{i}", "slug": slug, "practice_id": practice_id,
         "feed_id": feed.id, "active": True, "created_at": T0, "updated_at": T0, "revision": 0}
        for i, (slug, values) in enumerate(_values(7))
    ]  # fmt: skip
    db.session.execute(insert(Meeting.__table__), core_rows)
    assert fast == _stored([row["id"] for row in core_rows])
    assert len(fast) == 7
    db.session.rollback()


def test_a_failed_batch_raises_integrity_error_and_rolls_back(people: Any) -> None:
    practice_id = people.riverside.id
    feed = _feed(practice_id)
    rows = _values(4)
    taken_slug, taken = rows[2]  # another import already stored this slug
    db.session.execute(
        insert(Meeting.__table__),
        [{**taken, "id": "mt_taken", "slug": taken_slug, "practice_id": practice_id,
          "feed_id": feed.id, "active": True, "created_at": T0, "updated_at": T0, "revision": 0}],
    )  # fmt: skip
    # The error may surface at the second flush or on leaving the block.
    with pytest.raises(IntegrityError), _Inserter(practice_id, feed.id, T0) as inserter:  # noqa: PT012
        for slug, values in rows[:2]:
            inserter.add(slug, dict(values))
        inserter.flush()  # a good batch first
        for slug, values in rows[2:]:
            inserter.add(slug, dict(values))
        inserter.flush()  # the conflicting one
    db.session.rollback()
    assert _not_in_pipeline_mode()
    assert db.session.scalar(select(Meeting.id).where(Meeting.id == "mt_taken")) is None
    assert db.session.scalar(text("SELECT 1")) == 1


def test_an_error_inside_the_block_passes_through_and_leaves_no_pipeline(people: Any) -> None:
    practice_id = people.riverside.id
    feed = _feed(practice_id)
    with pytest.raises(ZeroDivisionError), _Inserter(practice_id, feed.id, T0) as inserter:  # noqa: PT012
        for slug, values in _values(2):
            inserter.add(slug, dict(values))
        inserter.flush()
        _ = 1 / 0
    assert _not_in_pipeline_mode()
    db.session.rollback()
    assert db.session.scalar(text("SELECT 1")) == 1


def test_a_slug_race_is_the_api_409(client: Any, alice: Any, monkeypatch: Any) -> None:
    """Another import stores a slug after this one read the feed's meetings: 409, not 500."""
    remember = store._remember_feed

    def racing(*args: Any, **kwargs: Any) -> MeetingFeed:
        feed = remember(*args, **kwargs)
        slug, values = _values(3)[1]
        db.session.execute(
            insert(Meeting.__table__),
            [{**values, "id": "mt_racer", "slug": slug, "practice_id": feed.practice_id,
              "feed_id": feed.id, "active": True, "created_at": T0, "updated_at": T0,
              "revision": 0}],
        )  # fmt: skip
        return feed

    monkeypatch.setattr(store, "_remember_feed", racing)
    response = client.post(
        "/api/v1/meetings/import", json={"feed": tsml_feed(3), "feed_key": "race"},
        headers=alice.headers,
    )  # fmt: skip
    assert response.status_code == 409, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert db.session.scalar(select(Meeting.id).where(Meeting.id == "mt_racer")) is None


def test_many_batches_through_import_source(people: Any, monkeypatch: Any) -> None:
    """An import of several batches creates every meeting, as one batch does."""
    monkeypatch.setattr(store, "BATCH", 4)
    report = import_source(
        practice=people.riverside, source=as_bytes(tsml_feed(10)), feed_key="batches",
        allow_private=False, now=T0,
    )  # fmt: skip
    db.session.commit()
    assert report.created == 10
    assert _not_in_pipeline_mode()
    slugs = set(db.session.scalars(select(Meeting.slug).where(Meeting.feed_id == report.feed_id)))
    assert slugs == {f"meeting-{n}" for n in range(1, 11)}


# --- a streamed parse: rows parsed while the batches are inserted ---------------------------

_row = st.builds(
    lambda n, **kw: tsml_row(n, **{k: v for k, v in kw.items() if v is not _KEEP}),
    st.integers(1, 12),
    day=st.sampled_from([_KEEP, None, [1, 3], [2, 2], "Monday", 9]),
    time=st.sampled_from([_KEEP, None, "7pm", "25:00"]),
    timezone=st.sampled_from([_KEEP, None, "", "Mars/Base"]),
    slug=st.sampled_from([_KEEP, "meeting-1-3", "", "x" * 250]),
)
_rows = st.lists(_row | st.sampled_from([None, 7, "row"]), max_size=14)


@settings(max_examples=200, deadline=None)
@given(rows=_rows, chunk=st.sampled_from([1, 2, 3, 500]))
def test_a_streamed_parse_is_the_whole_parse(rows: list[Any], chunk: int) -> None:
    whole = parse_tsml(rows, default_timezone=None)
    streamed = stream_tsml(rows, default_timezone=None, rows=chunk)
    assert streamed.records == [] and streamed.skipped == []  # nothing parsed yet
    pulls = 0
    while streamed.parse_more():
        pulls += 1
    assert pulls == -(-len(rows) // chunk)
    assert (streamed.records, streamed.skipped, streamed.format) == (
        whole.records, whole.skipped, whole.format,
    )  # fmt: skip


def _stored_by_slug(feed_id: str) -> dict[str, dict[str, Any]]:
    table = Meeting.__table__
    found = db.session.execute(select(table).where(table.c.feed_id == feed_id))
    skip = {"id", "feed_id"}
    return {row.slug: {k: v for k, v in row._mapping.items() if k not in skip} for row in found}


def test_a_streamed_import_is_the_whole_import(people: Any) -> None:
    """Same report (skips in the same order) and rows, first import and re-import alike."""
    feed = [
        tsml_row(1, timezone=None), tsml_row(20, day=None, timezone=None), tsml_row(2), "not a row", tsml_row(3, day=[1, 4]),
        tsml_row(2, name="Again"), tsml_row(4, slug="meeting-3-1"), tsml_row(5, time="25:00"),
        tsml_row(6, slug="y" * 250), tsml_row(7, slug="y" * 249 + "z"), *tsml_feed(5, start=8),
    ]  # fmt: skip
    edited = [tsml_row(3, day=[1]), tsml_row(2, name="Renamed"), *feed[6:], tsml_row(1)]
    reports: dict[str, list[dict[str, Any]]] = {}
    for key in ("whole", "streamed"):
        reports[key] = []
        for rows in (feed, edited):
            result = (
                parse_tsml(rows, default_timezone=None) if key == "whole"
                else stream_tsml(rows, default_timezone=None, rows=2)
            )  # fmt: skip
            report = import_records(
                practice=people.riverside, feed_key=key, result=result, default_timezone=None,
                fellowship=None, now=T0,
            )  # fmt: skip
            reports[key].append(report.as_dict())
            assert result.pending is None
    assert reports["whole"] == reports["streamed"]
    skipped = reports["whole"][0]["skipped"]
    assert {s["reason"] for s in skipped} >= {"no timezone", "duplicate slug", "not an object"}
    # The store's own skip (an unscheduled row with no zone at all) comes after the parser's.
    assert skipped[-1] == {"slug": "meeting-20", "reason": "no timezone"}
    feeds = {f.key: f.id for f in db.session.scalars(select(MeetingFeed))}
    assert _stored_by_slug(feeds["whole"]) == _stored_by_slug(feeds["streamed"])
    assert len(_stored_by_slug(feeds["whole"])) >= 10
    db.session.rollback()


def test_a_streamed_feed_of_only_bad_rows_is_refused_before_any_write(people: Any) -> None:
    import_source(
        practice=people.riverside, source=as_bytes(tsml_feed(3)), feed_key="k",
        allow_private=False, now=T0,
    )  # fmt: skip
    db.session.commit()
    before = row_counts()
    bad = as_bytes([tsml_row(n, time="25:00") for n in range(1, 1200)])  # three parse chunks
    with pytest.raises(ImportFailed) as failure:
        import_source(
            practice=people.riverside, source=bad, feed_key="k", allow_private=False, now=T0
        )
    assert failure.value.reason == "empty"
    assert row_counts() == before  # before any rollback: nothing was even flushed
    db.session.rollback()


def test_a_progress_callback_sees_the_whole_count_first(people: Any) -> None:
    seen: list[tuple[int, int]] = []
    report = import_source(
        practice=people.riverside, source=as_bytes(tsml_feed(1100)), feed_key="p",
        allow_private=False, now=T0, progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert report.created == 1100
    assert seen == [(500, 1100), (1000, 1100), (1100, 1100)]
    db.session.rollback()


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    texts=st.lists(st.tuples(_text, _text | st.none(), _text | st.none()), min_size=1, max_size=4),
    types=st.lists(st.sampled_from(["O", "D", "ONL", "Ü", 'a"b', "c\\d"]), max_size=3),
)
def test_any_text_is_stored_as_a_core_insert_stores_it(
    people: Any, texts: list[tuple[str, str | None, str | None]], types: list[str]
) -> None:
    """Quotes, backslashes, escapes and any Unicode survive the batch's JSON arrays."""
    practice_id = people.riverside.id
    feed = _feed(practice_id, key="texts")
    rows = []
    for n, (name, notes, location) in enumerate(texts):
        values = {**_values(1)[0][1], "name": name or "x", "notes": notes,
                  "location": location, "types": list(types), "day": None, "time": None}  # fmt: skip
        rows.append((f"s{n}", values))
    with _Inserter(practice_id, feed.id, T0) as inserter:
        for slug, values in rows:
            inserter.add(slug, dict(values))
        fast_ids = [row["id"] for row in inserter.rows]
        inserter.flush()
    fast = _stored(fast_ids)
    db.session.execute(text("DELETE FROM meetings WHERE feed_id = :f"), {"f": feed.id})
    core_rows = [
        {**values, "id": f"mt_core{i}", "slug": slug, "practice_id": practice_id,
         "feed_id": feed.id, "active": True, "created_at": T0, "updated_at": T0,
         "revision": 0}
        for i, (slug, values) in enumerate(rows)
    ]  # fmt: skip
    db.session.execute(insert(Meeting.__table__), core_rows)
    assert fast == _stored([row["id"] for row in core_rows])
    db.session.rollback()
