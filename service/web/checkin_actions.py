"""The client page's check-in correction: set an outcome as the therapist learned it was."""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, redirect, request, url_for

from service import checkins
from service.db import db
from service.models import CheckIn
from service.web.base import bp, client_or_404, me, now
from service.web.client_actions import done

logger = logging.getLogger(__name__)

NOTE_MAX = 2000


@bp.route("/clients/<client_id>/checkins/<checkin_id>/correct", methods=["POST"])
def checkin_correct(client_id: str, checkin_id: str) -> Any:
    """Correct a check-in to confirmed, declined or excused (with an optional note)."""
    client = client_or_404(client_id)
    checkin = db.session.get(CheckIn, checkin_id[:40])
    if checkin is None or checkin.client_id != client.id:
        abort(404)
    status = request.form.get("status", "")
    note = request.form.get("note", "").strip()[:NOTE_MAX] or None
    if status not in checkins.CORRECTIONS:
        flash(f"Choose one of: {', '.join(checkins.CORRECTIONS)}.", "error")
        return redirect(url_for("web.client_page", client_id=client.id, _anchor="history"))
    previous = checkin.status
    checkins.correct_checkin(
        checkin, status=status, note=note, actor=me().id, now=now(), channel="dashboard"
    )
    return done(client, "dashboard.checkin.correct", f"Check-in marked {status}.", "history",
                subject_type="checkin", subject_id=checkin.id,
                detail={"from": previous, "to": status})  # fmt: skip
