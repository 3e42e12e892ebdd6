"""Alerts: raise (deduplicated), acknowledge, resolve, and text crises to the therapist at once."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from service.db import db, insert_new_rows, new_id
from service.escalation import dedup_key, occurrence_label
from service.events import append_event, append_events
from service.models import Alert, CheckIn, Client, Practice, Therapist
from service.notifications.templates import render
from service.outbox import enqueue_message
from service.phones import mask
from service.serialize import iso

logger = logging.getLogger(__name__)


def raise_alert(
    *,
    kind: str,
    client: Client | None,
    source_type: str | None,
    source_id: str | None,
    occurrence: str | None,
    detail: dict[str, Any] | None,
    now: datetime,
    practice_id: str | None = None,
) -> Alert | None:
    """Raise an alert for the client's therapist; return None when it was already raised.

    The dedup key is (kind, client, source, occurrence): pass the occurrence or period the
    alert is about (or an inbound message id for a crisis) so a repeat is a new alert and a
    re-run of the same sweep is not. A crisis is texted to the therapist at once.
    """
    practice = client.practice_id if client is not None else practice_id
    if practice is None:
        raise ValueError("an alert needs a client or a practice_id")
    key = dedup_key(kind, client.id if client else None, source_type, source_id, occurrence)
    if db.session.scalar(select(Alert.id).where(Alert.dedup_key == key)):
        return None
    alert = Alert(
        id=new_id("al"),
        practice_id=practice,
        client_id=client.id if client else None,
        therapist_id=client.therapist_id if client else None,
        kind=kind,
        status="open",
        source_type=source_type,
        source_id=source_id,
        occurrence=occurrence,
        dedup_key=key,
        detail=detail or {},
        created_at=now,
    )
    # A savepoint: a concurrent raiser of the same alert costs this row, not the transaction.
    try:
        with db.session.begin_nested():
            db.session.add(alert)
    except IntegrityError:
        return None
    _event("alert.raised", alert, now, {})
    if kind == "crisis":
        text_crisis(alert, now=now)
    return alert


def raise_alerts(wanted: list[dict[str, Any]], *, now: datetime) -> list[str | None]:
    """Raise many non-crisis alerts at once; return each one's new id, or None if not raised.

    Each dict takes `raise_alert`'s keyword arguments (`client` required). One INSERT … ON
    CONFLICT (dedup_key) DO NOTHING for the lot, so an alert already raised (by an earlier
    sweep or a concurrent one) costs that alert only, and one INSERT of their events.
    """
    rows: list[dict[str, Any]] = []
    for spec in wanted:
        if spec["kind"] == "crisis":
            raise ValueError("a crisis is raised one at a time (it is texted at once)")
        client: Client = spec["client"]
        rows.append(
            {
                "id": new_id("al"),
                "practice_id": client.practice_id,
                "client_id": client.id,
                "therapist_id": client.therapist_id,
                "kind": spec["kind"],
                "status": "open",
                "source_type": spec.get("source_type"),
                "source_id": spec.get("source_id"),
                "occurrence": spec.get("occurrence"),
                "dedup_key": dedup_key(spec["kind"], client.id, spec.get("source_type"),
                                       spec.get("source_id"), spec.get("occurrence")),
                "detail": spec.get("detail") or {},
                "created_at": now,
            }
        )  # fmt: skip
    unique: dict[str, dict[str, Any]] = {}
    for row in rows:
        unique.setdefault(row["dedup_key"], row)  # the same alert asked twice is raised once
    written = insert_new_rows(Alert.__table__, list(unique.values()), ["dedup_key"])
    append_events(
        [
            {
                "type": "alert.raised",
                "occurred_at": now,
                "practice_id": row["practice_id"],
                "client_id": row["client_id"],
                "subject_type": "alert",
                "subject_id": row["id"],
                "payload": {
                    key: row[key] for key in ("kind", "source_type", "source_id", "occurrence")
                },
            }  # fmt: skip
            for row in unique.values()
            if row["id"] in written
        ]
    )
    return [row["id"] if row["id"] in written else None for row in rows]


def acknowledge_alert(alert: Alert, *, therapist_id: str, now: datetime) -> Alert:
    """Mark an open alert acknowledged (a no-op for one already acknowledged or resolved)."""
    if _transition(alert, ("open",), status="acknowledged", acknowledged_at=now,
                   acknowledged_by=therapist_id):  # fmt: skip
        _event("alert.acknowledged", alert, now, {"by": therapist_id})
    return alert


def resolve_alert(alert: Alert, *, therapist_id: str, now: datetime) -> Alert:
    """Resolve an open or acknowledged alert (a no-op for one already resolved)."""
    if _transition(alert, ("open", "acknowledged"), status="resolved", resolved_at=now,
                   resolved_by=therapist_id):  # fmt: skip
        _event("alert.resolved", alert, now, {"by": therapist_id})
    return alert


def _transition(alert: Alert, from_statuses: tuple[str, ...], **values: Any) -> bool:
    """Move an alert with a conditional UPDATE so concurrent clicks act once."""
    db.session.flush()
    result = db.session.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.status.in_(from_statuses))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(alert)
    return result.rowcount == 1


def alerts_for_checkin(checkin: CheckIn, kinds: tuple[str, ...]) -> list[Alert]:
    """Return the unresolved alerts of the given kinds about one check-in's occurrence."""
    keys = [
        dedup_key(kind, checkin.client_id, checkin.source_type, checkin.source_id,
                  occurrence_label(checkin.occurrence))
        for kind in kinds
    ]  # fmt: skip
    return unresolved(_UNRESOLVED_BY_KEY, {"keys": keys})


def unresolved(ids: Any, params: dict[str, Any]) -> list[Alert]:
    """Return the alerts whose ids the Core statement `ids` selects with params.

    Most callers find none (a late reply to a check-in no alert was raised for): the ids
    are read as Core rows on the session's connection, and Alert objects loaded only when
    there are some. An ORM select cost a late reply's webhook ~1 ms where this costs a
    tenth of it. Pending changes are flushed first, as the ORM's autoflush would.
    """
    db.session.flush()
    found = db.session.connection().execute(ids, params).scalars().all()
    if not found:
        return []
    return list(db.session.scalars(select(Alert).where(Alert.id.in_(found)).order_by(Alert.id)))


_ALERTS = Alert.__table__.c
_UNRESOLVED_BY_KEY = select(_ALERTS.id).where(
    _ALERTS.dedup_key.in_(bindparam("keys", expanding=True)), _ALERTS.status != "resolved"
)


def resolve_for_checkin(checkin: CheckIn, *, by: str, now: datetime) -> int:
    """Resolve the missed/declined alerts of a check-in a therapist corrected or excused."""
    found = alerts_for_checkin(checkin, ("missed", "declined"))
    for alert in found:
        resolve_alert(alert, therapist_id=by, now=now)
    return len(found)


def lower_for_late_reply(checkin: CheckIn, answer: str, *, now: datetime) -> None:
    """Lower a miss alert after a late reply: a late yes resolves it, a late no is noted on it."""
    for alert in alerts_for_checkin(checkin, ("missed",)):
        alert.detail = {**(alert.detail or {}), "late_reply": answer, "late_reply_at": iso(now)}
        if answer == "confirmed":
            resolve_alert(alert, therapist_id="late_reply", now=now)


def dashboard_link() -> str:
    """Return the dashboard address put in staff texts (never a client's name)."""
    return f"{current_app.extensions['settings'].PUBLIC_BASE_URL}/"


def text_crisis(alert: Alert, *, now: datetime) -> None:
    """Text a crisis to the assigned therapist now; with no therapist phone, to on-call now."""
    therapist = db.session.get(Therapist, alert.therapist_id) if alert.therapist_id else None
    if therapist is None or not therapist.phone or not therapist.active:
        logger.warning("crisis alert %s: therapist has no phone; going to on-call", alert.id)
        escalate_crisis(alert, now=now)
        return
    enqueue_message(
        practice_id=alert.practice_id,
        to=therapist.phone,
        body=render("crisis_therapist", "en", link=dashboard_link()),
        purpose="alert",
        template="crisis_therapist",
        idempotency_key=f"crisis:{alert.id}:therapist",
        now=now,
        therapist_id=therapist.id,
    )
    alert.notified_at = now


def escalate_crisis(alert: Alert, *, now: datetime, minutes: int | None = None) -> bool:
    """Send an unacknowledged crisis to the practice's on-call phone, once; return if sent."""
    db.session.flush()
    claimed = db.session.execute(
        update(Alert)
        .where(Alert.id == alert.id, Alert.escalated_at.is_(None), Alert.status == "open")
        .values(escalated_at=now)
        .execution_options(synchronize_session=False)
    )
    db.session.refresh(alert)
    if claimed.rowcount != 1:
        return False
    practice = db.session.get(Practice, alert.practice_id)
    if practice is None or not practice.on_call_phone:
        logger.warning("crisis alert %s: the practice has no on-call phone", alert.id)
        _event("alert.escalated", alert, now, {"to": None})
        return False
    enqueue_message(
        practice_id=alert.practice_id,
        to=practice.on_call_phone,
        body=render("crisis_oncall", "en", link=dashboard_link(), minutes=minutes),
        purpose="alert",
        template="crisis_oncall",
        idempotency_key=f"crisis:{alert.id}:oncall",
        now=now,
    )
    logger.info("crisis alert %s escalated to on-call %s", alert.id, mask(practice.on_call_phone))
    _event("alert.escalated", alert, now, {"to": "on_call"})
    return True


def _event(kind: str, alert: Alert, now: datetime, extra: dict[str, Any]) -> None:
    append_event(
        kind,
        now=now,
        practice_id=alert.practice_id,
        client_id=alert.client_id,
        subject_type="alert",
        subject_id=alert.id,
        payload={
            "kind": alert.kind,
            "source_type": alert.source_type,
            "source_id": alert.source_id,
            "occurrence": alert.occurrence,
            **extra,
        },
    )
