"""The database handle, the model base with its constraint naming convention, and UTC time types."""

from __future__ import annotations

import base64
import json
import os
import secrets
import select as io_select
import time
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Any

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    ColumnElement,
    DateTime,
    Engine,
    MetaData,
    String,
    TypeDecorator,
    any_,
    bindparam,
    event,
    func,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import Pool

# Named constraints make Alembic migrations (and SQLite batch mode) deterministic.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Enforce foreign keys on SQLite and let readers run beside the writer (WAL)."""
    if type(dbapi_connection).__module__.startswith("sqlite3"):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        # WAL: the web process and the scheduler read while the other writes, and a commit
        # costs one append instead of a rollback-journal rewrite (13 ms -> 1.2 ms measured).
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


def _server_hung_up(dbapi_connection: Any) -> bool:
    """Return whether an idle psycopg connection is dead, asking the server only when in doubt.

    An idle connection's socket has nothing to read: the server speaks only when asked. A
    server that stopped, restarted or ended the session (shutdown, pg_terminate_backend, an
    idle timeout) closed the socket, often after a last FATAL message, so it reads as ready;
    so would an unsolicited notice. Only then is the server asked (SELECT 1, in autocommit
    as SQLAlchemy's pre-ping does); a connection that answers is kept.
    """
    pgconn = dbapi_connection.pgconn
    if dbapi_connection.closed or pgconn.status != 0:  # 0: CONNECTION_OK
        return True
    try:
        readable, _, _ = io_select.select([pgconn.socket], [], [], 0)
    except (OSError, ValueError):
        return True
    if not readable:
        return False
    autocommit = dbapi_connection.autocommit
    try:
        dbapi_connection.autocommit = True
        dbapi_connection.execute("SELECT 1").fetchall()
        dbapi_connection.autocommit = autocommit
    except Exception:  # noqa: BLE001 - any failure here means: do not hand this one out
        return True
    return False


@event.listens_for(Pool, "checkout")
def _replace_dead_postgresql(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Hand out no PostgreSQL connection the server has hung up (a cheap pool_pre_ping).

    pool_pre_ping paid a round trip on every checkout; this costs one non-blocking poll of
    the socket, plus the round trip only when the socket has something to say. A dead
    connection raises DisconnectionError, which makes the pool connect a new one in its place
    (a refused connect then fails the request fast: 503). A server that dies after this check
    fails the statement instead; SQLAlchemy then invalidates the pool, so the next checkouts
    connect afresh (and read-only callers such as feed polls retry once).
    """
    if hasattr(dbapi_connection, "pgconn") and _server_hung_up(dbapi_connection):
        raise DisconnectionError("the server closed this pooled connection")


# Seconds a new PostgreSQL connection may take before the attempt fails: a request or a sweep
# facing a database that is down or restarting fails fast instead of hanging.
PG_CONNECT_TIMEOUT = 3
# Seconds a request waits for a pooled connection before giving up (answered 503).
PG_POOL_TIMEOUT = 5
# Connections older than this are replaced, so none outlives a server-side idle timeout.
PG_POOL_RECYCLE = 1800


def engine_options(url: str) -> dict[str, Any]:
    """Return the SQLAlchemy engine options for a database URL.

    SQLite: a busy writer makes others wait instead of failing with "database is locked".
    PostgreSQL: a pooled connection the server has hung up is replaced at checkout, not
    handed to a request (_replace_dead_postgresql: a restarted server's dead connections are
    recognised without the round trip pool_pre_ping paid on every checkout), and connecting
    is bounded in time.
    """
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    options: dict[str, Any] = {
        "pool_size": 5,
        "max_overflow": 5,
        "pool_timeout": PG_POOL_TIMEOUT,
        "pool_recycle": PG_POOL_RECYCLE,
    }
    if url.startswith(("postgresql", "postgres")):
        options["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT}
    return options


def is_database_outage(exc: BaseException) -> bool:
    """Return whether `exc` means the database is unreachable (down, restarting, pool exhausted).

    Constraint violations, bad SQL and the like are bugs or conflicts, not outages.
    """
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


class Base(DeclarativeBase):
    """Declarative base whose metadata names every constraint."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)


def utcnow() -> datetime:
    """Return the current instant as an aware UTC datetime (edges only: the core takes `now`)."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator):
    """An instant stored as UTC and always returned timezone-aware.

    SQLite has no timezone support, so values are stored naive-in-UTC there; PostgreSQL gets
    `timestamp with time zone`. Naive datetimes are refused on the way in: they are a bug.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            # value.replace(tzinfo=UTC), the same date, time, fold and tzinfo, without the
            # keyword parsing that makes replace() several times slower (~1 µs a value;
            # a busy minute's sweep reads a few thousand).
            return datetime.combine(value, value.time(), UTC)
        return value.astimezone(UTC)


_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_FROM_BASE32 = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD.encode())


def bind_processor(column: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """Return the function SQLAlchemy applies to a column's values on this dialect, if any:
    for driver-level statements that bind values as the column would."""
    return column.type.dialect_impl(dialect).bind_processor(dialect)  # type: ignore[no-any-return]


def binder(column: Any, dialect: Any) -> Callable[[Any], Any]:
    """bind_processor, or the value itself where the column binds it unchanged: for a few
    values bound by hand (bulk writers use bind_processor's None to skip whole lists)."""
    return bind_processor(column, dialect) or _unchanged


def _unchanged(value: Any) -> Any:
    return value


def new_id(prefix: str) -> str:
    """Return an opaque, time-ordered id such as `cl_01hx…` (ULID-like: 48-bit ms + 80 random bits)."""
    ms = time.time_ns() // 1_000_000
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    # The 26 base-32 digits of the 128-bit value, most significant first: shifted into the
    # top 130 of 160 bits, they are the first 26 characters of its RFC 4648 base32.
    digits = base64.b32encode((value << 30).to_bytes(20, "big"))[:26].translate(_FROM_BASE32)
    return f"{prefix}_{digits.decode('ascii')}"


def new_ids(prefix: str, count: int) -> list[str]:
    """Return `count` fresh ids of `new_id(prefix)`'s form, made in one go (a batch's rows).

    An id is the prefix, then 26 base-32 digits: the first 10 spell the millisecond (48 bits
    after two zero bits), the last 16 its 80 random bits. So one `new_id` gives the batch its
    time digits, and one base-32 encoding of 10 OS random bytes per id (two whole 5-byte
    groups, so each id's 16 digits are its own 10 bytes') gives the rest: one call for the
    OS's randomness and one encoding per batch instead of one of each per id.
    """
    if count <= 0:
        return []
    head = new_id(prefix)[: len(prefix) + 11]  # the prefix, "_" and the 10 time digits
    digits = base64.b32encode(os.urandom(10 * count)).translate(_FROM_BASE32).decode("ascii")
    return [head + digits[start : start + 16] for start in range(0, 16 * count, 16)]


def new_secret(nbytes: int = 32) -> str:
    """Return a URL-safe random secret of `nbytes` bytes of entropy."""
    return secrets.token_urlsafe(nbytes)


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


def in_bound(column: Any, name: str, dialect: str) -> ColumnElement[bool]:
    """`id_in` left unbound: `column IN` the list later bound as `name` (`bound_list`).

    A statement built once with it (per dialect) is run again and again with only the list
    changing: neither built nor walked for its cache key per call.
    """
    if dialect == "postgresql":
        return column == any_(bindparam(name, type_=ARRAY(String)))
    listed = func.json_each(bindparam(name, type_=String)).table_valued("value")
    return column.in_(select(listed.c.value))


def bound_list(dialect: str, ids: Collection[str]) -> Any:
    """The value to bind for an `in_bound` list: an array, or a JSON list on SQLite."""
    return list(ids) if dialect == "postgresql" else json.dumps(list(ids))


def insert_new_rows(
    table: Any, rows: list[dict[str, Any]], conflict_columns: list[str], *, chunk: int = 1000
) -> set[str]:
    """INSERT rows with ON CONFLICT (conflict_columns) DO NOTHING; return the ids written.

    One executemany per chunk, so a row another writer already holds costs that row only (as
    a savepoint would, and on PostgreSQL the INSERT waits for that writer to end first). The
    rows' ids must be new: when the driver reports every row written, those are the ids;
    otherwise the ones found afterwards are exactly the rows this call wrote (a plain
    executemany and a lookup are cheaper than RETURNING rendered per chunk).
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
