"""A therapist's calendar feed: their clients' sessions and open follow-ups, by initials only."""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, timedelta

from sqlalchemy import select

from service.calendar import FeedEvent
from service.db import db
from service.feed_content import activity_event, feed_event, guarded
from service.models import Activity, Alert, Client, Therapist
from service.schedule import get_zone

logger = logging.getLogger(__name__)

_ISO_DAY = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")


def initials(name: str) -> str:
    """Return "C.S." for "Carol S.": the most a therapist's calendar shows of a client."""
    letters = [word[0].upper() for word in re.findall(r"[^\W\d_]+", name or "")][:3]
    return "".join(f"{letter}." for letter in letters) or "?"


def therapist_clients(therapist: Therapist) -> list[Client]:
    """Return the therapist's clients still in care (a discharge ends their calendar entries)."""
    stmt = select(Client).where(Client.therapist_id == therapist.id, Client.status != "discharged")
    return list(db.session.scalars(stmt.order_by(Client.id)))


def _follow_up(alert: Alert, client: Client) -> FeedEvent:
    # All-day on the day it is about (a therapist's calendar holds no clinical detail):
    # the occurrence's date when it names one, else the day it was raised.
    match = _ISO_DAY.match(alert.occurrence or "")
    day = (
        date(*map(int, match.groups()))
        if match
        else alert.created_at.astimezone(get_zone(client.timezone)).date()
    )
    return feed_event(
        uid=f"{alert.id}@steadfast",
        summary=f"Follow-up — {initials(client.display_name)}",
        start=day,
        zone=None,
        duration=timedelta(days=1),
        sequence=0,
        last_modified=alert.created_at,
        created=alert.created_at,
    )


def therapist_feed_events(therapist: Therapist, *, now: datetime) -> list[FeedEvent]:
    """Build a therapist's feed: their clients' sessions and open follow-ups, initials only."""
    clients = {c.id: c for c in therapist_clients(therapist)}
    if not clients:
        return []
    events: list[FeedEvent | None] = []
    sessions = select(Activity).where(
        Activity.client_id.in_(clients), Activity.kind == "therapy_session"
    )
    for activity in db.session.scalars(sessions):
        client = clients[activity.client_id]
        label = f"Session — {initials(client.display_name)}"
        events.append(guarded(activity.id, activity_event, activity, client, label, False))
    alerts = select(Alert).where(Alert.client_id.in_(clients), Alert.status == "open")
    for alert in db.session.scalars(alerts):
        events.append(guarded(alert.id, _follow_up, alert, clients[alert.client_id or ""]))
    return [e for e in events if e is not None]
