"""Feed validators: the ETag and Last-Modified of a feed from small aggregate queries, no rendering.

A calendar app polls every feed hourly and almost always gets "nothing changed". Rendering
costs tens of milliseconds; answering 304 costs one indexed query: the token row by digest,
its client's row and scalar aggregates over the rows a client's feed is made of (counts,
max(updated_at), sum(revision), the pause dates, and the check-ins that can take an
occurrence off, from ix_checkins_client_status_updated alone). Only while a pause is on
record does a second query count the check-ins inside the pause. The ETag hashes those
values with the current year (milestones listed and VTIMEZONE rules depend on it), the
tzdata version and a format version; every writer of these rows bumps updated_at/revision,
so an edit changes the ETag. Last-Modified is the latest updated_at (or New Year's Day,
when the year's rules took over).

The statements are built once and reused: building a statement of twenty subqueries (and
its cache key) cost more than running it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import tzdata
from sqlalchemy import Connection, Engine, Select, String, bindparam, func, select, true
from sqlalchemy.exc import DBAPIError

from service.db import db
from service.feed_content import OFF_STATUSES, checkin_filter, pause_window
from service.models import (
    Activity,
    Alert,
    CheckIn,
    Client,
    Commitment,
    FeedToken,
    Meeting,
    MeetingPlan,
    Therapist,
)

# Bump when the rendering changes, so every ETag changes with it.
FORMAT_VERSION = 2


@dataclass(frozen=True)
class FeedValidator:
    """What a conditional GET compares: the quoted ETag and the Last-Modified instant."""

    etag: str
    last_modified: datetime


def _aggregate(model: Any, owner: Any, *columns: str) -> list[Any]:
    """Return scalar subqueries count(*), then sum(revision) or max(column) of model's rows."""
    # Built from columns, never from select(model): that would list every column of the
    # table and cost more to construct than the query costs to run.
    parts = [select(func.count()).select_from(model).where(owner).scalar_subquery()]
    for name in columns:
        fn = func.sum if name == "revision" else func.max
        parts.append(select(fn(getattr(model, name))).where(owner).scalar_subquery())
    return parts


def _etag(values: list[Any], now: datetime) -> str:
    # The feed's bytes are a function of these rows, the current year (milestones listed,
    # the VTIMEZONE rules) and the zone database; so is the ETag, without rendering.
    key = repr((FORMAT_VERSION, tzdata.IANA_VERSION, now.year, values)).encode()
    return '"' + hashlib.sha256(key).hexdigest()[:32] + '"'


def _validator(values: list[Any], changed: list[datetime | None], now: datetime) -> FeedValidator:
    etag = _etag(values, now)
    # The representation also changes on New Year's Day (see above), so that counts as an edit.
    year_start = datetime(now.year, 1, 1, tzinfo=UTC)
    last = max([year_start, *(c for c in changed if c is not None)]).replace(microsecond=0)
    return FeedValidator(etag, last)


# What of the client's own row the feed shows (or depends on), in this order.
_OWN = ("updated_at", "revision", "status", "paused_until", "discreet", "timezone", "sobriety_date")
# Positions in _client_sources(): the four pause dates, then the check-in aggregates.
_PAUSES = (3, 7, 13, 14)
_OFF_COUNT, _OFF_CHANGED, _CHECKIN_CHANGED = 15, 16, 17


def _client_sources(client_id: Any, *, latest: bool = True) -> tuple[list[Any], list[Any]]:
    """Aggregates over the rows a client's feed is made of: (one-row subqueries, columns).

    One pass per table: each subquery is a single-row aggregate over one index range of
    the client's rows, joined to the rest; its columns come out in this fixed order. Without
    `latest` the last column (the latest updated_at of all the client's check-ins, which
    only Last-Modified uses) is left out.
    """

    def of(model: Any) -> Any:
        return select(*_aggregates(model)).where(model.client_id == client_id).subquery()

    plans, commitments, activities = of(MeetingPlan), of(Commitment), of(Activity)
    meetings = (
        select(func.max(Meeting.updated_at), func.sum(Meeting.revision))
        .join_from(Meeting, MeetingPlan, MeetingPlan.meeting_id == Meeting.id)
        .where(MeetingPlan.client_id == client_id)
        .subquery()
    )
    # The check-ins that take an occurrence off (checkin_filter without a pause window):
    # their count and latest updated_at, in one pass over their range of
    # ix_checkins_client_status_updated; and, for Last-Modified only, the latest updated_at
    # of all (a check-in leaving the filtered set, an excuse corrected to "confirmed",
    # changes the count and the ETag but not the filtered max). (One backward index lookup
    # per status for the latter measured slower at ~200 check-ins per client.)
    off_rows = _off_checkins(client_id).subquery()
    checkin_columns = [off_rows.c.n, off_rows.c.changed]
    if latest:
        every = CheckIn.client_id == client_id
        checkin_columns.append(select(func.max(CheckIn.updated_at)).where(every).label("latest"))
    checkins = select(*checkin_columns).subquery()
    p, c, a, m, k = (list(sub.c) for sub in (plans, commitments, activities, meetings, checkins))
    return [plans, commitments, activities, meetings, checkins], _in_order(p, c, a, m, k)


def _aggregates(model: Any) -> list[Any]:
    """A source table's aggregates over a client's rows: count, latest change, revisions and,
    for the pausable ones (plans, commitments), the latest and earliest pause."""
    columns = [func.count(), func.max(model.updated_at), func.sum(model.revision)]
    if model is not Activity:
        columns += [func.max(model.paused_until), func.min(model.paused_until)]
    return columns


def _off_checkins(client_id: Any) -> Select[Any]:
    """The count and latest change of a client's check-ins that take an occurrence off."""
    # Statuses are constants, rendered into the SQL as literals: as parameters they made
    # PostgreSQL cost the prepared statement's generic plan above a custom one, so every poll
    # was planned afresh (planning took longer than running it).
    statuses = bindparam("off_statuses", OFF_STATUSES, expanding=True, literal_execute=True)
    return select(func.count().label("n"), func.max(CheckIn.updated_at).label("changed")).where(
        CheckIn.client_id == client_id, CheckIn.status.in_(statuses)
    )


def _in_order(p: list[Any], c: list[Any], a: list[Any], m: list[Any], k: list[Any]) -> list[Any]:
    """The sources' columns in _client_sources' order from plans', commitments', activities',
    meetings' and check-ins' aggregates (see _PAUSES): the pauses' minimums after the rest."""
    return [*p[:4], *c[:4], *a, *m, p[4], c[4], *k]


def _joined(base: Any, subqueries: list[Any]) -> Any:
    # Each subquery is exactly one row: joined on TRUE, a cartesian product of one.
    for subquery in subqueries:
        base = base.join(subquery, true())
    return base


_OWN_COLUMNS = [getattr(Client, name) for name in _OWN]
_TOKEN_COLUMNS = [FeedToken.id, FeedToken.digest, FeedToken.revoked_at, FeedToken.last_seen_at,
                  FeedToken.client_id, FeedToken.therapist_id]  # fmt: skip


class Prepared:
    """A statement compiled once per dialect and run as its SQL text on the session's connection.

    A Core execution of a statement this size spends longer than the query itself on
    SQLAlchemy's per-execution work (looking the compiled form up under the statement's
    whole cache key, setting up parameters and result processing); this keeps the SQL text,
    its parameter order and the columns' result processors per dialect. It runs on the given
    Connection's DBAPI connection (inside the session's transaction when it is the
    session's), without an execution context or a CursorResult (whose metadata for thirty
    columns cost as much as the query on SQLite), so cursor events do not fire; driver errors
    are handed to SQLAlchemy's own handler, which wraps them in DBAPIError and invalidates
    the pool on a disconnect, as any execution would. Bound parameters must be strings (no
    bind processing is applied).
    """

    def __init__(self, build: Any, **placeholders: str) -> None:
        self._build = build
        self._placeholders = placeholders
        self._forms: dict[tuple[str, str, str], tuple[str, dict[str, Any], Any, list[Any]]] = {}

    @property
    def statement(self) -> Select[Any]:
        """The Core statement (for tests and EXPLAIN)."""
        return self._build()

    def _form(self, dialect: Any) -> tuple[str, dict[str, Any], Any, list[Any]]:
        key = (dialect.name, dialect.driver, dialect.paramstyle)
        form = self._forms.get(key)
        if form is None:
            statement = self._build()
            compiled = statement.compile(dialect=dialect)
            # Expands IN lists into one parameter each, so the text is final.
            state = compiled.construct_expanded_state(dict(self._placeholders))
            processors = [
                column.type.dialect_impl(dialect).result_processor(dialect, None)
                for column in statement.selected_columns
            ]
            form = (state.statement, dict(state.parameters), state.positiontup, processors)
            self._forms[key] = form
        return form

    def first(self, connection: Connection | None = None, **params: str) -> tuple[Any, ...] | None:
        """Run with params (on the session's connection unless given one); return the first
        row's values, processed as Core would, or None."""
        if connection is None:
            connection = db.session.connection()
        sql, defaults, order, processors = self._form(connection.dialect)
        values = {**defaults, **params}
        args = tuple(values[name] for name in order) if order is not None else values
        row = _first_row(connection, sql, args)
        if row is None:
            return None
        return tuple(value if process is None else process(value)
                     for process, value in zip(processors, row, strict=True))  # fmt: skip


def _first_row(connection: Connection, sql: str, args: Any) -> Any:
    """Execute sql on the connection's DBAPI cursor and return its first row (or None)."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, args)
        return cursor.fetchone()
    except connection.dialect.loaded_dbapi.Error as exc:
        # Wraps in DBAPIError (connection_invalidated on a disconnect) and raises.
        connection._handle_dbapi_exception(exc, sql, args, cursor, None)
        raise  # not reached
    finally:
        cursor.close()


@cache
def _autocommit(engine: Engine) -> Engine:
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def standalone_first(
    prepared: Prepared, engine: Engine | None = None, **params: str
) -> tuple[Any, ...] | None:
    """Run a read-only Prepared outside the session: on PostgreSQL, in autocommit.

    A single SELECT sees one snapshot by itself; on PostgreSQL autocommit spares a poll the
    BEGIN and ROLLBACK round trips (half of its trips to the server), and a poll that
    writes nothing never checks the session's connection out. SQLite's driver begins no
    transaction for a SELECT, so a plain pooled connection does the same there (without the
    session's transaction bookkeeping, a sixth of a poll's time). On the app's engine unless
    given one.
    """
    engine = engine if engine is not None else db.engine
    if engine.dialect.name != "postgresql":
        with engine.connect() as connection:
            return prepared.first(connection, **params)
    try:
        with _autocommit(engine).connect() as connection:
            return prepared.first(connection, **params)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    # The server dropped the connection after checkout (a restart): SQLAlchemy invalidated
    # the pool, so this reconnects; a read is safe to repeat, and a database still down
    # fails this attempt as an outage.
    with _autocommit(engine).connect() as connection:
        return prepared.first(connection, **params)


def _client_statement() -> Select[Any]:
    """The client's own columns and _client_sources, by client id."""
    client_id = bindparam("client_id", type_=String())
    subqueries, sources = _client_sources(client_id)
    return (
        select(*_OWN_COLUMNS, *sources)
        .select_from(_joined(Client.__table__, subqueries))
        .where(Client.id == client_id)
    )


def _token_statement(*, latest: bool = True) -> Select[Any]:
    """A feed token's row by digest, with its client's columns and _client_sources (one query).

    A therapist's token comes back with the client columns NULL and the aggregates empty.
    """
    digest = bindparam("digest", type_=String())
    # Uncorrelated, so each aggregate is one index range for one client, found once.
    client_id = select(FeedToken.client_id).where(FeedToken.digest == digest).scalar_subquery()
    subqueries, sources = _client_sources(client_id, latest=latest)
    joined = FeedToken.__table__.outerjoin(Client, Client.id == FeedToken.client_id)
    return (
        select(*_TOKEN_COLUMNS, *_OWN_COLUMNS, *sources)
        .select_from(_joined(joined, subqueries))
        .where(FeedToken.digest == digest)
    )


def _lateral_poll_statement() -> Select[Any]:
    """POLL_STATE for PostgreSQL in fewer executor steps: the same columns and values.

    Each aggregate is a LATERAL subquery over the token row's client_id (found once, not
    once per aggregate by digest), and the meetings' aggregates come from the same pass
    over the client's meeting plans as the plans' own: a plan's meeting_id is NOT NULL and
    a foreign key, so the inner join keeps every plan row and adds exactly its meeting,
    which is what the separate join of POLL_STATE aggregates. (SQLite has no LATERAL.)
    """
    digest = bindparam("digest", type_=String())
    client_id = FeedToken.client_id
    plans = (
        select(*_aggregates(MeetingPlan), func.max(Meeting.updated_at), func.sum(Meeting.revision))
        .join_from(MeetingPlan, Meeting, Meeting.id == MeetingPlan.meeting_id)
        .where(MeetingPlan.client_id == client_id)
        .lateral()
    )

    def of(model: Any) -> Any:
        return select(*_aggregates(model)).where(model.client_id == client_id).lateral()

    commitments, activities = of(Commitment), of(Activity)
    checkins = _off_checkins(client_id).lateral()
    p, c, a, k = (list(sub.c) for sub in (plans, commitments, activities, checkins))
    sources = _in_order(p[:5], c, a, p[5:7], k)
    joined = FeedToken.__table__.outerjoin(Client, Client.id == FeedToken.client_id)
    return (
        select(*_TOKEN_COLUMNS, *_OWN_COLUMNS, *sources)
        .select_from(_joined(joined, [plans, commitments, activities, checkins]))
        .where(FeedToken.digest == digest)
    )


CLIENT_STATE = Prepared(cache(_client_statement), client_id="")
# Token columns first (id, digest, revoked_at, last_seen_at, client_id, therapist_id).
TOKEN_STATE = Prepared(cache(_token_statement), digest="")
TOKEN_WIDTH = len(_TOKEN_COLUMNS)
# TOKEN_STATE without Last-Modified's aggregate (a read of every check-in of the client's):
# all a poll with If-None-Match needs. If-None-Match, when present, is the only condition
# evaluated, and a 304 carries no Last-Modified (werkzeug drops it); whatever else a poll
# may need (a 200, a pause on record) is answered through TOKEN_STATE.
POLL_STATE = Prepared(cache(lambda: _token_statement(latest=False)), digest="")
# POLL_STATE's values from a cheaper form of it, for PostgreSQL only (poll_etag there, with
# or without a PollReader): about a sixth less of the server's CPU per poll (LATERAL
# aggregates keyed on the token row, the meetings read with the plans). Tests hold it to
# POLL_STATE's values.
POLL_STATE_LATERAL = Prepared(cache(_lateral_poll_statement), digest="")


def own_of(values: Sequence[Any]) -> tuple[Any, ...]:
    """The client's own columns of CLIENT_STATE's values (TOKEN_STATE's after TOKEN_WIDTH)."""
    return tuple(values[: len(_OWN)])


def sources_of(values: Sequence[Any]) -> tuple[Any, ...]:
    """The aggregates of CLIENT_STATE's values (TOKEN_STATE's or POLL_STATE's after
    TOKEN_WIDTH; POLL_STATE's lack the last one)."""
    return tuple(values[len(_OWN) : len(_OWN) + _CHECKIN_CHANGED + 1])


def _pause_window_of(own: Sequence[Any], sources: Sequence[Any]) -> Any:
    status, paused_until = own[2], own[3]
    pauses = [sources[i] for i in _PAUSES]
    if status == "paused":
        pauses.append(paused_until)
    return pause_window(pauses)


def _etag_values(
    own: Sequence[Any], sources: Sequence[Any], counted: Any, window: Any
) -> list[Any]:
    return [tuple(own), tuple(sources[:_OFF_COUNT]), counted, window]


def client_etag_of(own: Sequence[Any], sources: Sequence[Any], *, now: datetime) -> str | None:
    """The ETag client_validator_of gives for these values (POLL_STATE's suffice), or None
    while a pause is on record (counting the check-ins inside it takes another query)."""
    if _pause_window_of(own, sources) is not None:
        return None
    counted = (sources[_OFF_COUNT], sources[_OFF_CHANGED])
    return _etag(_etag_values(own, sources, counted, None), now)


def client_validator_of(
    client_id: str, own: Sequence[Any], sources: Sequence[Any], *, now: datetime
) -> FeedValidator:
    """Compute a client feed's validator from the values of _client_statement/token_statement."""
    updated_at = own[0]
    window = _pause_window_of(own, sources)
    counted = (sources[_OFF_COUNT], sources[_OFF_CHANGED])
    if window is not None:
        # Inside a pause a kept check-in keeps its occurrence: count those too.
        wanted = checkin_filter(client_id, window)
        counted = tuple(
            db.session.execute(
                select(
                    select(func.count()).select_from(CheckIn).where(wanted).scalar_subquery(),
                    select(func.max(CheckIn.updated_at)).where(wanted).scalar_subquery(),
                )
            ).one()
        )
    changed = [
        updated_at,
        sources[1],
        sources[5],
        sources[9],
        sources[11],
        sources[_CHECKIN_CHANGED],
    ]
    return _validator(_etag_values(own, sources, counted, window), changed, now)


def client_validator(client: Client, *, now: datetime) -> FeedValidator:
    """Compute a client feed's validator from one aggregate query (no rendering)."""
    values = CLIENT_STATE.first(client_id=client.id)
    if values is None:
        raise LookupError(f"no client {client.id}")
    return client_validator_of(client.id, own_of(values), sources_of(values), now=now)


def therapist_validator(therapist: Therapist, *, now: datetime) -> FeedValidator:
    """Compute a therapist feed's validator from one aggregate query (no rendering)."""
    clients = select(Client.id).where(
        Client.therapist_id == therapist.id, Client.status != "discharged"
    )
    sessions = (Activity.client_id.in_(clients)) & (Activity.kind == "therapy_session")
    open_alerts = (Alert.client_id.in_(clients)) & (Alert.status == "open")
    # For Last-Modified only: when a client leaves the caseload or an alert is closed, the
    # counts (and the ETag) change but the maxima of what remains need not.
    mine = Client.therapist_id == therapist.id
    closed = Alert.client_id.in_(select(Client.id).where(mine))
    row = db.session.execute(
        select(
            *_aggregate(Client, Client.id.in_(clients), "updated_at", "revision"),
            *_aggregate(Activity, sessions, "updated_at", "revision"),
            *_aggregate(Alert, open_alerts, "created_at"),
            select(func.max(Client.updated_at)).where(mine).scalar_subquery(),
            select(func.max(Alert.acknowledged_at)).where(closed).scalar_subquery(),
            select(func.max(Alert.resolved_at)).where(closed).scalar_subquery(),
        )
    ).one()
    return _validator([therapist.active, tuple(row[:8])], [*row[1:8:3], *row[8:]], now)


def validator_of(owner: Client | Therapist, *, now: datetime) -> FeedValidator:
    """Return the validator of a client's or a therapist's feed (no rendering)."""
    if isinstance(owner, Client):
        return client_validator(owner, now=now)
    return therapist_validator(owner, now=now)
