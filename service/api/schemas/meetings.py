"""Meeting directory request and response bodies and the search filters."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from service.api.schemas.fields import (
    Attendance,
    LocalTime,
    ReadModel,
    RecoveryPath,
    StrictModel,
    TimeZone,
    clean_text,
    text,
)
from service.api.spec import PageQuery


def _url(value: str) -> str:
    if not value.lower().startswith(("https://", "http://")) or len(value.split("//", 1)[1]) < 1:
        raise ValueError("must be an http(s) URL")
    return value


Url = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=2000),
    AfterValidator(clean_text),
    AfterValidator(_url),
]
MeetingType = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=20),
    AfterValidator(clean_text),
]
SearchText = Annotated[str, StringConstraints(max_length=100), AfterValidator(clean_text)]


class MeetingIn(StrictModel):
    """A directory meeting as created (POST) and as a merge patch must leave it (PATCH)."""

    name: text(255, min_length=1)  # type: ignore[valid-type]
    day: int = Field(ge=0, le=6, description="0 = Sunday … 6 = Saturday.")
    time: LocalTime
    timezone: TimeZone
    end_time: LocalTime | None = None
    fellowship: RecoveryPath = "other"
    location: text(500) | None = None  # type: ignore[valid-type]
    address: text(500) | None = None  # type: ignore[valid-type]
    conference_url: Url | None = None
    conference_phone: text(100) | None = None  # type: ignore[valid-type]
    types: list[MeetingType] = Field(default_factory=list, max_length=50)
    notes: text(5000) | None = None  # type: ignore[valid-type]


class MeetingOut(ReadModel):
    """A meeting of the practice's directory."""

    id: str
    name: str
    day: int | None
    time: str | None
    end_time: str | None
    timezone: str
    fellowship: str
    location: str | None
    address: str | None
    conference_url: str | None
    conference_phone: str | None
    types: list[str]
    notes: str | None
    attendance: str
    active: bool
    source: str
    feed_id: str | None
    warnings: list[str]
    created_at: str
    updated_at: str


_HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class MeetingQuery(PageQuery):
    """Filters of the meeting search."""

    day: int | None = Field(None, ge=0, le=6, description="0 = Sunday … 6 = Saturday.")
    after: str | None = Field(  # type: ignore[assignment]
        None,
        max_length=100,
        pattern=r"^(([01][0-9]|2[0-3]):[0-5][0-9]|[A-Za-z0-9_]+)$",
        description=(
            "A local time HH:MM (meetings starting at or after it) or the `next` cursor of the "
            "previous page, which carries that time filter on."
        ),
    )
    before: str | None = Field(
        None, pattern=_HHMM, description="Meetings starting before this local time (HH:MM)."
    )
    type: MeetingType | None = Field(None, description="A meeting type code, e.g. O, B.")
    attendance: Attendance | None = None
    fellowship: RecoveryPath | None = None
    active: bool | None = None
    q: SearchText | None = Field(None, description="Name, location, address or notes.")
