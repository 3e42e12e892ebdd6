"""Turn submitted forms into the API's request bodies and validate them with the API's schemas."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ValidationError
from werkzeug.datastructures import MultiDict

from service.api.common import validation_errors
from service.api.resources import validation_context
from service.errors import Conflict, Invalid
from service.schedule import ScheduleError

M = TypeVar("M", bound=BaseModel)
Errors = dict[str, list[str]]
_INT = re.compile(r"^[+-]?[0-9]{1,9}$")

# How each form control becomes JSON: "text" (blank → absent), "int", "bool" (checkbox),
# "list" (repeated checkboxes), "local_instant" (datetime-local in the client's zone).
Spec = dict[str, str]


class FormInvalid(Exception):
    """The form did not validate; `errors` maps field paths to messages."""

    def __init__(self, errors: Errors) -> None:
        super().__init__("invalid form")
        self.errors = errors


def _set(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        data = data.setdefault(part, {})
    data[leaf] = value


def _local_instant(raw: str, zone: str) -> str:
    # datetime-local has no zone; the therapist means the client's wall clock.
    try:
        naive = datetime.fromisoformat(raw)
    except ValueError:
        return raw
    if naive.tzinfo is not None:
        return raw
    return naive.replace(tzinfo=ZoneInfo(zone)).isoformat()


def form_body(form: MultiDict[str, str], spec: Spec, *, zone: str = "UTC") -> dict[str, Any]:
    """Build the JSON body the API would receive from a submitted form."""
    data: dict[str, Any] = {}
    for path, kind in spec.items():
        if kind == "bool":
            _set(data, path, path in form and form.get(path) not in ("", "0", "false", "off"))
            continue
        if kind == "list":
            values = [v for v in form.getlist(path) if v]
            if values:
                _set(data, path, values)
            continue
        raw = (form.get(path) or "").strip()
        if raw == "":
            continue
        if kind == "int":
            _set(data, path, int(raw) if _INT.match(raw) else raw)
        elif kind == "local_instant":
            _set(data, path, _local_instant(raw, zone))
        else:
            _set(data, path, raw)
    return data


def check(schema: type[M], body: dict[str, Any]) -> M:
    """Validate a body with the API schema and context, or raise FormInvalid with its messages."""
    try:
        return schema.model_validate(body, context=validation_context())
    except ValidationError as exc:
        raise FormInvalid(validation_errors(exc)) from None


def core_errors(exc: Exception) -> Errors:
    """Return the field errors of the core's Invalid/ScheduleError or a form-level Conflict."""
    if isinstance(exc, Invalid | ScheduleError):
        return {exc.field: [str(getattr(exc, "message", exc))]}
    if isinstance(exc, Conflict):
        return {"body": [exc.message]}
    return {"body": [str(exc)]}


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten nested values into dotted paths, to refill a form from a body."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def refill(form: MultiDict[str, str], spec: Spec) -> dict[str, Any]:
    """Return the submitted values by field path, to show them again beside the errors."""
    values: dict[str, Any] = {}
    for path, kind in spec.items():
        if kind == "bool":
            values[path] = path in form
        elif kind == "list":
            values[path] = form.getlist(path)
        else:
            values[path] = form.get(path, "")
    return values


CLIENT_SPEC: Spec = {
    "display_name": "text", "phone": "text", "timezone": "text", "language": "text",
    "recovery_path": "text", "sobriety_date": "text", "stage_of_change": "text",
    "current_step": "int", "coping_plan": "text", "quiet_hours.start": "text",
    "quiet_hours.end": "text", "discreet": "bool", "status": "text", "paused_until": "text",
}  # fmt: skip
NEW_CLIENT_SPEC: Spec = {
    **{k: v for k, v in CLIENT_SPEC.items() if k not in ("status", "paused_until")},
    "sms_consent.granted": "bool", "sms_consent.method": "text",
}  # fmt: skip
SMS_CONSENT_SPEC: Spec = {"granted": "bool", "method": "text"}
CONTACT_SPEC: Spec = {
    "display_name": "text", "role": "text", "phone": "text", "timezone": "text",
    "can_confirm": "bool", "sms_consent.granted": "bool", "sms_consent.method": "text",
}  # fmt: skip
DISCLOSURE_SPEC: Spec = {
    "granted_on": "text", "expires_on": "text", "scope": "list", "purpose": "text",
}  # fmt: skip
PLAN_SPEC: Spec = {
    "meeting_id": "text", "verifier": "text", "remind_minutes_before": "int",
    "confirm_window_hours": "int", "escalate_after_misses": "int", "starts_on": "text",
    "paused_until": "text",
}  # fmt: skip
COMMITMENT_SPEC: Spec = {
    "kind": "text", "title": "text", "schedule.rrule": "text", "schedule.time": "text",
    "target": "int", "verifier": "text", "grace_minutes": "int", "escalate_after_misses": "int",
    "notify_sponsor": "bool", "starts_on": "text", "paused_until": "text", "active": "bool",
}  # fmt: skip
ACTIVITY_SPEC: Spec = {
    "kind": "text", "title": "text", "starts_at": "local_instant", "duration_minutes": "int",
    "location": "text", "notes": "text",
}  # fmt: skip


def client_values(body: BaseModel) -> dict[str, Any]:
    """Return the core's column values for a validated ClientIn."""
    data = body.model_dump(exclude={"sms_consent", "quiet_hours", "therapist_id"})
    data["quiet_start"] = body.quiet_hours.start  # type: ignore[attr-defined]
    data["quiet_end"] = body.quiet_hours.end  # type: ignore[attr-defined]
    return data


def commitment_values(body: BaseModel) -> dict[str, Any]:
    """Return the core's values for a validated CommitmentIn (the schedule flattened)."""
    data = body.model_dump(exclude={"schedule"})
    data["rrule"] = body.schedule.rrule  # type: ignore[attr-defined]
    data["time"] = body.schedule.time  # type: ignore[attr-defined]
    return data
