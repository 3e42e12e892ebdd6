"""/api/v1/clients/{id}/meeting-plans, …/commitments and …/activities: the client's plan."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, url_for
from sqlalchemy import select

from service import activities, plans
from service.api.common import current_therapist, json_body, merge_patch, now, paginate, validate
from service.api.resources import (
    audit,
    client_or_404,
    commit,
    created,
    get_owned,
    register_core_errors,
)
from service.api.schemas.plans import (
    ActivityIn,
    ActivityOut,
    CommitmentIn,
    CommitmentOut,
    MeetingPlanIn,
    MeetingPlanOut,
    PlanListQuery,
)
from service.api.spec import PageQuery, operation, page_of
from service.models import Activity, Client, Commitment, MeetingPlan
from service.serialize import day, iso
from service.serialize_plans import activity_dict, commitment_dict, plan_dict

bp = Blueprint("plans", __name__, url_prefix="/api/v1")
register_core_errors(bp)
PLANS = "/clients/<client_id>/meeting-plans"
COMMITMENTS = "/clients/<client_id>/commitments"
ACTIVITIES = "/clients/<client_id>/activities"


def _compact(doc: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in doc.items() if value is not None}


def _audit(action: str, kind: str, row: Any, client: Client, **detail: Any) -> None:
    audit(action, subject_type=kind, subject_id=row.id, client_id=client.id, detail=detail or None)


def _list(client: Client, model: Any, kind: str, serialize: Any, *, archived: bool | None) -> Any:
    stmt = select(model).where(model.client_id == client.id)
    if archived is False:
        stmt = stmt.where(model.archived_at.is_(None))
    page = paginate(stmt, model.id, serialize)
    audit(f"{kind}.list", subject_type=kind, client_id=client.id,
          detail={"ids": [item["id"] for item in page["items"]]})  # fmt: skip
    commit()
    return jsonify(page)


# Meeting plans ---------------------------------------------------------------------------


def _plan_document(plan: MeetingPlan) -> dict[str, Any]:
    return _compact(
        {
            "meeting_id": plan.meeting_id,
            "verifier": plan.verifier_contact_id or "self",
            "remind_minutes_before": plan.remind_minutes_before,
            "confirm_window_hours": plan.confirm_window_hours,
            "escalate_after_misses": plan.escalate_after_misses,
            "starts_on": day(plan.starts_on),
            "paused_until": day(plan.paused_until),
        }
    )


@operation(bp, PLANS, "GET", summary="List a client's meeting plans", query=PlanListQuery,
           response=page_of(MeetingPlanOut), tags=("meeting plans",))  # fmt: skip
def list_plans(client_id: str, query: PlanListQuery) -> Any:
    """The meetings on the client's plan; archived ones with include_archived=true."""
    client = client_or_404(client_id)
    archived = None if query.include_archived else False
    return _list(client, MeetingPlan, "meeting_plan", plan_dict, archived=archived)


@operation(bp, PLANS, "POST", summary="Put a meeting on a client's plan", request=MeetingPlanIn,
           response=MeetingPlanOut, status=201, tags=("meeting plans",))  # fmt: skip
def create_plan(client_id: str) -> Any:
    """Plan a directory meeting; the verifier confirms attendance after it ends."""
    client = client_or_404(client_id)
    data = validate(MeetingPlanIn, json_body())
    plan = plans.create_plan(client, values=data.model_dump(), now=now())
    _audit("meeting_plan.create", "meeting_plan", plan, client)
    location = url_for("plans.get_plan", client_id=client.id, plan_id=plan.id)
    return created(plan_dict(plan), location)


@operation(bp, PLANS + "/<plan_id>", "GET", summary="Get a meeting plan",
           response=MeetingPlanOut, tags=("meeting plans",))  # fmt: skip
def get_plan(client_id: str, plan_id: str) -> Any:
    """One meeting plan."""
    client = client_or_404(client_id)
    plan = get_owned(MeetingPlan, plan_id, client, "meeting plan")
    _audit("meeting_plan.read", "meeting_plan", plan, client)
    commit()
    return jsonify(plan_dict(plan))


@operation(bp, PLANS + "/<plan_id>", "PATCH", summary="Change a meeting plan (merge patch)",
           request=MeetingPlanIn, response=MeetingPlanOut, tags=("meeting plans",))  # fmt: skip
def patch_plan(client_id: str, plan_id: str) -> Any:
    """Merge-patch a meeting plan (pause it with paused_until); its check-ins are re-planned."""
    client = client_or_404(client_id)
    plan = get_owned(MeetingPlan, plan_id, client, "meeting plan")
    data = validate(MeetingPlanIn, merge_patch(_plan_document(plan), json_body()))
    changed = plans.update_plan(plan, client, values=data.model_dump(), now=now())
    _audit("meeting_plan.update", "meeting_plan", plan, client, fields=changed)
    commit()
    return jsonify(plan_dict(plan))


@operation(bp, PLANS + "/<plan_id>", "DELETE", summary="Archive a meeting plan",
           response=MeetingPlanOut, tags=("meeting plans",))  # fmt: skip
def archive_plan(client_id: str, plan_id: str) -> Any:
    """Archive the plan: no more reminders or prompts; its history stays."""
    client = client_or_404(client_id)
    plan = get_owned(MeetingPlan, plan_id, client, "meeting plan")
    plans.archive_plan(plan, client, now=now())
    _audit("meeting_plan.archive", "meeting_plan", plan, client)
    commit()
    return jsonify(plan_dict(plan))


# Commitments -----------------------------------------------------------------------------


def _commitment_values(data: CommitmentIn) -> dict[str, Any]:
    values = data.model_dump(exclude={"schedule"})
    values["rrule"] = data.schedule.rrule
    values["time"] = data.schedule.time
    return values


def _commitment_document(commitment: Commitment) -> dict[str, Any]:
    return _compact(
        {
            "kind": commitment.kind,
            "title": commitment.title,
            "schedule": _compact({"rrule": commitment.rrule, "time": commitment.time}),
            "target": commitment.target,
            "verifier": commitment.verifier_contact_id or "self",
            "grace_minutes": commitment.grace_minutes,
            "escalate_after_misses": commitment.escalate_after_misses,
            "notify_sponsor": commitment.notify_sponsor,
            "starts_on": day(commitment.starts_on),
            "paused_until": day(commitment.paused_until),
            "active": commitment.active,
        }
    )


@operation(bp, COMMITMENTS, "GET", summary="List a client's commitments", query=PlanListQuery,
           response=page_of(CommitmentOut), tags=("commitments",))  # fmt: skip
def list_commitments(client_id: str, query: PlanListQuery) -> Any:
    """The client's commitments; archived ones with include_archived=true."""
    client = client_or_404(client_id)
    archived = None if query.include_archived else False
    return _list(client, Commitment, "commitment", lambda c: commitment_dict(c, client),
                 archived=archived)  # fmt: skip


@operation(bp, COMMITMENTS, "POST", summary="Add a commitment", request=CommitmentIn,
           response=CommitmentOut, status=201, tags=("commitments",))  # fmt: skip
def create_commitment(client_id: str) -> Any:
    """Add a commitment with a schedule in the client's zone (meeting quotas: weekly target)."""
    client = client_or_404(client_id)
    data = validate(CommitmentIn, json_body())
    commitment = plans.create_commitment(client, values=_commitment_values(data), now=now())
    _audit("commitment.create", "commitment", commitment, client)
    location = url_for("plans.get_commitment", client_id=client.id, commitment_id=commitment.id)
    return created(commitment_dict(commitment, client), location)


@operation(bp, COMMITMENTS + "/<commitment_id>", "GET", summary="Get a commitment",
           response=CommitmentOut, tags=("commitments",))  # fmt: skip
def get_commitment(client_id: str, commitment_id: str) -> Any:
    """One commitment."""
    client = client_or_404(client_id)
    commitment = get_owned(Commitment, commitment_id, client, "commitment")
    _audit("commitment.read", "commitment", commitment, client)
    commit()
    return jsonify(commitment_dict(commitment, client))


@operation(bp, COMMITMENTS + "/<commitment_id>", "PATCH",
           summary="Change a commitment (merge patch)", request=CommitmentIn,
           response=CommitmentOut, tags=("commitments",))  # fmt: skip
def patch_commitment(client_id: str, commitment_id: str) -> Any:
    """Merge-patch a commitment (pause, deactivate, reschedule); check-ins are re-planned."""
    client = client_or_404(client_id)
    commitment = get_owned(Commitment, commitment_id, client, "commitment")
    data = validate(CommitmentIn, merge_patch(_commitment_document(commitment), json_body()))
    changed = plans.update_commitment(
        commitment, client, values=_commitment_values(data), now=now()
    )
    _audit("commitment.update", "commitment", commitment, client, fields=changed)
    commit()
    return jsonify(commitment_dict(commitment, client))


@operation(bp, COMMITMENTS + "/<commitment_id>", "DELETE", summary="Archive a commitment",
           response=CommitmentOut, tags=("commitments",))  # fmt: skip
def archive_commitment(client_id: str, commitment_id: str) -> Any:
    """Archive the commitment: no more check-ins; its history stays."""
    client = client_or_404(client_id)
    commitment = get_owned(Commitment, commitment_id, client, "commitment")
    plans.archive_commitment(commitment, client, now=now())
    _audit("commitment.archive", "commitment", commitment, client)
    commit()
    return jsonify(commitment_dict(commitment, client))


# Activities ------------------------------------------------------------------------------


def _activity_document(activity: Activity) -> dict[str, Any]:
    return _compact({key: getattr(activity, key) for key in activities.WRITABLE} | {
        "starts_at": iso(activity.starts_at)
    })  # fmt: skip


@operation(bp, ACTIVITIES, "GET", summary="List a client's activities and sessions",
           query=PageQuery, response=page_of(ActivityOut), tags=("activities",))  # fmt: skip
def list_activities(client_id: str, query: PageQuery) -> Any:
    """One-off activities and therapy sessions, oldest first (cancelled ones included)."""
    client = client_or_404(client_id)
    return _list(client, Activity, "activity", lambda a: activity_dict(a, client), archived=None)


@operation(bp, ACTIVITIES, "POST", summary="Add an activity or therapy session",
           request=ActivityIn, response=ActivityOut, status=201, tags=("activities",))  # fmt: skip
def create_activity(client_id: str) -> Any:
    """Add a one-off activity or therapy session; `starts_at` is an instant with Z or an offset."""
    client = client_or_404(client_id)
    data = validate(ActivityIn, json_body())
    therapist_id = current_therapist().id if data.kind == "therapy_session" else None
    activity = activities.create_activity(
        client, values=data.model_dump(), therapist_id=therapist_id, now=now()
    )
    _audit("activity.create", "activity", activity, client)
    location = url_for("plans.get_activity", client_id=client.id, activity_id=activity.id)
    return created(activity_dict(activity, client), location)


@operation(bp, ACTIVITIES + "/<activity_id>", "GET", summary="Get an activity",
           response=ActivityOut, tags=("activities",))  # fmt: skip
def get_activity(client_id: str, activity_id: str) -> Any:
    """One activity or therapy session."""
    client = client_or_404(client_id)
    activity = get_owned(Activity, activity_id, client, "activity")
    _audit("activity.read", "activity", activity, client)
    commit()
    return jsonify(activity_dict(activity, client))


@operation(bp, ACTIVITIES + "/<activity_id>", "PATCH", summary="Change an activity (merge patch)",
           request=ActivityIn, response=ActivityOut, tags=("activities",))  # fmt: skip
def patch_activity(client_id: str, activity_id: str) -> Any:
    """Merge-patch an activity (move it, or cancel it with cancelled: true)."""
    client = client_or_404(client_id)
    activity = get_owned(Activity, activity_id, client, "activity")
    data = validate(ActivityIn, merge_patch(_activity_document(activity), json_body()))
    changed = activities.update_activity(activity, values=data.model_dump(), now=now())
    _audit("activity.update", "activity", activity, client, fields=changed)
    commit()
    return jsonify(activity_dict(activity, client))


@operation(bp, ACTIVITIES + "/<activity_id>", "DELETE", summary="Cancel an activity",
           response=ActivityOut, tags=("activities",))  # fmt: skip
def cancel_activity(client_id: str, activity_id: str) -> Any:
    """Cancel: the activity stays on record and calendars show it cancelled."""
    client = client_or_404(client_id)
    activity = get_owned(Activity, activity_id, client, "activity")
    activities.cancel_activity(activity, now=now())
    _audit("activity.cancel", "activity", activity, client)
    commit()
    return jsonify(activity_dict(activity, client))
