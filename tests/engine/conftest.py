"""Helpers for the engine tests: a stand-in for dispatch and message look-ups."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select, update

from service.db import db
from service.models import Alert, CheckIn, Message


def send_queued(now: datetime) -> int:
    """Mark queued texts due by `now` as sent, as the dispatch sweep would (unit tests only)."""
    result = db.session.execute(
        update(Message)
        .where(Message.status == "queued", Message.send_after <= now)
        .values(status="sent", sent_at=now, updated_at=now)
    )
    db.session.commit()
    return result.rowcount


def outbox(**criteria: object) -> list[Message]:
    """Return outbound messages matching column == value criteria, oldest first."""
    stmt = select(Message).where(Message.direction == "outbound")
    for column, value in criteria.items():
        stmt = stmt.where(getattr(Message, column) == value)
    return list(db.session.scalars(stmt.order_by(Message.created_at, Message.id)))


def alerts(**criteria: object) -> list[Alert]:
    """Return alerts matching column == value criteria."""
    stmt = select(Alert)
    for column, value in criteria.items():
        stmt = stmt.where(getattr(Alert, column) == value)
    return list(db.session.scalars(stmt.order_by(Alert.created_at, Alert.id)))


def checkins_of(source_id: str) -> list[CheckIn]:
    """Return a source's check-ins in occurrence order."""
    return list(
        db.session.scalars(
            select(CheckIn).where(CheckIn.source_id == source_id).order_by(CheckIn.event_at)
        )
    )


@pytest.fixture
def settings(app):
    """The app's Settings, which a test may change with monkeypatch.setattr."""
    return app.extensions["settings"]
