"""Shared field types: strict models, phones, time zones, local times, dates, instants, texts."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from flask import current_app, has_app_context
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from service.models import vocab
from service.phones import PhoneError, normalize_phone
from service.schedule import ScheduleError, get_zone, parse_local_time

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class StrictModel(BaseModel):
    """A request body: unknown fields are refused and nothing is coerced ("3" is not 3)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ReadModel(BaseModel):
    """A response body."""

    model_config = ConfigDict(extra="forbid")


def _region(info: ValidationInfo) -> str:
    context = info.context or {}
    if "phone_region" in context:
        return str(context["phone_region"])
    if has_app_context():
        return str(current_app.extensions["settings"].DEFAULT_PHONE_REGION)
    return "US"


def _phone(value: str, info: ValidationInfo) -> str:
    try:
        return normalize_phone(value, _region(info))
    except PhoneError as exc:
        raise ValueError(str(exc)) from None


def _zone(value: str) -> str:
    try:
        get_zone(value)
    except ScheduleError as exc:
        raise ValueError(exc.message) from None
    return value


def _local_time(value: str) -> str:
    try:
        parse_local_time(value)
    except ScheduleError as exc:
        raise ValueError(exc.message) from None
    return value


def clean_text(value: str) -> str:
    """Refuse NUL characters and lone surrogates, which no database column can store."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


def _date(value: Any) -> Any:
    # Only "YYYY-MM-DD" text: pydantic's lax date parsing would also take numbers.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("must be a real calendar date (YYYY-MM-DD)") from None


def _instant(value: Any) -> Any:
    if isinstance(value, datetime):
        parsed = value
    else:
        if not isinstance(value, str) or len(value) > 40 or "T" not in value:
            raise ValueError("must be an ISO-8601 instant such as 2026-12-01T19:00:00Z")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise ValueError("must be an ISO-8601 instant such as 2026-12-01T19:00:00Z") from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("needs a UTC offset or Z (a local time without a zone is ambiguous)")
    if not 1900 <= parsed.year <= 2200:
        raise ValueError("is out of range")
    return parsed.astimezone(UTC).replace(microsecond=0)


Phone = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40),
    AfterValidator(_phone),
    Field(
        description="E.164 (+15005550101) or a national number; answered as E.164.",
        examples=["+12015550123"],
    ),
]
TimeZone = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_zone),
    Field(description="IANA time zone name, e.g. America/New_York.", examples=["America/New_York"]),
]
LocalTime = Annotated[
    str,
    StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$"),
    AfterValidator(_local_time),
    Field(description="Local wall time, 24-hour HH:MM.", examples=["19:30"]),
]
Day = Annotated[
    date,
    BeforeValidator(_date),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2026-12-01"]}),
]
Instant = Annotated[
    datetime,
    BeforeValidator(_instant),
    WithJsonSchema({"type": "string", "format": "date-time", "examples": ["2026-12-01T19:00:00Z"]}),
]
Id = Annotated[str, StringConstraints(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]


def text(max_length: int, *, min_length: int = 0) -> Any:
    """Return a string type stripped of surrounding space and capped at `max_length`."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        AfterValidator(clean_text),
    ]


Name = text(100, min_length=1)
Title = text(200, min_length=1)
Notes = text(5000)

Language = Literal[vocab.LANGUAGES]  # type: ignore[valid-type]
RecoveryPath = Literal[vocab.RECOVERY_PATHS]  # type: ignore[valid-type]
StageOfChange = Literal[vocab.STAGES_OF_CHANGE]  # type: ignore[valid-type]
ClientStatus = Literal[vocab.CLIENT_STATUSES]  # type: ignore[valid-type]
ContactRole = Literal[vocab.CONTACT_ROLES]  # type: ignore[valid-type]
ConsentMethod = Literal[vocab.CONSENT_METHODS]  # type: ignore[valid-type]
DisclosureScope = Literal[vocab.DISCLOSURE_SCOPES]  # type: ignore[valid-type]
CommitmentKind = Literal[vocab.COMMITMENT_KINDS]  # type: ignore[valid-type]
ActivityKind = Literal[vocab.ACTIVITY_KINDS]  # type: ignore[valid-type]
Attendance = Literal[vocab.ATTENDANCE]  # type: ignore[valid-type]
TherapistRole = Literal[vocab.THERAPIST_ROLES]  # type: ignore[valid-type]
MessageDirection = Literal[vocab.MESSAGE_DIRECTIONS]  # type: ignore[valid-type]
MessageStatus = Literal[vocab.MESSAGE_STATUSES]  # type: ignore[valid-type]
MessagePurpose = Literal[vocab.MESSAGE_PURPOSES]  # type: ignore[valid-type]


class SmsConsentIn(StrictModel):
    """Whether this person agreed to receive texts at this number, and how they agreed."""

    granted: bool
    method: ConsentMethod | None = Field(None, validate_default=True)

    @field_validator("method")
    @classmethod
    def _method_when_granted(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("granted") and value is None:
            raise ValueError("say how consent was given (written, verbal or keyword)")
        return value


class SmsConsentOut(ReadModel):
    """The current SMS consent of a person for their current number."""

    granted: bool
    method: ConsentMethod | None = None
    version: int | None = None
    recorded_at: str | None = None
    opted_out: bool = False
