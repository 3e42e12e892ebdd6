"""The event stream: paging with a cursor, filters, tenancy, and no skipped late commits."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from service.db import db
from service.events import append_event, read_events
from service.models import AuditEntry

T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
POSTGRES = os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")


def add(n: int, practice_id: str, client_id: str | None = None, type: str = "test.thing") -> None:
    for i in range(n):
        append_event(type, now=T0, practice_id=practice_id, client_id=client_id, payload={"i": i})
    db.session.commit()


def test_read_events_pages_in_order_with_a_cursor_and_filters(people):
    practice = people.riverside.id
    add(5, practice, people.carol.id)
    add(2, practice, type="other.thing")
    add(3, people.harbor.id)
    seen, cursor = [], None
    while True:
        page, cursor_next = read_events(practice_id=practice, after=cursor, limit=2)
        if not page:
            assert cursor_next == cursor
            break
        seen += page
        cursor = cursor_next
    own = [e for e in seen if e.type.startswith(("test", "other"))]
    assert len(own) == 7 and [e.id for e in seen] == sorted(e.id for e in seen)
    only, _ = read_events(practice_id=practice, after=None, limit=50, type="other.thing")
    assert len(only) == 2
    carols, _ = read_events(practice_id=practice, after=None, limit=50, client_id=people.carol.id)
    assert {e.payload["i"] for e in carols if e.type == "test.thing"} == set(range(5))


def test_events_api_pages_by_string_cursor_and_audits(people, client):
    add(3, people.riverside.id, people.carol.id)
    headers = people.alice.headers
    first = client.get("/api/v1/events?limit=2&type=test.thing", headers=headers).get_json()
    assert [item["payload"]["i"] for item in first["items"]] == [0, 1]
    assert isinstance(first["next"], str) and first["next"] == first["items"][-1]["id"]
    rest = client.get(f"/api/v1/events?limit=2&type=test.thing&after={first['next']}",
                      headers=headers).get_json()  # fmt: skip
    assert [item["payload"]["i"] for item in rest["items"]] == [2]
    assert rest["next"] is None
    assert set(rest["items"][0]) == {"id", "type", "occurred_at", "client_id", "payload"}
    assert db.session.scalars(select(AuditEntry).where(AuditEntry.action == "event.list")).all()
    theirs = client.get("/api/v1/events", headers=people.bob.headers).get_json()
    assert all(item["type"] != "test.thing" for item in theirs["items"])
    other_client = client.get(
        f"/api/v1/events?client_id={people.carol.id}", headers=people.bob.headers
    )
    assert other_client.status_code == 404
    assert client.get("/api/v1/events?after=abc", headers=headers).status_code == 422


def _insert(conn, practice_id: str, label: str) -> None:
    conn.execute(
        text(
            "INSERT INTO events (type, practice_id, payload, occurred_at, txid) VALUES "
            "(:t, :p, :payload, now(), pg_current_xact_id()::text::bigint)"
        ),
        {"t": "test.late", "p": practice_id, "payload": f'{{"label": "{label}"}}'},
    )


def _labels(practice_id: str, after: int | None = None) -> list[str]:
    db.session.rollback()  # a fresh snapshot, as a new request would have
    events, _ = read_events(practice_id=practice_id, after=after, limit=50, type="test.late")
    return [e.payload["label"] for e in events]


@pytest.mark.postgres_only
@pytest.mark.skipif(not POSTGRES, reason="needs TEST_DATABASE_URL=postgresql…")
def test_an_event_committed_late_is_never_skipped(people):
    practice = people.riverside.id
    with db.engine.connect() as t1, db.engine.connect() as t2:
        _insert(t1, practice, "T1")  # holds its transaction (and the lower id) open
        _insert(t2, practice, "T2")
        t2.commit()
        assert _labels(practice) == []  # T2 waits behind the transaction still in flight
        t1.commit()
    assert _labels(practice) == ["T1", "T2"]


@pytest.mark.postgres_only
@pytest.mark.skipif(not POSTGRES, reason="needs TEST_DATABASE_URL=postgresql…")
def test_a_reader_past_an_event_still_sees_one_that_commits_out_of_id_order(people):
    practice = people.riverside.id
    with db.engine.connect() as t1, db.engine.connect() as t2:
        # T2 starts writing first (older transaction id), but takes its event id last.
        t2.execute(text("UPDATE practices SET phone = phone WHERE id = :p"), {"p": practice})
        _insert(t1, practice, "T1")
        _insert(t2, practice, "T2")
        t2.commit()
        assert _labels(practice) == ["T2"]
        cursor = read_events(practice_id=practice, after=None, limit=50, type="test.late")[1]
        t1.commit()
    assert _labels(practice, after=cursor) == ["T1"]  # id order broken, nothing lost


@pytest.mark.postgres_only
@pytest.mark.skipif(not POSTGRES, reason="needs TEST_DATABASE_URL=postgresql…")
def test_a_long_transaction_in_another_database_does_not_hold_the_stream_back(people):
    practice = people.riverside.id
    elsewhere = create_engine(make_url(os.environ["TEST_DATABASE_URL"]))
    try:
        with elsewhere.connect() as other:
            other.execute(text("SELECT pg_current_xact_id()"))  # an open writer over there
            with db.engine.connect() as here:
                _insert(here, practice, "here")
                here.commit()
            assert _labels(practice) == ["here"]
            other.rollback()
    finally:
        elsewhere.dispose()


@pytest.mark.postgres_only
@pytest.mark.skipif(not POSTGRES, reason="needs TEST_DATABASE_URL=postgresql…")
def test_a_writer_here_without_events_yet_holds_the_stream_back(people):
    practice = people.riverside.id
    with db.engine.connect() as t1, db.engine.connect() as t2:
        # T1 has written (it has a transaction id) and may still append an event.
        t1.execute(text("UPDATE practices SET phone = phone WHERE id = :p"), {"p": practice})
        _insert(t2, practice, "T2")
        t2.commit()
        assert _labels(practice) == []
        _insert(t1, practice, "T1")
        t1.commit()
    assert _labels(practice) == ["T1", "T2"]


def test_bulk_event_rows_store_what_append_events_stores_in_list_order(people):
    from service.events import EVENT_ROW_COLUMNS, append_event_rows, append_events
    from service.models import Event

    practice, carol = people.riverside.id, people.carol.id
    sydney = datetime(2027, 4, 4, 15, 30, tzinfo=UTC)
    events = [
        {
            "type": "bulk.a",
            "practice_id": practice,
            "client_id": carol,
            "subject_type": "checkin",
            "subject_id": "ci_1",
            "payload": {"verifier": "self", "n": 1},
            "occurred_at": T0,
        },
        {
            "type": "bulk.b",
            "practice_id": practice,
            "client_id": None,
            "subject_type": None,
            "subject_id": None,
            "payload": {},
            "occurred_at": sydney,
        },
        {
            "type": "bulk.a",
            "practice_id": practice,
            "client_id": carol,
            "subject_type": "checkin",
            "subject_id": "ci_2",
            "payload": {"text": "ñ 'quoted' \"x\"", "list": [1, 2]},
            "occurred_at": T0,
        },
    ] * 700  # more than one chunk of 1,000
    mark = db.session.scalar(select(func.max(Event.id))) or 0
    append_events(events)
    db.session.commit()
    middle = db.session.scalar(select(func.max(Event.id)))
    append_event_rows([tuple(event[name] for name in EVENT_ROW_COLUMNS) for event in events])
    db.session.commit()

    def stored(lo: int, hi: int | None) -> list[tuple]:
        stmt = select(Event).where(Event.id > lo).order_by(Event.id)
        if hi is not None:
            stmt = stmt.where(Event.id <= hi)
        return [
            (
                e.type,
                e.practice_id,
                e.client_id,
                e.subject_type,
                e.subject_id,
                e.payload,
                e.occurred_at,
                e.txid is not None,
            )
            for e in db.session.scalars(stmt)
        ]

    reference, bulk = stored(mark, middle), stored(middle, None)
    assert len(bulk) == len(events) == 2100
    assert bulk == reference
    assert all(row[-1] is POSTGRES for row in bulk)  # the writer's txid, on PostgreSQL only
