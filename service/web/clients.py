"""Clients: the caseload table (adherence, sobriety days, last response, alerts) and new clients."""

from __future__ import annotations

import logging
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from service.api.schemas.clients import ClientIn
from service.clients import create_client
from service.db import db
from service.errors import Conflict, Invalid
from service.models.vocab import (
    CLIENT_STATUSES,
    CONSENT_METHODS,
    LANGUAGES,
    RECOVERY_PATHS,
    STAGES_OF_CHANGE,
)
from service.schedule import ScheduleError
from service.web import charts, queries
from service.web.base import audit, bp, local_today, me, now
from service.web.forms import (
    NEW_CLIENT_SPEC,
    FormInvalid,
    check,
    client_values,
    core_errors,
    form_body,
    refill,
)

logger = logging.getLogger(__name__)

CHOICES = {
    "statuses": CLIENT_STATUSES,
    "paths": RECOVERY_PATHS,
    "stages": STAGES_OF_CHANGE,
    "languages": LANGUAGES,
    "methods": CONSENT_METHODS,
}
NEW_DEFAULTS = {
    "timezone": "America/New_York", "language": "en", "recovery_path": "aa",
    "quiet_hours.start": "21:00", "quiet_hours.end": "08:00", "discreet": True,
}  # fmt: skip


@bp.route("/clients")
def clients() -> str:
    """List the caseload with adherence over four weeks; search and filter."""
    q = request.args.get("q", "")[:100]
    status = request.args.get("status", "")
    path = request.args.get("path", "")
    scope = request.args.get("scope", "mine")
    status = status if status in CLIENT_STATUSES else ""
    path = path if path in RECOVERY_PATHS else ""
    found = queries.visible_clients(me(), scope=scope, q=q, status=status, path=path)
    days = {zone: local_today(zone) for zone in {c.timezone for c in found}}
    rows = queries.client_rows(found, now=now(), today=days)
    audit("dashboard.clients.view", detail={"count": len(rows), "scope": scope})
    db.session.commit()
    return render_template(
        "clients.html",
        rows=rows,
        bars={r.client.id: charts.ratio_bar_svg(r.adherence) for r in rows},
        filters={"q": q, "status": status, "path": path, "scope": scope},
        **CHOICES,
    )


@bp.route("/clients/new", methods=["GET", "POST"])
def client_new() -> Any:
    """Show and handle the new-client form (validated exactly like POST /api/v1/clients)."""
    if request.method == "GET":
        return render_template("client_new.html", values=NEW_DEFAULTS, errors={}, **CHOICES)
    body = form_body(request.form, NEW_CLIENT_SPEC)
    try:
        parsed = check(ClientIn, body)
        therapist = me()
        client = create_client(
            practice_id=therapist.practice_id,
            therapist=therapist,
            values=client_values(parsed),
            sms_consent=parsed.sms_consent.model_dump(),
            recorded_by=therapist.id,
            now=now(),
        )
    except FormInvalid as exc:
        return _again(exc.errors)
    except (Invalid, Conflict, ScheduleError) as exc:
        db.session.rollback()
        return _again(core_errors(exc))
    audit(
        "dashboard.client.create", client_id=client.id, subject_type="client", subject_id=client.id
    )
    db.session.commit()
    flash(f"{client.display_name} was added. Next: their support network and plan.", "success")
    return redirect(url_for("web.client_page", client_id=client.id))


def _again(errors: dict[str, list[str]]) -> tuple[str, int]:
    values = refill(request.form, NEW_CLIENT_SPEC)
    return render_template("client_new.html", values=values, errors=errors, **CHOICES), 422
