"""/api/v1 check-ins: a client's check-in history and the therapist's corrections."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from flask import Blueprint, jsonify
from sqlalchemy import select

from service import checkins as core
from service.api.common import current_therapist, json_body, now, paginate, validate
from service.api.problems import not_found
from service.api.resources import audit, client_or_404, commit, practice_id, register_core_errors
from service.api.schemas.accountability import CheckInCorrection, CheckInOut, CheckInQuery
from service.api.serialize_engine import checkin_dict
from service.api.spec import operation, page_of
from service.db import db
from service.models import CheckIn

bp = Blueprint("checkins", __name__, url_prefix="/api/v1")
register_core_errors(bp)
TAGS = ("checkins",)


@operation(bp, "/clients/<client_id>/checkins", "GET", summary="List a client's check-ins",
           query=CheckInQuery, response=page_of(CheckInOut), tags=TAGS)  # fmt: skip
def list_checkins(client_id: str, query: CheckInQuery) -> Any:
    """The client's check-ins; filter by status and by local date (`from`, `to`, inclusive)."""
    client = client_or_404(client_id)
    stmt = select(CheckIn).where(CheckIn.client_id == client.id)
    if query.status is not None:
        stmt = stmt.where(CheckIn.status == query.status)
    if query.from_ is not None:
        stmt = stmt.where(CheckIn.occurrence >= datetime.combine(query.from_, time()))
    if query.to is not None:
        stmt = stmt.where(
            CheckIn.occurrence < datetime.combine(query.to + timedelta(days=1), time())
        )
    page = paginate(stmt, CheckIn.id, checkin_dict)
    audit("checkin.list", subject_type="checkin", client_id=client.id,
          detail={"count": len(page["items"])})  # fmt: skip
    commit()
    return jsonify(page)


@operation(bp, "/checkins/<checkin_id>", "PATCH", summary="Correct a check-in",
           request=CheckInCorrection, response=CheckInOut, tags=TAGS)  # fmt: skip
def correct_checkin(checkin_id: str) -> Any:
    """Set the outcome (confirmed, declined or excused) with a note; the change is audited."""
    row = db.session.get(CheckIn, checkin_id) if len(checkin_id) <= 40 else None
    if row is None or row.practice_id != practice_id():
        raise not_found("check-in")
    body = validate(CheckInCorrection, json_body())
    previous = row.status
    core.correct_checkin(
        row, status=body.status, note=body.note, actor=current_therapist().id, now=now()
    )
    audit("checkin.correct", subject_type="checkin", subject_id=row.id, client_id=row.client_id,
          detail={"from": previous, "to": row.status})  # fmt: skip
    commit()
    return jsonify(checkin_dict(row))
