"""Support contact and disclosure consent request and response bodies."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from service.api.schemas.fields import (
    ContactRole,
    Day,
    DisclosureScope,
    Name,
    Phone,
    ReadModel,
    SmsConsentIn,
    SmsConsentOut,
    StrictModel,
    TimeZone,
    text,
)


class DisclosureConsentIn(StrictModel):
    """The client's consent to tell this contact about their check-ins (a new version)."""

    granted_on: Day
    expires_on: Day | None = Field(None, validate_default=True)
    scope: list[DisclosureScope] = Field(min_length=1, max_length=3)
    purpose: text(500) | None = None  # type: ignore[valid-type]

    @field_validator("expires_on")
    @classmethod
    def _after_grant(cls, value: Any, info: ValidationInfo) -> Any:
        granted = info.data.get("granted_on")
        if value is not None and granted is not None and value < granted:
            raise ValueError("must be on or after granted_on")
        return value

    @field_validator("scope")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("list each scope once")
        return value


class ContactIn(StrictModel):
    """A support contact as created (POST) and as a merge patch must leave it (PATCH)."""

    display_name: Name
    role: ContactRole
    phone: Phone
    sms_consent: SmsConsentIn = Field(default_factory=lambda: SmsConsentIn(granted=False))
    disclosure_consent: DisclosureConsentIn | None = None
    can_confirm: bool = False
    timezone: TimeZone | None = None


class DisclosureConsentOut(ReadModel):
    """One version of a disclosure consent."""

    id: str
    contact_id: str
    version: int
    granted_on: str
    expires_on: str | None
    scope: list[str]
    purpose: str | None
    recorded_by: str | None
    recorded_at: str
    revoked_at: str | None
    in_effect: bool


class ContactOut(ReadModel):
    """A member of a client's support network."""

    id: str
    client_id: str
    display_name: str
    role: str
    phone: str
    timezone: str
    can_confirm: bool
    sms_consent: SmsConsentOut
    disclosure_consent: DisclosureConsentOut | None
    archived_at: str | None
    created_at: str
    updated_at: str
