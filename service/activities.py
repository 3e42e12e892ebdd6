"""One-off activities and therapy sessions on a client's calendar (the iCal feed shows them)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from service.clients import require_open
from service.db import db, new_id
from service.events import append_event
from service.models import Activity, Client

logger = logging.getLogger(__name__)

WRITABLE = ("kind", "title", "starts_at", "duration_minutes", "location", "notes", "cancelled")


def create_activity(
    client: Client, *, values: dict[str, Any], therapist_id: str | None, now: datetime
) -> Activity:
    """Put an activity or a therapy session on the client's calendar."""
    require_open(client)
    activity = Activity(
        id=new_id("ac"),
        practice_id=client.practice_id,
        client_id=client.id,
        therapist_id=therapist_id,
        created_at=now,
        updated_at=now,
        revision=0,
        **{key: values[key] for key in WRITABLE if key in values},
    )
    db.session.add(activity)
    db.session.flush()
    _event("activity.created", activity, now, [])
    return activity


def update_activity(activity: Activity, *, values: dict[str, Any], now: datetime) -> list[str]:
    """Apply changed fields of an activity."""
    changed = [key for key in WRITABLE if key in values and getattr(activity, key) != values[key]]
    if not changed:
        return []
    for key in changed:
        setattr(activity, key, values[key])
    activity.updated_at = now
    activity.revision = (activity.revision or 0) + 1
    kind = (
        "activity.cancelled"
        if changed == ["cancelled"] and activity.cancelled
        else "activity.updated"
    )
    _event(kind, activity, now, changed)
    return changed


def cancel_activity(activity: Activity, *, now: datetime) -> bool:
    """Cancel an activity; it stays on record (and in calendars, marked cancelled)."""
    if activity.cancelled:
        return False
    update_activity(activity, values={"cancelled": True}, now=now)
    return True


def _event(kind: str, activity: Activity, now: datetime, fields: list[str]) -> None:
    append_event(
        kind, now=now, practice_id=activity.practice_id, client_id=activity.client_id,
        subject_type="activity", subject_id=activity.id,
        payload={"fields": fields} if fields else {},
    )  # fmt: skip
