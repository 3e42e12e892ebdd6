"""The outbox: every text to send is first a queued Message row, unique by idempotency key."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, String, any_, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from service.db import db, new_id
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
_OPTIONAL = ("client_id", "contact_id", "therapist_id", "checkin_id", "template", "from_number",
             "send_after", "expires_at")  # fmt: skip


def enqueue_messages(texts: list[dict[str, Any]]) -> set[str]:
    """Queue many texts at once, each unless its idempotency key is already queued.

    Each dict takes `enqueue_message`'s keyword arguments. One INSERT … ON CONFLICT
    (idempotency_key) DO NOTHING per chunk: a key another writer already queued costs that
    text only, as the savepoint does in `enqueue_message`. Returns the keys queued now.
    """
    if not texts:
        return set()
    rows = []
    # Sorted, the time-ordered ids follow the list's order even within one millisecond.
    ids = sorted(new_id("ms") for _ in texts)
    for text, message_id in zip(texts, ids, strict=True):
        now = text["now"]
        row = {key: text.get(key) for key in _OPTIONAL}
        row.update(
            id=message_id,
            practice_id=text["practice_id"],
            direction="outbound",
            to_number=text["to"],
            body=text["body"],
            purpose=text["purpose"],
            idempotency_key=text["idempotency_key"],
            status="queued",
            attempts=0,
            send_after=text.get("send_after") or now,
            created_at=now,
            updated_at=now,
        )
        rows.append(row)
    written = insert_new(Message.__table__, rows, ["idempotency_key"], chunk=_CHUNK)
    queued = {row["idempotency_key"] for row in rows if row["id"] in written}
    for key in {row["idempotency_key"] for row in rows} - queued:
        logger.info("outbox: %s already queued", key.split(":")[0])
    return queued


def id_in(column: Any, ids: Collection[str]) -> ColumnElement[bool]:
    """`column IN ids` as one bound value: an array on PostgreSQL, a JSON list on SQLite.

    An IN list of hundreds of ids renders (and on PostgreSQL re-parses) a statement as long
    as the list on every call; one parameter keeps the statement short and cached, and has
    no bound-parameter limit. The planners still look each id up by index.
    """
    values = list(ids)
    if db.session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(String)))
    listed = func.json_each(json.dumps(values)).table_valued("value")
    return column.in_(select(listed.c.value))


def insert_new(
    table: Any, rows: list[dict[str, Any]], conflict_columns: list[str], *, chunk: int = 1000
) -> set[str]:
    """INSERT rows with ON CONFLICT (conflict_columns) DO NOTHING; return the ids written.

    `service.db.insert_new_rows`, minus the look-up when it cannot find anything: the
    rows' ids are new, so when the executemany reports every row written, those are the
    ids; only when some row met a conflict are the written ones read back.
    """
    if not rows:
        return set()
    dialect = db.session.get_bind().dialect
    insert = pg_insert if dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table).on_conflict_do_nothing(index_elements=conflict_columns)
    count = 0
    for start in range(0, len(rows), chunk):
        count += db.session.execute(stmt, rows[start : start + chunk]).rowcount
    ids = [row["id"] for row in rows]
    if dialect.supports_sane_multi_rowcount and count == len(ids):
        return set(ids)
    written: set[str] = set()
    for start in range(0, len(ids), chunk):
        found = select(table.c.id).where(id_in(table.c.id, ids[start : start + chunk]))
        written.update(db.session.scalars(found))
    return written
