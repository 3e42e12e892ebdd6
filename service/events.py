"""The append-only event log: every state change is a row written in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, literal_column, select, text, tuple_

from service.db import db
from service.models import Event

# The oldest transaction still in flight, other than the reader's own (whose own events it
# must not serve either: they may yet roll back). Every event with a smaller txid is final,
# and no event can ever again be written with a txid below it.
_SAFE_TXID = text(
    "COALESCE("
    "(SELECT min(x::text::bigint) FROM pg_snapshot_xip(pg_current_snapshot()) AS x"
    " WHERE x IS DISTINCT FROM pg_current_xact_id_if_assigned()),"
    " pg_snapshot_xmax(pg_current_snapshot())::text::bigint)"
)


class CursorError(ValueError):
    """The `after` cursor names no event."""


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
    if _postgres():
        # The writer's transaction id lets readers hold back events that could still be
        # preceded by a transaction committing late (see read_events).
        event.txid = literal_column("pg_current_xact_id()::text::bigint")
    db.session.add(event)
    return event


def _postgres() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def read_events(
    *,
    practice_id: str,
    after: int | None,
    limit: int,
    type: str | None = None,
    client_id: str | None = None,
) -> tuple[list[Event], int | None]:
    """Return the practice's next events after the cursor and the cursor to continue from.

    SQLite has one writer, so ids appear in commit order. On PostgreSQL ids are handed out
    before commit, so a transaction holding id 5 may commit after one holding id 6. The
    stream is therefore ordered by (txid, id) and only events of transactions older than
    every transaction still in flight are served: nothing can later appear before the
    cursor, so a reader paging with `after` sees every event exactly once.
    """
    position: tuple[int, int] | None = None
    if after:
        if _postgres():
            found = db.session.execute(select(Event.txid).where(Event.id == after)).first()
            if found is None:
                raise CursorError(f"no event {after}")
            position = (found[0] or 0, after)
        else:
            position = (0, after)
    stmt = events_page_stmt(practice_id, position, limit, type=type, client_id=client_id)
    events = list(db.session.scalars(stmt))
    return events, (events[-1].id if events else after)


def events_page_stmt(
    practice_id: str,
    position: tuple[int, int] | None,
    limit: int,
    *,
    type: str | None = None,
    client_id: str | None = None,
) -> Select[tuple[Event]]:
    """Select the practice's next servable events after a (txid, id) stream position."""
    stmt = select(Event).where(Event.practice_id == practice_id)
    if type:
        stmt = stmt.where(Event.type == type)
    if client_id:
        stmt = stmt.where(Event.client_id == client_id)
    if _postgres():
        if position is not None:
            stmt = stmt.where(tuple_(Event.txid, Event.id) > tuple_(*position))
        stmt = stmt.where(Event.txid < _SAFE_TXID).order_by(Event.txid, Event.id)
    else:
        if position is not None:
            stmt = stmt.where(Event.id > position[1])
        stmt = stmt.order_by(Event.id)
    return stmt.limit(limit)


def stream_head(practice_id: str) -> int:
    """Return the cursor of the practice's latest event a reader may be served (0 if none)."""
    stmt = select(Event.id).where(Event.practice_id == practice_id)
    if _postgres():
        stmt = stmt.where(Event.txid < _SAFE_TXID).order_by(Event.txid.desc(), Event.id.desc())
    else:
        stmt = stmt.order_by(Event.id.desc())
    return db.session.scalar(stmt.limit(1)) or 0
