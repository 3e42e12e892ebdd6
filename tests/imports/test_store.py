"""Upserting feeds into the directory: exact counts, re-imports, deactivation alerts, isolation."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from bench.make_tsml_feed import make_feed
from service.db import db
from service.meeting_import import ImportFailed, import_records, import_source, parse_tsml
from service.models import Alert, CheckIn, Event, Meeting, MeetingFeed
from tests.factories import make_plan
from tests.imports.conftest import FIXTURES
from tests.imports.support import as_bytes, count, report_counts, row_counts, tsml_feed, tsml_row

T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
LATER = T0 + timedelta(days=1)


def run(practice: Any, source: Any, *, now: datetime = T0, **kw: Any) -> Any:
    """Import and commit, as the CLI and API do."""
    report = import_source(practice=practice, source=source, allow_private=False, now=now, **kw)
    db.session.commit()
    return report


def meetings(practice_id: str, key: str | None = None) -> dict[str, Meeting]:
    stmt = select(Meeting).where(Meeting.practice_id == practice_id)
    if key is not None:
        stmt = stmt.join(MeetingFeed, MeetingFeed.id == Meeting.feed_id).where(
            MeetingFeed.key == key
        )
    return {m.slug: m for m in db.session.scalars(stmt)}


def skips(report: Any) -> list[tuple[str | None, str]]:
    return [(s["slug"], s["reason"]) for s in report.as_dict()["skipped"]]


# --- the four fixture shapes ------------------------------------------------------------


def test_wordpress_tsml_feed(people):
    report = run(people.riverside, str(FIXTURES / "tsml_wordpress.json"))
    assert report_counts(report) == (8, 0, 0, 0, 8)
    assert skips(report) == [
        ("1042", "no timezone"),
        ("monday-night-big-book", "duplicate slug"),
        ("bad-zone", "invalid timezone"),
        ("funday", "invalid day"),
        (None, "missing slug"),
        ("no-name", "missing name"),
        (None, "not an object"),
        # Unscheduled and zoneless: kept by the parser, but the directory needs a zone.
        ("by-appointment", "no timezone"),
    ]
    feed = db.session.scalar(select(MeetingFeed))
    assert (feed.key, feed.url, feed.format, feed.fellowship) == (
        "tsml_wordpress",
        None,
        "tsml",
        "aa",
    )
    assert feed.next_refresh_at is None and feed.last_imported_at == T0
    found = meetings(people.riverside.id)
    assert set(found) == {
        "monday-night-big-book", "tue-thu-step-study-2", "tue-thu-step-study-4",
        "zoom-daily-reflections", "friday-womens-hybrid", "saturday-closed", "online-no-link",
        "sketchy-link",
    }  # fmt: skip
    big_book = found["monday-night-big-book"]
    assert (big_book.day, big_book.time, big_book.end_time) == (1, "19:30", "20:30")
    assert (big_book.timezone, big_book.fellowship, big_book.attendance) == (
        "America/Chicago", "aa", "in_person",
    )  # fmt: skip
    assert big_book.types == ["O", "B", "X"]
    assert big_book.active and big_book.revision == 0 and big_book.feed_id == feed.id
    assert found["zoom-daily-reflections"].attendance == "online"
    assert report.feed_id == feed.id


def test_wordpress_with_a_default_zone_keeps_zoneless_rows(people):
    report = run(
        people.riverside, str(FIXTURES / "tsml_wordpress.json"), default_timezone="America/Denver"
    )
    assert report_counts(report) == (10, 0, 0, 0, 6)
    found = meetings(people.riverside.id)
    assert found["by-appointment"].day is None and found["by-appointment"].time is None
    assert found["by-appointment"].timezone == "America/Denver"
    assert db.session.scalar(select(MeetingFeed.default_timezone)) == "America/Denver"


def test_google_sheets_tsml_feed(people):
    report = run(people.riverside, (FIXTURES / "tsml_sheets.json").read_bytes(), feed_key="sheet")
    assert report_counts(report) == (2, 0, 0, 0, 0)
    found = meetings(people.riverside.id, "sheet")
    assert (found["midnight-gratitude"].day, found["midnight-gratitude"].time) == (6, "00:00")
    assert found["monday-noon-discussion"].types == ["O", "D", "LIT"]


def test_bmlt_feed(people):
    report = run(people.riverside, str(FIXTURES / "bmlt.json"))
    assert report_counts(report) == (4, 0, 0, 0, 4)
    assert skips(report) == [
        ("102", "no timezone"), ("105", "unpublished"), ("101", "duplicate slug"),
        ("106", "invalid day"),
    ]  # fmt: skip
    assert {m.fellowship for m in meetings(people.riverside.id).values()} == {"na"}
    assert db.session.scalar(select(MeetingFeed.fellowship)) == "na"
    assert db.session.scalar(select(MeetingFeed.format)) == "bmlt"


def test_csv_feed_file(people):
    report = run(people.riverside, str(FIXTURES / "meetings.csv"))
    assert report_counts(report) == (3, 0, 0, 0, 2)
    assert skips(report) == [("bad-day", "invalid day"), ("by-appt", "no timezone")]
    assert db.session.scalar(select(MeetingFeed.key)) == "meetings"
    # The remembered default zone serves the re-import that does not repeat it.
    report = run(
        people.riverside, str(FIXTURES / "meetings.csv"), default_timezone="America/Chicago"
    )
    assert report_counts(report) == (1, 0, 3, 0, 1)
    report = run(people.riverside, str(FIXTURES / "meetings.csv"), now=LATER)
    assert report_counts(report) == (0, 0, 4, 0, 1)


# --- re-imports ------------------------------------------------------------------------


def test_unchanged_rows_are_not_rewritten(people):
    run(people.riverside, str(FIXTURES / "tsml_wordpress.json"))
    before = {m.slug: (m.updated_at, m.revision) for m in meetings(people.riverside.id).values()}
    report = run(people.riverside, str(FIXTURES / "tsml_wordpress.json"), now=LATER)
    assert report_counts(report) == (0, 0, 8, 0, 8)
    db.session.expire_all()
    after = {m.slug: (m.updated_at, m.revision) for m in meetings(people.riverside.id).values()}
    assert after == before
    assert all(updated == T0 and revision == 0 for updated, revision in after.values())
    assert db.session.scalar(select(MeetingFeed.last_imported_at)) == LATER


def test_reimport_of_an_edited_feed(people):
    feed = tsml_feed(5)
    assert report_counts(run(people.riverside, as_bytes(feed), feed_key="k")) == (5, 0, 0, 0, 0)
    edited = copy.deepcopy(feed)
    edited[1]["name"] = "Meeting Two, renamed"  # meeting-2 changed
    del edited[2]  # meeting-3 removed
    edited.append(tsml_row(6))  # meeting-6 added
    report = run(people.riverside, as_bytes(edited), feed_key="k", now=LATER)
    assert report_counts(report) == (1, 1, 3, 1, 0)

    found = meetings(people.riverside.id)
    assert found["meeting-2"].name == "Meeting Two, renamed"
    assert (found["meeting-2"].revision, found["meeting-2"].updated_at) == (1, LATER)
    gone = found["meeting-3"]
    assert not gone.active and gone.revision == 1 and gone.updated_at == LATER
    assert gone.attendance == "in_person"  # attendance keeps the feed's last word
    assert (found["meeting-1"].revision, found["meeting-1"].updated_at) == (0, T0)
    assert found["meeting-6"].active and found["meeting-6"].created_at == LATER

    imported = list(db.session.scalars(select(Event).where(Event.type == "meetings.imported")))
    assert len(imported) == 2
    assert imported[-1].payload == {
        "feed_key": "k", "created": 1, "updated": 1, "unchanged": 3, "deactivated": 1,
        "skipped": 0,
    }  # fmt: skip
    deactivated = list(db.session.scalars(select(Event).where(Event.type == "meeting.deactivated")))
    assert [e.subject_id for e in deactivated] == [gone.id]

    # The same edited feed again: nothing to do, and nothing deactivated twice.
    assert report_counts(run(people.riverside, as_bytes(edited), feed_key="k")) == (0, 0, 5, 0, 0)
    # A meeting that comes back is re-activated (an update), with its old identity.
    report = run(people.riverside, as_bytes([*edited, tsml_row(3)]), feed_key="k")
    assert report_counts(report) == (0, 1, 5, 0, 0)
    back = meetings(people.riverside.id)["meeting-3"]
    assert back.id == gone.id and back.active and back.revision == 2


def test_a_skipped_row_keeps_its_meeting_but_unpublished_deactivates(people):
    run(people.riverside, as_bytes(tsml_feed(3)), feed_key="k")
    broken = tsml_feed(3)
    broken[1]["day"] = "Funday"
    report = run(people.riverside, as_bytes(broken), feed_key="k")
    assert report_counts(report) == (0, 0, 2, 0, 1)
    assert meetings(people.riverside.id)["meeting-2"].active

    rows = json.loads((FIXTURES / "bmlt.json").read_text())
    run(people.riverside, as_bytes(rows), feed_key="na")
    for row in rows:
        if row.get("id_bigint") == "103":
            row["published"] = "0"
    report = run(people.riverside, as_bytes(rows), feed_key="na")
    assert report_counts(report) == (0, 0, 3, 1, 5)
    assert not meetings(people.riverside.id, "na")["103"].active


def test_a_schedule_change_re_plans_the_plans_but_a_rename_does_not(people, monkeypatch):
    run(people.riverside, as_bytes(tsml_feed(2)), feed_key="k")
    plan = make_plan(people.carol, meetings(people.riverside.id)["meeting-1"])
    db.session.commit()
    seen: list[tuple[str, str]] = []
    monkeypatch.setattr(
        "service.checkins.replan_source",
        lambda kind, source_id, *, now: seen.append((kind, source_id)),
    )
    renamed = tsml_feed(2)
    renamed[0]["name"] = "Renamed"
    assert report_counts(run(people.riverside, as_bytes(renamed), feed_key="k")) == (0, 1, 1, 0, 0)
    assert seen == []
    renamed[0]["time"] = "21:15"
    assert report_counts(run(people.riverside, as_bytes(renamed), feed_key="k")) == (0, 1, 1, 0, 0)
    assert seen == [("meeting_plan", plan.id)]


# --- deactivation alerts -----------------------------------------------------------------


def test_a_removed_meeting_on_a_plan_raises_one_alert_and_cancels_check_ins(people):
    # Wednesday 19:00 Chicago is the evening after T0: inside the planning horizon.
    feed = [tsml_row(1), tsml_row(2, day=3, time="19:00"), tsml_row(3)]
    run(people.riverside, as_bytes(feed), feed_key="k")
    meeting = meetings(people.riverside.id)["meeting-2"]
    plan = make_plan(people.carol, meeting)
    from service import checkins

    checkins.replan_source("meeting_plan", plan.id, now=T0)
    db.session.commit()
    planned = select(CheckIn).where(CheckIn.source_id == plan.id)
    assert [c.status for c in db.session.scalars(planned)] == ["scheduled"]

    report = run(people.riverside, as_bytes([feed[0], feed[2]]), feed_key="k")
    assert report_counts(report) == (0, 0, 2, 1, 0)
    assert report.alerts == 1
    alerts = list(db.session.scalars(select(Alert)))
    assert len(alerts) == 1
    alert = alerts[0]
    assert (alert.kind, alert.therapist_id, alert.client_id) == (
        "meeting_inactive", people.alice.id, people.carol.id,
    )  # fmt: skip
    assert (alert.source_type, alert.source_id, alert.status) == ("meeting_plan", plan.id, "open")
    assert alert.detail["meeting_id"] == meeting.id and alert.detail["feed_key"] == "k"
    assert [c.status for c in db.session.scalars(planned)] == ["cancelled"]

    # Re-importing the same (still shorter) feed raises nothing new.
    report = run(people.riverside, as_bytes([feed[0], feed[2]]), feed_key="k", now=LATER)
    assert report_counts(report) == (0, 0, 2, 0, 0) and report.alerts == 0
    assert count(Alert) == 1
    assert count(Alert, Alert.therapist_id == people.bob.id) == 0


def test_an_archived_plan_raises_no_alert(people):
    run(people.riverside, as_bytes(tsml_feed(2)), feed_key="k")
    make_plan(people.carol, meetings(people.riverside.id)["meeting-2"], archived_at=T0)
    db.session.commit()
    report = run(people.riverside, as_bytes(tsml_feed(1)), feed_key="k")
    assert report.deactivated == 1 and report.alerts == 0 and count(Alert) == 0


# --- failures change nothing ----------------------------------------------------------------


def test_a_malformed_feed_changes_nothing(people):
    run(people.riverside, as_bytes(tsml_feed(3)), feed_key="k")
    before = row_counts()
    with pytest.raises(ImportFailed) as failure:
        import_source(
            practice=people.riverside, source=(FIXTURES / "malformed.json").read_bytes(),
            feed_key="k", allow_private=False, now=LATER,
        )  # fmt: skip
    db.session.rollback()
    assert failure.value.field == "source" and "not valid JSON" in failure.value.message
    assert row_counts() == before
    assert all(m.active and m.revision == 0 for m in meetings(people.riverside.id).values())
    assert db.session.scalar(select(MeetingFeed.last_imported_at)) == T0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"source": b"[]", "feed_key": "k"}, "source"),  # would deactivate the whole feed
        ({"source": str(FIXTURES / "missing.json"), "feed_key": "k"}, "source"),
        ({"source": b"[]"}, "feed_key"),
        ({"source": b"[]", "feed_key": "k", "default_timezone": "Mars/Olympus"}, "timezone"),
        ({"source": b"[]", "feed_key": "k", "fellowship": "bowling"}, "fellowship"),
        ({"source": b"<html></html>", "feed_key": "k"}, "source"),
    ],
)
def test_refused_imports_write_nothing(people, kwargs, field):
    run(people.riverside, as_bytes(tsml_feed(3)), feed_key="k")
    before = row_counts()
    with pytest.raises(ImportFailed) as failure:
        import_source(practice=people.riverside, allow_private=False, now=LATER, **kwargs)
    db.session.rollback()
    assert failure.value.field == field
    assert row_counts() == before


def test_an_empty_new_feed_is_just_empty(people):
    report = run(people.riverside, b"[]", feed_key="new")
    assert report_counts(report) == (0, 0, 0, 0, 0)


# --- identity and tenancy -------------------------------------------------------------------


def test_the_same_slug_in_two_feeds_is_two_meetings(people):
    run(people.riverside, as_bytes(tsml_feed(2)), feed_key="a")
    report = run(people.riverside, as_bytes(tsml_feed(2)), feed_key="b")
    assert report_counts(report) == (2, 0, 0, 0, 0)
    rows = list(db.session.scalars(select(Meeting).where(Meeting.slug == "meeting-1")))
    assert len(rows) == 2 and len({m.feed_id for m in rows}) == 2
    # Emptying feed a's listing leaves feed b's meeting-1 alone.
    run(people.riverside, as_bytes([tsml_row(2)]), feed_key="a")
    assert meetings(people.riverside.id, "b")["meeting-1"].active
    assert not meetings(people.riverside.id, "a")["meeting-1"].active


def test_practices_are_isolated(people):
    run(people.riverside, as_bytes(tsml_feed(3)), feed_key="shared")
    alice_before = {m.id: (m.revision, m.active) for m in meetings(people.riverside.id).values()}
    report = run(people.harbor, as_bytes([tsml_row(1, name="Harbor's own")]), feed_key="shared")
    assert report_counts(report) == (1, 0, 0, 0, 0)
    report = run(people.harbor, as_bytes([tsml_row(9)]), feed_key="shared")
    assert report_counts(report) == (1, 0, 0, 1, 0)
    db.session.expire_all()
    assert {
        m.id: (m.revision, m.active) for m in meetings(people.riverside.id).values()
    } == alice_before
    assert meetings(people.riverside.id)["meeting-1"].name == "Meeting 1"
    assert count(MeetingFeed) == 2


# --- vocabulary, limits and bulk ------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "stored"),
    [("ca", "ca"), ("recovery_dharma", "recovery_dharma"), ("Alcoholics Anonymous", "aa"),
     ("Refuge Recovery", "refuge"), ("na", "na")],
)  # fmt: skip
def test_fellowship_maps_to_the_directory_vocabulary(people, given, stored):
    run(
        people.riverside,
        (FIXTURES / "tsml_sheets.json").read_bytes(),
        feed_key="s",
        fellowship=given,
    )
    assert {m.fellowship for m in meetings(people.riverside.id).values()} == {stored}
    # The remembered fellowship is used again, so nothing changes.
    report = run(people.riverside, (FIXTURES / "tsml_sheets.json").read_bytes(), feed_key="s")
    assert report_counts(report) == (0, 0, 2, 0, 0)


def test_long_slugs_are_shortened_stably(people):
    slug = "x" * 190 + "-meeting"
    feed = [tsml_row(1, slug=slug), tsml_row(2, slug=slug + "-other")]
    assert report_counts(run(people.riverside, as_bytes(feed), feed_key="k")) == (2, 0, 0, 0, 0)
    assert all(len(s) <= 200 for s in meetings(people.riverside.id))
    assert report_counts(run(people.riverside, as_bytes(feed), feed_key="k")) == (0, 0, 2, 0, 0)


def test_bulk_import_uses_few_statements_and_reports_progress(people):
    feed = tsml_feed(1500)
    calls: list[tuple[int, int]] = []
    report = import_records(
        practice=people.riverside, feed_key="big", now=T0, progress=lambda d, t: calls.append((d, t)),
        result=parse_tsml(feed, default_timezone=None), default_timezone=None, fellowship=None,
    )  # fmt: skip
    db.session.commit()
    assert report.created == 1500
    assert calls == [(500, 1500), (1000, 1500), (1500, 1500)]

    feed[0]["name"] = "Changed"
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        report = import_records(
            practice=people.riverside, feed_key="big", now=LATER, default_timezone=None,
            result=parse_tsml(feed, default_timezone=None), fellowship=None,
        )  # fmt: skip
        db.session.commit()
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
    assert report_counts(report) == (0, 1, 1499, 0, 0)
    # The existing rows are read in one query, not one per meeting.
    assert len(statements) < 15, statements


def test_the_benchmark_feed_imports_every_meeting(people):
    feed = make_feed(300, seed=3)
    assert make_feed(300, seed=3) == feed  # deterministic
    report = run(people.riverside, as_bytes(feed), feed_key="bench")
    assert report_counts(report) == (300, 0, 0, 0, 0)
    found = meetings(people.riverside.id).values()
    assert {m.attendance for m in found} == {"in_person", "online", "hybrid"}
    assert len({m.timezone for m in found}) >= 5 and {m.day for m in found} == set(range(7))
