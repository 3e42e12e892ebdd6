"""Client request and response bodies."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator, model_validator

from service.api.schemas.fields import (
    ClientStatus,
    Day,
    Id,
    Language,
    LocalTime,
    Name,
    Phone,
    ReadModel,
    RecoveryPath,
    SmsConsentIn,
    SmsConsentOut,
    StageOfChange,
    StrictModel,
    TimeZone,
    text,
)
from service.models.vocab import TWELVE_STEP_PATHS


class QuietHours(StrictModel):
    """Local hours in which no routine text is sent."""

    start: LocalTime = "21:00"
    end: LocalTime = "08:00"

    @model_validator(mode="after")
    def _not_empty(self) -> QuietHours:
        if self.start == self.end:
            raise ValueError("start and end must differ")
        return self


class ClientIn(StrictModel):
    """A client as created (POST) and as a merge patch must leave it (PATCH)."""

    display_name: Name
    phone: Phone
    timezone: TimeZone
    language: Language = "en"
    recovery_path: RecoveryPath = "other"
    sobriety_date: Day | None = None
    stage_of_change: StageOfChange | None = None
    current_step: int | None = Field(None, ge=1, le=12, validate_default=True)
    coping_plan: text(2000) | None = None  # type: ignore[valid-type]
    sms_consent: SmsConsentIn = Field(default_factory=lambda: SmsConsentIn(granted=False))
    quiet_hours: QuietHours = Field(default_factory=QuietHours)
    discreet: bool = True
    status: ClientStatus = "active"
    paused_until: Day | None = Field(None, validate_default=True)
    therapist_id: Id | None = None

    @field_validator("current_step")
    @classmethod
    def _step_on_twelve_step_path(cls, value: int | None, info: ValidationInfo) -> int | None:
        path = info.data.get("recovery_path")
        if value is not None and path is not None and path not in TWELVE_STEP_PATHS:
            raise ValueError(
                f"steps apply to 12-step paths ({', '.join(TWELVE_STEP_PATHS)}), not {path}"
            )
        return value

    @field_validator("sobriety_date")
    @classmethod
    def _not_in_future(cls, value: Any, info: ValidationInfo) -> Any:
        today = (info.context or {}).get("today")
        if value is not None and today is not None and value > today:
            raise ValueError("cannot be in the future")
        return value

    @field_validator("paused_until")
    @classmethod
    def _only_when_paused(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return value
        if info.data.get("status") != "paused":
            raise ValueError("only a paused client has paused_until (set status to paused)")
        return value


class ReassignIn(StrictModel):
    """Move a client to another therapist of the practice."""

    therapist_id: Id


class ClientOut(ReadModel):
    """A client."""

    id: str
    therapist_id: str
    display_name: str
    phone: str
    timezone: str
    language: str
    recovery_path: str
    sobriety_date: str | None
    stage_of_change: str | None
    current_step: int | None
    coping_plan: str | None
    sms_consent: SmsConsentOut
    quiet_hours: QuietHours
    discreet: bool
    status: str
    paused_until: str | None
    discharged_at: str | None
    created_at: str
    updated_at: str
