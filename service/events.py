"""The append-only event log: every state change is a row written in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import literal_column

from service.db import db
from service.models import Event


def append_event(
    type: str,
    *,
    now: datetime,
    practice_id: str | None,
    client_id: str | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> Event:
    """Append an event to the caller's unit of work."""
    event = Event(
        type=type,
        practice_id=practice_id,
        client_id=client_id,
        subject_type=subject_type,
        subject_id=subject_id,
        payload=payload or {},
        occurred_at=now,
    )
    if db.session.get_bind().dialect.name == "postgresql":
        # The writer's transaction id lets readers hold back events that could still be
        # preceded by a transaction committing late (see read_events).
        event.txid = literal_column("pg_current_xact_id()::text::bigint")
    db.session.add(event)
    return event
