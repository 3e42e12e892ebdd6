"""Therapist request and response bodies."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, StringConstraints

from service.api.schemas.fields import (
    Phone,
    ReadModel,
    StrictModel,
    TherapistRole,
    clean_text,
    text,
)

Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    AfterValidator(clean_text),
]


class TherapistUpdate(StrictModel):
    """What an admin may change about a therapist (the PATCH document)."""

    name: text(200, min_length=1)  # type: ignore[valid-type]
    role: TherapistRole = "therapist"
    active: bool = True
    phone: Phone | None = None


class TherapistIn(TherapistUpdate):
    """A therapist to create in the admin's own practice."""

    email: Email


class TherapistOut(ReadModel):
    """A therapist of the practice."""

    id: str
    email: str
    name: str
    role: str
    phone: str | None
    active: bool
    created_at: str


class TherapistCreated(ReadModel):
    """A new therapist and their API token, shown this once."""

    therapist: TherapistOut
    token: str


class TokensRevoked(ReadModel):
    """How many tokens were revoked."""

    revoked: int
