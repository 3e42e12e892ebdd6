"""Plain-dict views of meetings, meeting plans, commitments and activities, with DST warnings."""

from __future__ import annotations

from typing import Any

from service.models import Activity, Client, Commitment, Meeting, MeetingPlan
from service.schedule import ScheduleError, dst_warning, get_zone, parse_local_time
from service.serialize import day, iso


def time_warnings(local_time: str | None, zone: str) -> list[str]:
    """Return the DST warning for a recurring local time in `zone`, if any."""
    if not local_time:
        return []
    try:
        warning = dst_warning(parse_local_time(local_time), zone)
    except ScheduleError:
        return []
    return [warning] if warning else []


def meeting_dict(meeting: Meeting) -> dict[str, Any]:
    """Return a directory meeting as the API shows it."""
    return {
        "id": meeting.id,
        "name": meeting.name,
        "day": meeting.day,
        "time": meeting.time,
        "end_time": meeting.end_time,
        "timezone": meeting.timezone,
        "fellowship": meeting.fellowship,
        "location": meeting.location,
        "address": meeting.address,
        "conference_url": meeting.conference_url,
        "conference_phone": meeting.conference_phone,
        "types": list(meeting.types or []),
        "notes": meeting.notes,
        "attendance": meeting.attendance,
        "active": meeting.active,
        "source": "manual" if meeting.feed_id is None else "import",
        "feed_id": meeting.feed_id,
        "warnings": time_warnings(meeting.time, meeting.timezone),
        "created_at": iso(meeting.created_at),
        "updated_at": iso(meeting.updated_at),
    }


def meeting_summary(meeting: Meeting) -> dict[str, Any]:
    """Return the part of a meeting a plan shows."""
    return {
        "id": meeting.id,
        "name": meeting.name,
        "day": meeting.day,
        "time": meeting.time,
        "end_time": meeting.end_time,
        "timezone": meeting.timezone,
        "attendance": meeting.attendance,
        "active": meeting.active,
    }


def plan_dict(plan: MeetingPlan) -> dict[str, Any]:
    """Return a meeting plan as the API shows it."""
    meeting = plan.meeting
    warnings = time_warnings(meeting.time, meeting.timezone)
    if not meeting.active:
        warnings.append("This meeting is no longer listed in the directory.")
    return {
        "id": plan.id,
        "client_id": plan.client_id,
        "meeting_id": plan.meeting_id,
        "meeting": meeting_summary(meeting),
        "verifier": plan.verifier_contact_id or "self",
        "remind_minutes_before": plan.remind_minutes_before,
        "confirm_window_hours": plan.confirm_window_hours,
        "escalate_after_misses": plan.escalate_after_misses,
        "starts_on": day(plan.starts_on),
        "paused_until": day(plan.paused_until),
        "archived_at": iso(plan.archived_at),
        "warnings": warnings,
        "created_at": iso(plan.created_at),
        "updated_at": iso(plan.updated_at),
    }


def commitment_dict(commitment: Commitment, client: Client) -> dict[str, Any]:
    """Return a commitment as the API shows it; its time is in the client's zone."""
    return {
        "id": commitment.id,
        "client_id": commitment.client_id,
        "kind": commitment.kind,
        "title": commitment.title,
        "schedule": {"rrule": commitment.rrule, "time": commitment.time},
        "target": commitment.target,
        "verifier": commitment.verifier_contact_id or "self",
        "grace_minutes": commitment.grace_minutes,
        "escalate_after_misses": commitment.escalate_after_misses,
        "notify_sponsor": commitment.notify_sponsor,
        "starts_on": day(commitment.starts_on),
        "paused_until": day(commitment.paused_until),
        "active": commitment.active,
        "archived_at": iso(commitment.archived_at),
        "warnings": time_warnings(commitment.time, client.timezone),
        "created_at": iso(commitment.created_at),
        "updated_at": iso(commitment.updated_at),
    }


def activity_dict(activity: Activity, client: Client) -> dict[str, Any]:
    """Return an activity; `local_start` is its start in the client's zone."""
    local = activity.starts_at.astimezone(get_zone(client.timezone))
    return {
        "id": activity.id,
        "client_id": activity.client_id,
        "therapist_id": activity.therapist_id,
        "kind": activity.kind,
        "title": activity.title,
        "starts_at": iso(activity.starts_at),
        "local_start": local.strftime("%Y-%m-%dT%H:%M"),
        "duration_minutes": activity.duration_minutes,
        "location": activity.location,
        "notes": activity.notes,
        "cancelled": activity.cancelled,
        "created_at": iso(activity.created_at),
        "updated_at": iso(activity.updated_at),
    }
