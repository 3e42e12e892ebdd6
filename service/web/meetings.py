"""Meetings: the practice's directory with filters, add-to-plan, and the feed import form."""

from __future__ import annotations

import logging
from typing import Any

from flask import flash, redirect, render_template, request, url_for
from pydantic import ValidationError
from sqlalchemy import select

from service import plans
from service.api.common import validation_errors
from service.api.schemas.meetings import MeetingQuery
from service.api.schemas.plans import MeetingPlanIn
from service.db import db
from service.meetings import search_meetings
from service.models import Client, Meeting, MeetingPlan
from service.models.vocab import ATTENDANCE, RECOVERY_PATHS
from service.web import importer
from service.web.base import audit, bp, client_or_404, me, now
from service.web.client_actions import CORE_ERRORS
from service.web.forms import FormInvalid, check, core_errors

logger = logging.getLogger(__name__)

PAGE = 200
FILTERS = ("day", "after", "before", "type", "attendance", "fellowship", "q")


def _filters() -> tuple[dict[str, Any], dict[str, list[str]], dict[str, str]]:
    raw = {k: request.args.get(k, "").strip() for k in FILTERS}
    given = {k: v for k, v in raw.items() if v}
    try:
        query = MeetingQuery.model_validate(given)
    except ValidationError as exc:
        return {"active": True}, validation_errors(exc), raw
    filters = {
        "day": query.day, "starts_after": query.after, "before": query.before,
        "attendance": query.attendance, "fellowship": query.fellowship, "q": query.q,
        "type": query.type, "active": None if query.attendance == "inactive" else True,
    }  # fmt: skip
    return filters, {}, raw


@bp.route("/meetings")
def meetings() -> str:
    """Search the meeting directory."""
    therapist = me()
    filters, errors, raw = _filters()
    stmt = search_meetings(therapist.practice_id, filters)
    found = list(
        db.session.scalars(stmt.order_by(Meeting.day, Meeting.time, Meeting.name).limit(PAGE + 1))
    )
    clients = list(db.session.scalars(
        select(Client).where(
            Client.practice_id == therapist.practice_id, Client.therapist_id == therapist.id,
            Client.status != "discharged",
        ).order_by(Client.display_name)
    ))  # fmt: skip
    on_plan: dict[str, int] = {}
    if found:
        for meeting_id in db.session.scalars(
            select(MeetingPlan.meeting_id).where(
                MeetingPlan.meeting_id.in_([m.id for m in found]), MeetingPlan.archived_at.is_(None)
            )
        ):
            on_plan[meeting_id] = on_plan.get(meeting_id, 0) + 1
    audit("dashboard.meetings.view", detail={"count": min(len(found), PAGE)})
    db.session.commit()
    return render_template(
        "meetings.html",
        meetings=found[:PAGE],
        more=len(found) > PAGE,
        clients=clients,
        on_plan=on_plan,
        raw=raw,
        errors=errors,
        attendance=ATTENDANCE,
        fellowships=RECOVERY_PATHS,
        report=None,
        counts=None,
        skipped=[],
        import_errors={},
        import_values={"timezone": "America/New_York", "fellowship": "aa"},
        import_available=importer.available(),
    )


@bp.route("/meetings/<meeting_id>/plan", methods=["POST"])
def meeting_add_to_plan(meeting_id: str) -> Any:
    """Put a directory meeting on a chosen client's plan (the client's default settings)."""
    client = client_or_404(request.form.get("client_id", "")[:40])
    try:
        parsed = check(MeetingPlanIn, {"meeting_id": meeting_id[:40], "verifier": "self"})
        plan = plans.create_plan(client, values=parsed.model_dump(), now=now())
    except FormInvalid as exc:
        flash("; ".join(m for ms in exc.errors.values() for m in ms), "error")
        return redirect(url_for("web.meetings"))
    except CORE_ERRORS as exc:
        db.session.rollback()
        flash("; ".join(m for ms in core_errors(exc).values() for m in ms), "error")
        return redirect(url_for("web.meetings"))
    audit(
        "dashboard.plan.create",
        client_id=client.id,
        subject_type="meeting_plan",
        subject_id=plan.id,
    )
    db.session.commit()
    flash(
        f"{plan.meeting.name} is on {client.display_name}'s plan (self-reported; "
        "choose a sponsor to confirm on their page).",
        "success",
    )
    return redirect(url_for("web.client_page", client_id=client.id, _anchor=f"plan-{plan.id}"))


@bp.route("/meetings/import", methods=["POST"])
def meeting_import() -> Any:
    """Import a meeting feed from a URL or an uploaded file and show the report."""
    values = {k: request.form.get(k, "").strip() for k in ("url", "timezone", "fellowship")}
    upload = request.files.get("file")
    errors, report = importer.run(
        practice_id=me().practice_id, url=values["url"], upload=upload,
        timezone=values["timezone"], fellowship=values["fellowship"], now=now(),
    )  # fmt: skip
    if errors:
        db.session.rollback()
    else:
        audit("dashboard.meetings.import", detail=importer.summary(report))
        db.session.commit()
    filters, filter_errors, raw = _filters()
    found = list(db.session.scalars(
        search_meetings(me().practice_id, filters).order_by(Meeting.day, Meeting.time).limit(PAGE)
    ))  # fmt: skip
    return render_template(
        "meetings.html",
        meetings=found,
        more=False,
        clients=[],
        on_plan={},
        raw=raw,
        errors=filter_errors,
        attendance=ATTENDANCE,
        fellowships=RECOVERY_PATHS,
        report=report,
        counts=importer.summary(report) if report is not None else None,
        skipped=importer.skipped(report) if report is not None else [],
        import_errors=errors,
        import_values=values,
        import_available=importer.available(),
    ), (422 if errors else 200)
