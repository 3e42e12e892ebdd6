"""Read-only queries behind the dashboard's tables and charts."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, or_, select

from service.db import db
from service.models import Alert, CheckIn, Client, Commitment, Therapist
from service.models.vocab import TWELVE_STEP_PATHS

ADHERENCE_DAYS = 28
WEEKS = 12


@dataclass
class ClientRow:
    """One line of the clients table."""

    client: Client
    therapist_name: str
    confirmed: int = 0
    declined: int = 0
    missed: int = 0
    last_response: datetime | None = None
    open_alerts: int = 0
    sober_days: int | None = None

    @property
    def adherence(self) -> float | None:
        """Return confirmed / (confirmed + declined + missed), or None with nothing to measure."""
        total = self.confirmed + self.declined + self.missed
        return self.confirmed / total if total else None


@dataclass
class DayCounts:
    """The check-in outcomes of one local day."""

    day: date
    counts: dict[str, int] = field(default_factory=dict)


def visible_clients(
    therapist: Therapist,
    *,
    scope: str = "mine",
    q: str = "",
    status: str = "",
    path: str = "",
) -> list[Client]:
    """Return the clients a therapist may list: their caseload, or their whole practice."""
    stmt = select(Client).where(Client.practice_id == therapist.practice_id)
    if scope != "practice":
        stmt = stmt.where(Client.therapist_id == therapist.id)
    if q.strip():
        stmt = stmt.where(Client.display_name.ilike(f"%{_escape_like(q.strip())}%", escape="\\"))
    if status:
        stmt = stmt.where(Client.status == status)
    if path:
        stmt = stmt.where(Client.recovery_path == path)
    return list(db.session.scalars(stmt.order_by(Client.display_name, Client.id)))


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def client_rows(clients: list[Client], *, now: datetime, today: dict[str, date]) -> list[ClientRow]:
    """Compute adherence, last response and open alerts for each client in a few queries."""
    ids = [c.id for c in clients]
    names = dict(db.session.execute(select(Therapist.id, Therapist.name)).all()) if ids else {}
    rows = {c.id: ClientRow(c, names.get(c.therapist_id, "")) for c in clients}
    if not ids:
        return []
    since = now - timedelta(days=ADHERENCE_DAYS)
    for client_id, status, count in db.session.execute(
        select(CheckIn.client_id, CheckIn.status, func.count())
        .where(
            CheckIn.client_id.in_(ids),
            CheckIn.status.in_(("confirmed", "declined", "missed")),
            CheckIn.event_at >= since,
            CheckIn.event_at <= now,
        )
        .group_by(CheckIn.client_id, CheckIn.status)
    ):
        setattr(rows[client_id], status, count)
    for client_id, last in db.session.execute(
        select(CheckIn.client_id, func.max(CheckIn.responded_at))
        .where(CheckIn.client_id.in_(ids))
        .group_by(CheckIn.client_id)
    ):
        rows[client_id].last_response = last
    for client_id, count in db.session.execute(
        select(Alert.client_id, func.count())
        .where(Alert.client_id.in_(ids), Alert.status != "resolved")
        .group_by(Alert.client_id)
    ):
        rows[client_id].open_alerts = count
    for row in rows.values():
        sober = row.client.sobriety_date
        local = today.get(row.client.timezone)
        if sober is not None and local is not None:
            row.sober_days = (local - sober).days
    return [rows[i] for i in ids]


def inbox(therapist: Therapist) -> list[Alert]:
    """Return the therapist's unresolved alerts: crisis first, then open, newest first."""
    mine = select(Client.id).where(Client.therapist_id == therapist.id)
    stmt = select(Alert).where(
        Alert.practice_id == therapist.practice_id,
        Alert.status != "resolved",
        or_(
            Alert.therapist_id == therapist.id,
            Alert.client_id.in_(mine),
            Alert.client_id.is_(None) & Alert.therapist_id.is_(None),
        ),
    )
    alerts = list(db.session.scalars(stmt))
    alerts.sort(key=lambda a: a.created_at, reverse=True)
    alerts.sort(key=lambda a: (a.kind != "crisis", a.status != "open"))
    return alerts


def todays_checkins(clients: Iterable[Client], today: dict[str, date]) -> list[CheckIn]:
    """Return the check-ins falling on each client's local today, in local time order."""
    by_zone: dict[str, list[str]] = defaultdict(list)
    for client in clients:
        by_zone[client.timezone].append(client.id)
    found: list[CheckIn] = []
    for zone, ids in by_zone.items():
        start = datetime.combine(today[zone], time())
        found.extend(
            db.session.scalars(
                select(CheckIn).where(
                    CheckIn.client_id.in_(ids),
                    CheckIn.occurrence >= start,
                    CheckIn.occurrence < start + timedelta(days=1),
                    CheckIn.status != "cancelled",
                )
            )
        )
    found.sort(key=lambda c: (c.event_at, c.client_id))
    return found


def weeks_window(today: date, weeks: int = WEEKS) -> tuple[date, date]:
    """Return the Monday `weeks` weeks back (this week included) and the Sunday ending this week."""
    monday = today - timedelta(days=today.weekday())
    return monday - timedelta(weeks=weeks - 1), monday + timedelta(days=6)


def day_counts(client: Client, first: date, last: date) -> list[DayCounts]:
    """Return each day's check-in outcome counts for a client between two local dates."""
    days = {
        first + timedelta(days=i): DayCounts(first + timedelta(days=i))
        for i in range((last - first).days + 1)
    }
    rows = db.session.execute(
        select(CheckIn.occurrence, CheckIn.status).where(
            CheckIn.client_id == client.id,
            CheckIn.occurrence >= datetime.combine(first, time()),
            CheckIn.occurrence < datetime.combine(last + timedelta(days=1), time()),
        )
    )
    for occurrence, status in rows:
        cell = days.get(occurrence.date())
        if cell is not None:
            cell.counts[status] = cell.counts.get(status, 0) + 1
    return list(days.values())


def meetings_per_week(client: Client, first: date, weeks: int = WEEKS) -> list[tuple[date, int]]:
    """Return (Monday, meetings confirmed) for each week from `first`."""
    counts = {first + timedelta(weeks=i): 0 for i in range(weeks)}
    rows = db.session.scalars(
        select(CheckIn.occurrence).where(
            CheckIn.client_id == client.id,
            CheckIn.source_type == "meeting_plan",
            CheckIn.status == "confirmed",
            CheckIn.occurrence >= datetime.combine(first, time()),
            CheckIn.occurrence < datetime.combine(first + timedelta(weeks=weeks), time()),
        )
    )
    for occurrence in rows:
        day = occurrence.date()
        monday = day - timedelta(days=day.weekday())
        if monday in counts:
            counts[monday] += 1
    return sorted(counts.items())


def meeting_target(client: Client) -> int | None:
    """Return the weekly meeting target of the client's active meeting_quota commitment."""
    return db.session.scalar(
        select(Commitment.target)
        .where(
            Commitment.client_id == client.id,
            Commitment.kind == "meeting_quota",
            Commitment.archived_at.is_(None),
            Commitment.active.is_(True),
        )
        .order_by(Commitment.created_at.desc())
        .limit(1)
    )


def shows_step(client: Client) -> bool:
    """Return whether the client's path works the Twelve Steps."""
    return client.recovery_path in TWELVE_STEP_PATHS
