"""/api/v1/alerts: the practice's alert inbox; acknowledge and resolve."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from sqlalchemy import select

from service import alerts as core
from service.api.common import current_therapist, now, paginate
from service.api.problems import not_found
from service.api.resources import audit, client_or_404, commit, practice_id, register_core_errors
from service.api.schemas.accountability import AlertOut, AlertQuery
from service.api.serialize_engine import alert_dict
from service.api.spec import operation, page_of
from service.db import db
from service.models import Alert

bp = Blueprint("alerts", __name__, url_prefix="/api/v1")
register_core_errors(bp)
TAGS = ("alerts",)


@operation(bp, "/alerts", "GET", summary="List alerts", query=AlertQuery,
           response=page_of(AlertOut), tags=TAGS)  # fmt: skip
def list_alerts(query: AlertQuery) -> Any:
    """The practice's alerts, oldest first; filter by status, kind or client."""
    stmt = select(Alert).where(Alert.practice_id == practice_id())
    client_id = None
    if query.client_id is not None:
        client_id = client_or_404(query.client_id).id
        stmt = stmt.where(Alert.client_id == client_id)
    if query.status is not None:
        stmt = stmt.where(Alert.status == query.status)
    if query.kind is not None:
        stmt = stmt.where(Alert.kind == query.kind)
    page = paginate(stmt, Alert.id, alert_dict)
    audit("alert.list", subject_type="alert", client_id=client_id,
          detail={"ids": [item["id"] for item in page["items"]]})  # fmt: skip
    commit()
    return jsonify(page)


def _alert(alert_id: str) -> Alert:
    alert = db.session.get(Alert, alert_id) if len(alert_id) <= 40 else None
    if alert is None or alert.practice_id != practice_id():
        raise not_found("alert")
    return alert


@operation(bp, "/alerts/<alert_id>/acknowledge", "POST", summary="Acknowledge an alert",
           response=AlertOut, tags=TAGS)  # fmt: skip
def acknowledge(alert_id: str) -> Any:
    """Mark an open alert acknowledged (this also stops a crisis going to on-call)."""
    alert = _alert(alert_id)
    core.acknowledge_alert(alert, therapist_id=current_therapist().id, now=now())
    audit("alert.acknowledge", subject_type="alert", subject_id=alert.id,
          client_id=alert.client_id)  # fmt: skip
    commit()
    return jsonify(alert_dict(alert))


@operation(bp, "/alerts/<alert_id>/resolve", "POST", summary="Resolve an alert",
           response=AlertOut, tags=TAGS)  # fmt: skip
def resolve(alert_id: str) -> Any:
    """Resolve an open or acknowledged alert."""
    alert = _alert(alert_id)
    core.resolve_alert(alert, therapist_id=current_therapist().id, now=now())
    audit("alert.resolve", subject_type="alert", subject_id=alert.id, client_id=alert.client_id)
    commit()
    return jsonify(alert_dict(alert))
