"""Feed validators: the ETag and Last-Modified of a feed from small aggregate queries, no rendering.

A calendar app polls every feed hourly and almost always gets "nothing changed". Rendering
costs tens of milliseconds; answering 304 costs one indexed aggregate query over the rows a
feed is made of (counts, max(updated_at), sum(revision), the pause dates) and one over the
check-ins that can take an occurrence off. The ETag hashes those aggregates with the current
year (milestones listed and VTIMEZONE rules depend on it), the tzdata version and a format
version; every writer of these rows bumps updated_at/revision, so an edit changes the ETag.
Last-Modified is the latest updated_at (or New Year's Day, when the year's rules took over).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import tzdata
from sqlalchemy import func, select

from service.db import db
from service.feed_content import checkin_filter, pause_window
from service.models import (
    Activity,
    Alert,
    CheckIn,
    Client,
    Commitment,
    Meeting,
    MeetingPlan,
    Therapist,
)

# Bump when the rendering changes, so every ETag changes with it.
FORMAT_VERSION = 1


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


def _validator(values: list[Any], changed: list[datetime | None], now: datetime) -> FeedValidator:
    # The feed's bytes are a function of these rows, the current year (milestones listed,
    # the VTIMEZONE rules) and the zone database; so is the ETag, without rendering.
    key = repr((FORMAT_VERSION, tzdata.IANA_VERSION, now.year, values)).encode()
    etag = '"' + hashlib.sha256(key).hexdigest()[:32] + '"'
    # The representation also changes on New Year's Day (see above), so that counts as an edit.
    year_start = datetime(now.year, 1, 1, tzinfo=UTC)
    last = max([year_start, *(c for c in changed if c is not None)]).replace(microsecond=0)
    return FeedValidator(etag, last)


def client_validator(client: Client, *, now: datetime) -> FeedValidator:
    """Compute a client feed's validator from two small aggregate queries (no rendering)."""

    def planned(column: Any) -> Any:
        stmt = select(column).join_from(Meeting, MeetingPlan, MeetingPlan.meeting_id == Meeting.id)
        return stmt.where(MeetingPlan.client_id == client.id).scalar_subquery()

    sources = db.session.execute(
        select(
            *_aggregate(MeetingPlan, MeetingPlan.client_id == client.id, "updated_at", "revision", "paused_until"),
            *_aggregate(Commitment, Commitment.client_id == client.id, "updated_at", "revision", "paused_until"),
            *_aggregate(Activity, Activity.client_id == client.id, "updated_at", "revision"),
            planned(func.max(Meeting.updated_at)),
            planned(func.sum(Meeting.revision)),
            select(func.min(MeetingPlan.paused_until)).where(MeetingPlan.client_id == client.id).scalar_subquery(),
            select(func.min(Commitment.paused_until)).where(Commitment.client_id == client.id).scalar_subquery(),
        )
    ).one()  # fmt: skip
    pauses = [sources[3], sources[7], sources[13], sources[14]]
    if client.status == "paused":
        pauses.append(client.paused_until)
    window = pause_window(pauses)
    # The third column is for Last-Modified only: a check-in leaving the filtered set (an
    # excuse corrected to "confirmed") changes the count and the ETag but not that max.
    checkins = db.session.execute(
        select(
            select(func.count()).where(checkin_filter(client.id, window)).scalar_subquery(),
            select(func.max(CheckIn.updated_at))
            .where(checkin_filter(client.id, window))
            .scalar_subquery(),
            select(func.max(CheckIn.updated_at))
            .where(CheckIn.client_id == client.id)
            .scalar_subquery(),
        )
    ).one()
    own = (client.updated_at, client.revision, client.status, client.paused_until, client.discreet,
           client.timezone, client.sobriety_date)  # fmt: skip
    return _validator(
        [own, tuple(sources), tuple(checkins[:2]), window],
        [client.updated_at, sources[1], sources[5], sources[9], sources[11], checkins[2]],
        now,
    )


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
