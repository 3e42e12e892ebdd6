"""Today: the alert inbox (crisis first) and today's check-ins across the caseload."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select

from service import alerts
from service.db import db
from service.errors import Conflict
from service.models import Client, Commitment, Meeting, MeetingPlan, SupportContact
from service.web import queries
from service.web.base import alert_or_404, audit, bp, local_today, me, now

logger = logging.getLogger(__name__)


def _when(label: str | None) -> str:
    if not label:
        return ""
    try:
        return datetime.fromisoformat(label).strftime(" (%a %d %b, %H:%M)")
    except ValueError:
        return f" ({label})"


def alert_summary(alert: Any, names: dict[str, str]) -> str:
    """Return one readable sentence about an alert."""
    detail = alert.detail or {}
    what = names.get(alert.source_id or "") or "a check-in"
    when = _when(alert.occurrence)
    run = detail.get("consecutive") or 0
    texts = {
        "missed": f"No confirmation for {what}{when}."
        + (f" {run} misses in a row." if run > 1 else ""),
        "declined": f"Reported not done: {what}{when}.",
        "quota_unmet": f"{detail.get('count', 0)} of {detail.get('target', '?')} meetings "
        f"in the week of {detail.get('week_start', alert.occurrence or '?')}.",
        "crisis": "Crisis reply received. Contact the client now and follow the safety plan.",
        "lapse": f"Lapse reported{when}.",
        "delivery_failed": "A text could not be delivered; check the phone number.",
        "opted_out": "A phone number replied STOP; texts to it have stopped.",
        "meeting_inactive": f"A planned meeting is no longer listed: {what}.",
    }
    text = texts.get(alert.kind, alert.kind)
    if detail.get("late_reply"):
        text += f" Late reply: {detail['late_reply']}."
    return text


def _source_names(ids: set[str]) -> dict[str, str]:
    names: dict[str, str] = {}
    if not ids:
        return names
    for plan_id, meeting_name in db.session.execute(
        select(MeetingPlan.id, Meeting.name)
        .join(Meeting, Meeting.id == MeetingPlan.meeting_id)
        .where(MeetingPlan.id.in_(ids))
    ):
        names[plan_id] = meeting_name
    for cid, title in db.session.execute(
        select(Commitment.id, Commitment.title).where(Commitment.id.in_(ids))
    ):
        names[cid] = title
    for mid, name in db.session.execute(
        select(Meeting.id, Meeting.name).where(Meeting.id.in_(ids))
    ):
        names[mid] = name
    return names


@bp.route("/")
def today() -> str:
    """Show the alert inbox and today's check-ins."""
    therapist = me()
    alerts = queries.inbox(therapist)
    clients = queries.visible_clients(therapist, status="")
    clients = [c for c in clients if c.status != "discharged"]
    by_id = {c.id: c for c in clients}
    zones = {c.timezone for c in clients}
    days = {zone: local_today(zone) for zone in zones}
    checkins = queries.todays_checkins(clients, days)
    alert_clients = {
        c.id: c
        for c in db.session.scalars(
            select(Client).where(Client.id.in_({a.client_id for a in alerts if a.client_id}))
        )
    }
    names = _source_names(
        {a.source_id for a in alerts if a.source_id} | {c.source_id for c in checkins}
    )
    verifiers = {
        v.id: v.display_name
        for v in db.session.scalars(
            select(SupportContact).where(
                SupportContact.id.in_(
                    {c.verifier_contact_id for c in checkins if c.verifier_contact_id}
                )
            )
        )
    }
    audit("dashboard.today.view", detail={"alerts": len(alerts), "checkins": len(checkins)})
    db.session.commit()
    return render_template(
        "today.html",
        alerts=alerts,
        alert_clients=alert_clients,
        summaries={a.id: alert_summary(a, names) for a in alerts},
        checkins=checkins,
        clients=by_id,
        names=names,
        verifiers=verifiers,
    )


@bp.route("/alerts/<alert_id>/acknowledge", methods=["POST"])
def alert_acknowledge(alert_id: str) -> Any:
    """Acknowledge an alert: someone is on it."""
    alert = alert_or_404(alert_id)
    try:
        alerts.acknowledge_alert(alert, therapist_id=me().id, now=now())
    except Conflict as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(_back())
    audit(
        "dashboard.alert.acknowledge",
        client_id=alert.client_id,
        subject_type="alert",
        subject_id=alert.id,
    )
    db.session.commit()
    flash("Alert acknowledged.", "success")
    return redirect(_back())


@bp.route("/alerts/<alert_id>/resolve", methods=["POST"])
def alert_resolve(alert_id: str) -> Any:
    """Resolve an alert: it is dealt with."""
    alert = alert_or_404(alert_id)
    try:
        alerts.resolve_alert(alert, therapist_id=me().id, now=now())
    except Conflict as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(_back())
    audit(
        "dashboard.alert.resolve",
        client_id=alert.client_id,
        subject_type="alert",
        subject_id=alert.id,
    )
    db.session.commit()
    flash("Alert resolved.", "success")
    return redirect(_back())


def _back() -> str:
    target = request.form.get("back", "")
    if target.startswith("/") and not target.startswith("//"):
        return target
    return url_for("web.today")
