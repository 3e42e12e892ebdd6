"""The client page's forms for meeting plans, commitments and one-off activities."""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, request
from pydantic import BaseModel

from service import activities, plans
from service.api.schemas.plans import ActivityIn, CommitmentIn, MeetingPlanIn
from service.db import db
from service.models import Activity, Client, Commitment, MeetingPlan
from service.serialize_plans import commitment_dict, plan_dict
from service.web.base import bp, client_or_404, me, now
from service.web.client_actions import CORE_ERRORS, done, failed
from service.web.forms import (
    ACTIVITY_SPEC,
    COMMITMENT_SPEC,
    PLAN_SPEC,
    FormInvalid,
    check,
    commitment_values,
    core_errors,
    form_body,
)

logger = logging.getLogger(__name__)


def _owned(model: type[Any], row_id: str, client: Client) -> Any:
    row = db.session.get(model, row_id) if len(row_id) <= 40 else None
    if row is None or row.client_id != client.id:
        abort(404)
    return row


def _plan_body(source: dict[str, Any]) -> dict[str, Any]:
    keys = MeetingPlanIn.model_fields.keys()
    return {k: v for k, v in source.items() if k in keys and v is not None}


def _commitment_body(source: dict[str, Any]) -> dict[str, Any]:
    keys = CommitmentIn.model_fields.keys()
    body = {k: v for k, v in source.items() if k in keys and v is not None}
    body["schedule"] = {k: v for k, v in source["schedule"].items() if v is not None}
    return body


def _save(
    client: Client,
    form: str,
    spec: dict[str, str],
    action: Any,
    body: dict[str, Any],
    schema: type[BaseModel],
) -> Any:
    try:
        return action(check(schema, body))
    except FormInvalid as exc:
        return failed(client, form, spec, exc.errors)
    except CORE_ERRORS as exc:
        return failed(client, form, spec, core_errors(exc))


@bp.route("/clients/<client_id>/plans", methods=["POST"])
def plan_new(client_id: str) -> Any:
    """Put a meeting on the client's plan (validated like POST …/meeting-plans)."""
    client = client_or_404(client_id)

    def create(parsed: Any) -> Any:
        plan = plans.create_plan(client, values=parsed.model_dump(), now=now())
        return done(
            client,
            "dashboard.plan.create",
            f"{plan.meeting.name} is on the plan.",
            f"plan-{plan.id}",
            subject_type="meeting_plan",
            subject_id=plan.id,
        )

    return _save(
        client, "plan_new", PLAN_SPEC, create, form_body(request.form, PLAN_SPEC), MeetingPlanIn
    )


@bp.route("/clients/<client_id>/plans/<plan_id>", methods=["POST"])
def plan_update(client_id: str, plan_id: str) -> Any:
    """Save a meeting plan's edit form."""
    client = client_or_404(client_id)
    plan = _owned(MeetingPlan, plan_id, client)
    return _update_plan(client, plan, form_body(request.form, PLAN_SPEC), "dashboard.plan.update")


@bp.route("/clients/<client_id>/plans/<plan_id>/pause", methods=["POST"])
def plan_pause(client_id: str, plan_id: str) -> Any:
    """Pause a meeting plan until a date, or resume it (an empty date)."""
    client = client_or_404(client_id)
    plan = _owned(MeetingPlan, plan_id, client)
    body = _plan_body(plan_dict(plan))
    body.pop("paused_until", None)
    if request.form.get("paused_until"):
        body["paused_until"] = request.form["paused_until"]
    return _update_plan(client, plan, body, "dashboard.plan.pause")


def _update_plan(client: Client, plan: MeetingPlan, body: dict[str, Any], action: str) -> Any:
    def update(parsed: Any) -> Any:
        changed = plans.update_plan(plan, client, values=parsed.model_dump(), now=now())
        message = "Meeting plan saved." if changed else "Nothing changed."
        return done(
            client,
            action,
            message,
            f"plan-{plan.id}",
            subject_type="meeting_plan",
            subject_id=plan.id,
            detail={"fields": changed},
        )

    return _save(client, f"plan:{plan.id}", PLAN_SPEC, update, body, MeetingPlanIn)


@bp.route("/clients/<client_id>/plans/<plan_id>/archive", methods=["POST"])
def plan_archive(client_id: str, plan_id: str) -> Any:
    """Take a meeting off the plan (its future check-ins are cancelled)."""
    client = client_or_404(client_id)
    plan = _owned(MeetingPlan, plan_id, client)
    plans.archive_plan(plan, client, now=now())
    return done(
        client,
        "dashboard.plan.archive",
        f"{plan.meeting.name} was removed from the plan.",
        "plan",
        subject_type="meeting_plan",
        subject_id=plan.id,
    )


@bp.route("/clients/<client_id>/commitments", methods=["POST"])
def commitment_new(client_id: str) -> Any:
    """Add a commitment (validated like POST …/commitments)."""
    client = client_or_404(client_id)

    def create(parsed: Any) -> Any:
        row = plans.create_commitment(client, values=commitment_values(parsed), now=now())
        return done(
            client,
            "dashboard.commitment.create",
            f"Commitment “{row.title}” added.",
            f"commitment-{row.id}",
            subject_type="commitment",
            subject_id=row.id,
        )

    body = form_body(request.form, COMMITMENT_SPEC)
    return _save(client, "commitment_new", COMMITMENT_SPEC, create, body, CommitmentIn)


@bp.route("/clients/<client_id>/commitments/<commitment_id>", methods=["POST"])
def commitment_update(client_id: str, commitment_id: str) -> Any:
    """Save a commitment's edit form."""
    client = client_or_404(client_id)
    row = _owned(Commitment, commitment_id, client)
    body = form_body(request.form, COMMITMENT_SPEC)
    return _update_commitment(client, row, body, "dashboard.commitment.update")


@bp.route("/clients/<client_id>/commitments/<commitment_id>/pause", methods=["POST"])
def commitment_pause(client_id: str, commitment_id: str) -> Any:
    """Pause a commitment until a date, or resume it (an empty date)."""
    client = client_or_404(client_id)
    row = _owned(Commitment, commitment_id, client)
    body = _commitment_body(commitment_dict(row, client))
    body.pop("paused_until", None)
    if request.form.get("paused_until"):
        body["paused_until"] = request.form["paused_until"]
    return _update_commitment(client, row, body, "dashboard.commitment.pause")


def _update_commitment(client: Client, row: Commitment, body: dict[str, Any], action: str) -> Any:
    def update(parsed: Any) -> Any:
        changed = plans.update_commitment(row, client, values=commitment_values(parsed), now=now())
        message = "Commitment saved." if changed else "Nothing changed."
        return done(
            client,
            action,
            message,
            f"commitment-{row.id}",
            subject_type="commitment",
            subject_id=row.id,
            detail={"fields": changed},
        )

    return _save(client, f"commitment:{row.id}", COMMITMENT_SPEC, update, body, CommitmentIn)


@bp.route("/clients/<client_id>/commitments/<commitment_id>/archive", methods=["POST"])
def commitment_archive(client_id: str, commitment_id: str) -> Any:
    """Remove a commitment (its future check-ins are cancelled)."""
    client = client_or_404(client_id)
    row = _owned(Commitment, commitment_id, client)
    plans.archive_commitment(row, client, now=now())
    return done(
        client,
        "dashboard.commitment.archive",
        f"Commitment “{row.title}” removed.",
        "plan",
        subject_type="commitment",
        subject_id=row.id,
    )


@bp.route("/clients/<client_id>/activities", methods=["POST"])
def activity_new(client_id: str) -> Any:
    """Schedule a therapy session or activity (validated like POST …/activities)."""
    client = client_or_404(client_id)

    def create(parsed: Any) -> Any:
        row = activities.create_activity(
            client, values=parsed.model_dump(), therapist_id=me().id, now=now()
        )
        return done(
            client,
            "dashboard.activity.create",
            f"“{row.title}” scheduled.",
            "activities",
            subject_type="activity",
            subject_id=row.id,
        )

    body = form_body(request.form, ACTIVITY_SPEC, zone=client.timezone)
    return _save(client, "activity_new", ACTIVITY_SPEC, create, body, ActivityIn)


@bp.route("/clients/<client_id>/activities/<activity_id>/cancel", methods=["POST"])
def activity_cancel(client_id: str, activity_id: str) -> Any:
    """Cancel a scheduled session or activity."""
    client = client_or_404(client_id)
    row = _owned(Activity, activity_id, client)
    activities.cancel_activity(row, now=now())
    return done(
        client,
        "dashboard.activity.cancel",
        f"“{row.title}” cancelled.",
        "activities",
        subject_type="activity",
        subject_id=row.id,
    )
