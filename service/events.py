"""The append-only event log: every state change is a row written in the same transaction."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, literal_column, select, text, tuple_

from service.db import bind_processor, db
from service.models import Event

# The oldest transaction of THIS database still in flight, other than the reader's own
# (whose events may yet roll back): every event with a smaller txid is final, and no event
# can again be written with a txid below it. Snapshots are cluster-wide, so the in-flight
# list is narrowed to transactions holding a lock on a relation of this database (every
# transaction here that has an xid wrote a table here, and holds that lock until it ends):
# a long transaction in another database on the same server must not hold the stream back.
# pg_locks shows 32-bit xids; the snapshot's full xids are matched on their low 32 bits.
_SAFE_TXID = text(
    """
    SELECT COALESCE(
      (SELECT min(x::text::bigint)
         FROM pg_snapshot_xip(pg_current_snapshot()) AS x
        WHERE x IS DISTINCT FROM pg_current_xact_id_if_assigned()
          AND x::text::bigint % 4294967296 IN (
              SELECT t.transactionid::text::bigint
                FROM pg_locks AS t
               WHERE t.locktype = 'transactionid'
                 AND t.pid IN (
                     SELECT r.pid FROM pg_locks AS r
                      WHERE r.locktype = 'relation' AND r.pid <> pg_backend_pid()
                        AND r.database = (SELECT oid FROM pg_database
                                           WHERE datname = current_database())))),
      pg_snapshot_xmax(pg_current_snapshot())::text::bigint)
    """
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


# Events per INSERT statement in `append_events`.
_EVENTS_CHUNK = 1000
_EVENT_KEYS = ("type", "practice_id", "client_id", "subject_type", "subject_id", "payload")


def append_events(events: list[dict[str, Any]]) -> None:
    """Append many events to the caller's unit of work in one INSERT, in list order.

    Each dict has `type`, `occurred_at` and optionally the other `append_event` arguments.
    Pending ORM changes are flushed first, so events added earlier keep lower ids.
    """
    if not events:
        return
    db.session.flush()
    stmt = insert(Event.__table__)
    if _postgres():
        stmt = stmt.values(txid=literal_column("pg_current_xact_id()::text::bigint"))
    rows = [
        {
            **{key: event.get(key) for key in _EVENT_KEYS},
            "payload": event.get("payload") or {},
            "occurred_at": event["occurred_at"],
        }
        for event in events
    ]
    for start in range(0, len(rows), _EVENTS_CHUNK):
        db.session.execute(stmt, rows[start : start + _EVENTS_CHUNK])


# The columns of a row for `append_event_rows`, in order.
EVENT_ROW_COLUMNS = (
    "type", "practice_id", "client_id", "subject_type", "subject_id", "payload", "occurred_at"
)  # fmt: skip


# `append_event_rows`' INSERTs: an executemany on SQLite; on PostgreSQL, the rows as arrays
# unnested in list order, with the writer's txid.
_EVENT_ROWS_SQLITE = (
    "INSERT INTO events (type, practice_id, client_id, subject_type, subject_id, payload,"
    " occurred_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_EVENT_ROWS_UNNEST_PG = (
    "INSERT INTO events (txid, type, practice_id, client_id, subject_type, subject_id, payload,"
    " occurred_at) SELECT pg_current_xact_id()::text::bigint, type, practice_id, client_id,"
    " subject_type, subject_id, payload::json, occurred_at FROM unnest(%(type)b::varchar[],"
    " %(practice_id)b::varchar[], %(client_id)b::varchar[], %(subject_type)b::varchar[],"
    " %(subject_id)b::varchar[], %(payload)b::text[], %(occurred_at)b::timestamptz[])"
    " WITH ORDINALITY AS e (type, practice_id, client_id, subject_type, subject_id, payload,"
    " occurred_at, position) ORDER BY position"
)


def append_event_rows(rows: Sequence[Sequence[Any]]) -> None:
    """`append_events` for rows laid out as EVENT_ROW_COLUMNS, in list order (bulk writers).

    Per chunk, one driver-level statement with no dict built per event (an executemany on
    SQLite; on PostgreSQL an INSERT from unnested arrays, in list order): each
    value is bound through its column's type exactly as `append_events` binds it (the same
    JSON text, the same stored instant), and on PostgreSQL the writer's txid is set as there.
    Pending ORM changes are flushed first, so events added earlier keep lower ids.
    """
    _append_event_rows(rows, serialized=False)


def append_serialized_event_rows(rows: Sequence[Sequence[Any]]) -> None:
    """`append_event_rows` for rows whose payload is already the JSON text to store.

    The text must be what the payload column's serializer makes of the payload (json.dumps
    unless the engine sets one): it is stored as given.
    """
    _append_event_rows(rows, serialized=True)


def _append_event_rows(rows: Sequence[Sequence[Any]], *, serialized: bool) -> None:
    if not rows:
        return
    db.session.flush()
    conn = db.session.connection()
    processors = _event_rows_processors(conn.dialect)
    payload = EVENT_ROW_COLUMNS.index("payload")
    if serialized:
        processors[payload] = None
    if conn.dialect.name == "postgresql":
        # One INSERT … SELECT FROM unnest of binary arrays per chunk, in list order, instead
        # of a statement per event; the payloads go as JSON text (cast in the statement).
        serialize = getattr(conn.dialect, "_json_serializer", None) or json.dumps
        columns = [
            [row[index] if serialized else serialize(row[index]) for row in rows]
            if index == payload
            else bind_values(process, [row[index] for row in rows])
            for index, process in enumerate(processors)
        ]
        for start in range(0, len(rows), _EVENTS_CHUNK):
            params = {
                name: column[start : start + _EVENTS_CHUNK]
                for name, column in zip(EVENT_ROW_COLUMNS, columns, strict=True)
            }
            conn.exec_driver_sql(_EVENT_ROWS_UNNEST_PG, params)
        return
    columns = [
        bind_values(process, [row[index] for row in rows])
        for index, process in enumerate(processors)
    ]
    bound = list(zip(*columns, strict=True))
    for start in range(0, len(bound), _EVENTS_CHUNK):
        conn.exec_driver_sql(_EVENT_ROWS_SQLITE, bound[start : start + _EVENTS_CHUNK])


def bind_values(process: Any, values: list[Any]) -> list[Any]:
    """Return `values` through a column type's bind processor, once per distinct value.

    Bulk writers' rows share a few values (a type, a subject type, `now`, a meeting's time).
    Datetimes are told apart by fold and zone as well, which `==` alone ignores.
    """
    if process is None:
        return values
    done: dict[Any, Any] = {}
    out = []
    for value in values:
        if isinstance(value, dict | list):
            out.append(process(value))
            continue
        key = (value, value.fold, value.tzinfo) if isinstance(value, datetime) else value
        bound = done.get(key, _MISSING)
        if bound is _MISSING:
            bound = done[key] = process(value)
        out.append(bound)
    return out


_MISSING = object()


def _event_rows_processors(dialect: Any) -> list[Any]:
    """Each EVENT_ROW_COLUMNS column's bind processor (None where values go as they are)."""
    table = Event.__table__
    return [bind_processor(table.c[name], dialect) for name in EVENT_ROW_COLUMNS]


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
    bound = safe_txid()
    if after:
        if _postgres():
            found = db.session.execute(select(Event.txid).where(Event.id == after)).first()
            if found is None:
                raise CursorError(f"no event {after}")
            position = (found[0] or 0, after)
        else:
            position = (0, after)
    stmt = events_page_stmt(
        practice_id, position, limit, safe_below=bound, type=type, client_id=client_id
    )
    events = list(db.session.scalars(stmt))
    return events, (events[-1].id if events else after)


def events_page_stmt(
    practice_id: str,
    position: tuple[int, int] | None,
    limit: int,
    *,
    safe_below: int | None,
    type: str | None = None,
    client_id: str | None = None,
) -> Select[tuple[Event]]:
    """Select the practice's next events after a (txid, id) position, below `safe_below`."""
    stmt = select(Event).where(Event.practice_id == practice_id)
    if type:
        stmt = stmt.where(Event.type == type)
    if client_id:
        stmt = stmt.where(Event.client_id == client_id)
    if safe_below is not None:
        if position is not None:
            stmt = stmt.where(tuple_(Event.txid, Event.id) > tuple_(*position))
        stmt = stmt.where(Event.txid < safe_below).order_by(Event.txid, Event.id)
    else:
        if position is not None:
            stmt = stmt.where(Event.id > position[1])
        stmt = stmt.order_by(Event.id)
    return stmt.limit(limit)


def safe_txid() -> int | None:
    """Return the txid below which every event is final (PostgreSQL), or None (SQLite).

    Read in its own statement, before the events: a transaction that ends between the two
    is then already visible to the (READ COMMITTED) statement that reads the events.
    """
    if not _postgres():
        return None
    return int(db.session.execute(_SAFE_TXID).scalar_one())


def stream_head(practice_id: str) -> int:
    """Return the cursor of the practice's latest event a reader may be served (0 if none)."""
    stmt = select(Event.id).where(Event.practice_id == practice_id)
    bound = safe_txid()
    if bound is not None:
        stmt = stmt.where(Event.txid < bound).order_by(Event.txid.desc(), Event.id.desc())
    else:
        stmt = stmt.order_by(Event.id.desc())
    return db.session.scalar(stmt.limit(1)) or 0
