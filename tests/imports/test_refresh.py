"""Remembered URL feeds are re-fetched when due and not before; failures stay with their feed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from service.db import db
from service.meeting_import import import_source, refresh_due_feeds, sources
from service.models import Event, Meeting, MeetingFeed
from tests.imports.support import FeedServer, as_bytes, count, feed_server, tsml_feed, tsml_row

T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
DAY = timedelta(hours=24)


@pytest.fixture
def private_app(make_app, people) -> Iterator[Any]:
    """An app that may fetch 127.0.0.1 feeds, its context pushed."""
    app = make_app(ALLOW_PRIVATE_FEED_URLS=True)
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def server() -> Iterator[FeedServer]:
    with feed_server() as running:
        running.body = as_bytes(tsml_feed(3))
        yield running


def remember(people: Any, url: str, key: str | None = None) -> MeetingFeed:
    report = import_source(
        practice=people.riverside, source=url, feed_key=key, allow_private=True, now=T0
    )
    db.session.commit()
    return db.session.get(MeetingFeed, report.feed_id)


def test_a_url_feed_is_refreshed_when_due_and_not_before(private_app, people, server):
    feed = remember(people, server.url())
    assert feed.next_refresh_at == T0 + DAY  # MEETING_FEED_REFRESH_HOURS=24
    assert server.hits == ["/feed.json"]

    server.body = as_bytes([*tsml_feed(2), tsml_row(4)])
    assert refresh_due_feeds(T0 + DAY - timedelta(minutes=1)) == 0
    assert len(server.hits) == 1

    assert refresh_due_feeds(T0 + DAY) == 1
    db.session.commit()
    assert len(server.hits) == 2
    db.session.expire_all()
    feed = db.session.get(MeetingFeed, feed.id)
    assert feed.last_imported_at == T0 + DAY and feed.next_refresh_at == T0 + 2 * DAY
    active = set(db.session.scalars(select(Meeting.slug).where(Meeting.active.is_(True))))
    assert active == {"meeting-1", "meeting-2", "meeting-4"}
    last = db.session.scalar(
        select(Event).where(Event.type == "meetings.imported").order_by(Event.id.desc())
    )
    assert (last.payload["created"], last.payload["deactivated"], last.payload["unchanged"]) == (
        1,
        1,
        2,
    )

    # Refreshed: not due again until the next interval.
    assert refresh_due_feeds(T0 + DAY + timedelta(hours=1)) == 0
    assert len(server.hits) == 2


def test_file_and_inline_feeds_are_never_refreshed(private_app, people, server):
    import_source(practice=people.riverside, source=as_bytes(tsml_feed(2)), feed_key="inline",
                  allow_private=True, now=T0)  # fmt: skip
    db.session.commit()
    assert db.session.scalar(select(MeetingFeed.next_refresh_at)) is None
    assert refresh_due_feeds(T0 + 30 * DAY) == 0
    assert server.hits == []


def test_a_failing_feed_keeps_its_meetings_and_retries_in_an_hour(private_app, people, server):
    failing = remember(people, server.url("/a.json"), key="a")
    with feed_server() as other:
        other.body = as_bytes([tsml_row(9)])
        remember(people, other.url("/b.json"), key="b")
        server.status = 500
        assert refresh_due_feeds(T0 + DAY) == 1
        db.session.commit()
    db.session.expire_all()
    failing = db.session.get(MeetingFeed, failing.id)
    assert "HTTP 500" in failing.last_error
    assert failing.next_refresh_at == T0 + DAY + timedelta(hours=1)
    assert failing.last_imported_at == T0
    assert count(Meeting, Meeting.feed_id == failing.id, Meeting.active.is_(True)) == 3

    server.status = 200
    assert refresh_due_feeds(T0 + DAY + timedelta(hours=1)) == 1
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(MeetingFeed, failing.id).last_error is None


def test_a_feed_that_breaks_mid_import_rolls_back_alone(private_app, people, server, monkeypatch):
    broken = remember(people, server.url("/a.json"), key="a")
    good = remember(people, server.url("/b.json"), key="b")
    server.body = as_bytes(tsml_feed(1))  # both would deactivate two meetings
    real = sources.import_records

    def explode_for_a(**kwargs: Any) -> Any:
        report = real(**kwargs)  # writes, then fails: the savepoint must undo the writes
        if kwargs["feed_key"] == "a":
            raise RuntimeError("disk on fire")
        return report

    monkeypatch.setattr(sources, "import_records", explode_for_a)
    assert refresh_due_feeds(T0 + DAY) == 1
    db.session.commit()
    db.session.expire_all()
    assert count(Meeting, Meeting.feed_id == broken.id, Meeting.active.is_(True)) == 3
    assert count(Meeting, Meeting.feed_id == good.id, Meeting.active.is_(True)) == 1
    assert db.session.get(MeetingFeed, broken.id).last_error == "internal error: RuntimeError"


def test_the_engine_sweep_calls_it_and_returns_the_count(private_app, people, server):
    from service.jobs.sweeps import refresh_meeting_feeds

    remember(people, server.url("/a.json"), key="a")
    remember(people, server.url("/b.json"), key="b")
    assert refresh_meeting_feeds(T0 + DAY - timedelta(seconds=1)) == 0
    assert refresh_meeting_feeds(T0 + DAY) == 2
    assert refresh_meeting_feeds(T0 + DAY) == 0
    assert len(server.hits) == 4


def test_one_sweep_refreshes_a_bounded_number_of_feeds(private_app, people, server):
    for key in ("a", "b", "c"):
        remember(people, server.url(f"/{key}.json"), key=key)
    assert refresh_due_feeds(T0 + DAY, limit=2) == 2
    db.session.commit()
    assert refresh_due_feeds(T0 + DAY, limit=2) == 1
    db.session.commit()
    assert json.loads(server.body) and len(server.hits) == 6
