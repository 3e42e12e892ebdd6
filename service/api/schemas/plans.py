"""Meeting plan, commitment and activity request and response bodies."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from service.api.schemas.fields import (
    ActivityKind,
    CommitmentKind,
    Day,
    Id,
    Instant,
    LocalTime,
    ReadModel,
    StrictModel,
    Title,
    text,
)
from service.api.spec import PageQuery
from service.schedule import ScheduleError, validate_rrule

Verifier = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40, pattern=r"^(self|[A-Za-z0-9_]+)$"),
    Field(description='"self", or the id of a contact of this client who can confirm.'),
]


class _Planned(StrictModel):
    """Fields meeting plans and commitments share."""

    verifier: Verifier = "self"
    escalate_after_misses: int = Field(1, ge=1, le=50)
    starts_on: Day | None = Field(None, description="Default: today in the client's zone.")
    paused_until: Day | None = None


class MeetingPlanIn(_Planned):
    """A meeting plan as created (POST) and as a merge patch must leave it (PATCH)."""

    meeting_id: Id
    remind_minutes_before: int = Field(60, ge=0, le=1440)
    confirm_window_hours: int = Field(12, ge=1, le=72)


class Schedule(StrictModel):
    """When a commitment is due: an RRULE and a local time in the client's zone."""

    rrule: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    time: LocalTime | None = None

    @field_validator("rrule")
    @classmethod
    def _rrule(cls, value: str) -> str:
        try:
            return validate_rrule(value)
        except ScheduleError as exc:
            raise ValueError(exc.message) from None


class CommitmentIn(_Planned):
    """A commitment as created (POST) and as a merge patch must leave it (PATCH)."""

    kind: CommitmentKind
    title: Title
    schedule: Schedule
    target: int | None = Field(None, ge=1, le=50, validate_default=True)
    grace_minutes: int = Field(120, ge=5, le=1440)
    notify_sponsor: bool = False
    active: bool = True

    @field_validator("target")
    @classmethod
    def _target_for_quota(cls, value: int | None, info: ValidationInfo) -> int | None:
        kind = info.data.get("kind")
        if kind == "meeting_quota" and value is None:
            raise ValueError("a meeting quota needs a target (meetings per week)")
        if kind is not None and kind != "meeting_quota" and value is not None:
            raise ValueError("only a meeting_quota commitment has a target")
        return value

    @field_validator("schedule")
    @classmethod
    def _schedule_fits_kind(cls, value: Schedule, info: ValidationInfo) -> Schedule:
        kind = info.data.get("kind")
        if kind == "meeting_quota":
            if value.rrule != "FREQ=WEEKLY":
                raise ValueError("a meeting quota is counted weekly: rrule must be FREQ=WEEKLY")
        elif kind is not None and value.time is None:
            raise ValueError("time (HH:MM) is required for this kind of commitment")
        return value


class ActivityIn(StrictModel):
    """A one-off activity or therapy session; `starts_at` is an instant (UTC or with offset)."""

    kind: ActivityKind = "activity"
    title: Title
    starts_at: Instant
    duration_minutes: int = Field(50, ge=1, le=1440)
    location: text(500) | None = None  # type: ignore[valid-type]
    notes: text(5000) | None = None  # type: ignore[valid-type]
    cancelled: bool = False


class MeetingSummary(ReadModel):
    """The meeting a plan is for."""

    id: str
    name: str
    day: int | None
    time: str | None
    end_time: str | None
    timezone: str
    attendance: str
    active: bool


class MeetingPlanOut(ReadModel):
    """A client's plan to attend a meeting."""

    id: str
    client_id: str
    meeting_id: str
    meeting: MeetingSummary
    verifier: str
    remind_minutes_before: int
    confirm_window_hours: int
    escalate_after_misses: int
    starts_on: str
    paused_until: str | None
    archived_at: str | None
    warnings: list[str]
    created_at: str
    updated_at: str


class ScheduleOut(ReadModel):
    """A commitment's schedule."""

    rrule: str
    time: str | None


class CommitmentOut(ReadModel):
    """A client's commitment."""

    id: str
    client_id: str
    kind: str
    title: str
    schedule: ScheduleOut
    target: int | None
    verifier: str
    grace_minutes: int
    escalate_after_misses: int
    notify_sponsor: bool
    starts_on: str
    paused_until: str | None
    active: bool
    archived_at: str | None
    warnings: list[str]
    created_at: str
    updated_at: str


class ActivityOut(ReadModel):
    """A one-off activity or therapy session."""

    id: str
    client_id: str
    therapist_id: str | None
    kind: str
    title: str
    starts_at: str
    local_start: str = Field(description="Start as local wall time in the client's zone.")
    duration_minutes: int
    location: str | None
    notes: str | None
    cancelled: bool
    created_at: str
    updated_at: str


class PlanListQuery(PageQuery):
    """Filters of the plan, commitment and contact lists."""

    include_archived: bool = Field(False, description="Also list archived (deleted) ones.")
