"""The outbox: every text to send is first a queued Message row, unique by idempotency key."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from service.db import bind_processor, db, id_in, new_ids
from service.events import bind_values
from service.models import Message

logger = logging.getLogger(__name__)


def enqueue_message(
    *,
    practice_id: str | None,
    to: str,
    body: str,
    purpose: str,
    idempotency_key: str,
    now: datetime,
    client_id: str | None = None,
    contact_id: str | None = None,
    therapist_id: str | None = None,
    checkin_id: str | None = None,
    template: str | None = None,
    from_number: str | None = None,
    send_after: datetime | None = None,
    expires_at: datetime | None = None,
) -> Message | None:
    """Queue a text unless one with the same idempotency key exists; return the new row or None."""
    if db.session.scalar(select(Message.id).where(Message.idempotency_key == idempotency_key)):
        return None
    message = Message(
        practice_id=practice_id,
        client_id=client_id,
        contact_id=contact_id,
        therapist_id=therapist_id,
        checkin_id=checkin_id,
        direction="outbound",
        to_number=to,
        from_number=from_number,
        body=body,
        purpose=purpose,
        template=template,
        idempotency_key=idempotency_key,
        status="queued",
        attempts=0,
        send_after=send_after or now,
        expires_at=expires_at,
        created_at=now,
        updated_at=now,
    )
    # A savepoint, so a concurrent writer of the same key costs this row, not the transaction.
    try:
        with db.session.begin_nested():
            db.session.add(message)
    except IntegrityError:
        logger.info("outbox: %s already queued by another writer", idempotency_key.split(":")[0])
        return None
    return message


# Texts per INSERT statement in `enqueue_messages`.
_CHUNK = 1000
# The columns `enqueue_messages` writes (every other column of a new text is NULL, and none
# has a default of its own), in the order of its driver-level INSERT.
_COLUMNS = ("id", "practice_id", "client_id", "contact_id", "therapist_id", "checkin_id",
            "direction", "to_number", "from_number", "body", "purpose", "template",
            "idempotency_key", "status", "attempts", "send_after", "expires_at", "created_at",
            "updated_at")  # fmt: skip


_OPTIONAL = ("client_id", "contact_id", "therapist_id", "checkin_id", "template", "from_number",
             "expires_at")  # fmt: skip


# `enqueue_messages`' INSERT on SQLite (qmark): the columns of _COLUMNS.
_INSERT_SQLITE = (
    "INSERT INTO messages (id, practice_id, client_id, contact_id, therapist_id,"
    " checkin_id, direction, to_number, from_number, body, purpose, template, idempotency_key,"
    " status, attempts, send_after, expires_at, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (idempotency_key) DO NOTHING"
)
# The same on PostgreSQL as one statement per chunk: each column an array bound in binary.
_UNNEST_PG = (
    "INSERT INTO messages (id, practice_id, client_id, contact_id, therapist_id, checkin_id,"
    " direction, to_number, from_number, body, purpose, template, idempotency_key, status,"
    " attempts, send_after, expires_at, created_at, updated_at)"
    " SELECT * FROM unnest(%(id)b::varchar[], %(practice_id)b::varchar[],"
    " %(client_id)b::varchar[], %(contact_id)b::varchar[], %(therapist_id)b::varchar[],"
    " %(checkin_id)b::varchar[], %(direction)b::varchar[], %(to_number)b::varchar[],"
    " %(from_number)b::varchar[], %(body)b::text[], %(purpose)b::varchar[],"
    " %(template)b::varchar[], %(idempotency_key)b::varchar[], %(status)b::varchar[],"
    " %(attempts)b::integer[], %(send_after)b::timestamptz[], %(expires_at)b::timestamptz[],"
    " %(created_at)b::timestamptz[], %(updated_at)b::timestamptz[])"
    " ON CONFLICT (idempotency_key) DO NOTHING RETURNING id"
)


def enqueue_messages(texts: list[dict[str, Any]]) -> set[str]:
    """Queue many texts at once, each unless its idempotency key is already queued.

    Each dict takes `enqueue_message`'s keyword arguments. Per chunk, one driver-level
    INSERT … ON CONFLICT (idempotency_key) DO NOTHING (an executemany on SQLite, an INSERT
    from unnested arrays on PostgreSQL), each value bound through its column's type as a
    Core INSERT binds it (no statement to compile, no dict per row): a key another writer
    already queued costs that text only, as the savepoint does in `enqueue_message`.
    Returns the keys queued now.
    """
    if not texts:
        return set()
    # Sorted, the time-ordered ids follow the list's order even within one millisecond.
    ids = sorted(new_ids("ms", len(texts)))
    keys = [text["idempotency_key"] for text in texts]
    values: dict[str, list[Any]] = {
        "id": ids,
        "practice_id": [text["practice_id"] for text in texts],
        "direction": ["outbound"] * len(texts),
        "to_number": [text["to"] for text in texts],
        "body": [text["body"] for text in texts],
        "purpose": [text["purpose"] for text in texts],
        "idempotency_key": keys,
        "status": ["queued"] * len(texts),
        "attempts": [0] * len(texts),
        "send_after": [text.get("send_after") or text["now"] for text in texts],
        "created_at": [text["now"] for text in texts],
    }
    values["updated_at"] = values["created_at"]
    for key in _OPTIONAL:
        values.setdefault(key, [text.get(key) for text in texts])
    conn = db.session.connection()
    dialect = conn.dialect
    table = Message.__table__
    columns = [
        bind_values(bind_processor(table.c[name], dialect), values[name]) for name in _COLUMNS
    ]
    written: set[str] = set()
    if dialect.name == "postgresql":
        # One INSERT … SELECT FROM unnest of binary arrays per chunk: a fraction of the
        # per-row executemany's server and driver work; RETURNING names the rows written.
        for start in range(0, len(ids), _CHUNK):
            params = {
                name: column[start : start + _CHUNK]
                for name, column in zip(_COLUMNS, columns, strict=True)
            }
            written.update(conn.exec_driver_sql(_UNNEST_PG, params).scalars())
        return _queued(keys, ids, written)
    rows = list(zip(*columns, strict=True))
    sql = _INSERT_SQLITE
    for start in range(0, len(rows), _CHUNK):
        chunk_ids = ids[start : start + _CHUNK]
        count = conn.exec_driver_sql(sql, rows[start : start + _CHUNK]).rowcount
        if count == len(chunk_ids):
            written.update(chunk_ids)
        else:
            # Some keys were taken: the ids found now are exactly the rows this call wrote.
            found = select(table.c.id).where(id_in(table.c.id, chunk_ids))
            written.update(db.session.scalars(found))
    return _queued(keys, ids, written)


def _queued(keys: list[str], ids: list[str], written: set[str]) -> set[str]:
    queued = {key for key, message_id in zip(keys, ids, strict=True) if message_id in written}
    for key in set(keys) - queued:
        logger.info("outbox: %s already queued", key.split(":")[0])
    return queued
