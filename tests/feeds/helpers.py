"""Factories and fetch helpers shared by the feed tests (activities, check-ins, alerts, links)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar
from flask import g

from service import feeds
from service.db import db
from service.models import Activity, Alert, CheckIn, Client, FeedToken

T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)


def make_activity(client: Client, **fields: Any) -> Activity:
    """Create a 50-minute therapy session at the clinic on 2026-12-03 15:00 UTC."""
    values: dict[str, Any] = {
        "kind": "therapy_session",
        "title": "Session with Alice at Riverside Counseling",
        "starts_at": datetime(2026, 12, 3, 15, 0, tzinfo=UTC),
        "duration_minutes": 50,
        "location": "Riverside Counseling, Suite 4",
        "notes": "Discussed relapse triggers (alcohol).",
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(fields)
    activity = Activity(practice_id=client.practice_id, client_id=client.id, **values)
    db.session.add(activity)
    db.session.flush()
    return activity


def make_checkin(
    client: Client,
    source_type: str,
    source_id: str,
    occurrence: datetime,
    status: str,
    **fields: Any,
) -> CheckIn:
    """Record one check-in of a plan or commitment (occurrence: naive local wall time)."""
    at = fields.pop("event_at", T0)
    values: dict[str, Any] = {
        "event_at": at,
        "due_at": at + timedelta(hours=1),
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(fields)
    checkin = CheckIn(
        practice_id=client.practice_id,
        client_id=client.id,
        source_type=source_type,
        source_id=source_id,
        occurrence=occurrence,
        status=status,
        **values,
    )
    db.session.add(checkin)
    db.session.flush()
    return checkin


def make_alert(client: Client, **fields: Any) -> Alert:
    """Open a "missed" alert about the client."""
    values: dict[str, Any] = {
        "kind": "missed",
        "status": "open",
        "occurrence": "2026-12-03T19:00",
        "dedup_key": f"missed:{client.id}:{fields.get('occurrence', '2026-12-03T19:00')}",
        "detail": {"meeting": "Thursday Night Big Book"},
        "created_at": T0,
    }
    values.update(fields)
    alert = Alert(
        practice_id=client.practice_id,
        client_id=client.id,
        therapist_id=client.therapist_id,
        **values,
    )
    db.session.add(alert)
    db.session.flush()
    return alert


def move_clock(clock: Any, value: datetime | str) -> datetime:
    """Set the app clock and forget the instant cached on `g` (the tests share one app context)."""
    g.pop("now", None)
    return clock.set(value)


def token_from(url: str) -> str:
    """Return the token of a feed link."""
    return url.rsplit("/", 1)[1].removesuffix(".ics")


def feed_path(url: str) -> str:
    """Return the path part of a feed link, for the test client."""
    return "/feeds/" + url.rsplit("/", 1)[1]


def issue(client: Client, *, now: datetime = T0) -> str:
    """Issue and commit a client's feed link; return the path to GET."""
    url = feeds.rotate_client_feed(client, now=now)
    db.session.commit()
    return feed_path(url)


def token_row(client: Client) -> FeedToken:
    """Return the client's newest feed token row."""
    rows = db.session.query(FeedToken).filter_by(client_id=client.id)
    return rows.order_by(FeedToken.created_at.desc(), FeedToken.id.desc()).first()


def vevents(body: bytes) -> dict[str, icalendar.Event]:
    """Parse a feed and index its events by UID."""
    calendar = icalendar.Calendar.from_ical(body)
    return {str(e["UID"]): e for e in calendar.walk("VEVENT")}
