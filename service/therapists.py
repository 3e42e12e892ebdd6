"""Practices, therapists and their API tokens: creation, authentication, revocation."""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash

from service.crypto import digest
from service.db import db, new_secret
from service.models import ApiToken, Practice, Therapist

DEFAULT_PRACTICE = "Default practice"
TOKEN_PREFIX = "sf_"  # noqa: S105 - a visible prefix, not a secret
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class TherapistError(ValueError):
    """A therapist cannot be created or found as asked."""


def get_or_create_practice(name: str, *, now: datetime) -> Practice:
    """Return the practice of that name, creating it when it does not exist."""
    name = name.strip()
    if not name:
        raise TherapistError("practice name is required")
    practice = db.session.scalar(select(Practice).where(Practice.name == name))
    if practice is None:
        practice = Practice(name=name, created_at=now)
        db.session.add(practice)
        db.session.flush()
    return practice


def create_therapist(
    *,
    email: str,
    name: str,
    practice: Practice,
    now: datetime,
    role: str = "therapist",
    phone: str | None = None,
    password: str | None = None,
) -> Therapist:
    """Create a therapist; a duplicate email is refused."""
    email = email.strip().lower()
    if not _EMAIL.match(email):
        raise TherapistError(f"not an email address: {email!r}")
    if role not in ("therapist", "admin"):
        raise TherapistError("role must be therapist or admin")
    if db.session.scalar(select(Therapist.id).where(Therapist.email == email)):
        raise TherapistError(f"a therapist with email {email} already exists")
    therapist = Therapist(
        email=email,
        name=name.strip(),
        practice_id=practice.id,
        role=role,
        phone=phone,
        created_at=now,
    )
    if password is not None:
        set_password(therapist, password)
    db.session.add(therapist)
    db.session.flush()
    return therapist


def set_password(therapist: Therapist, password: str) -> None:
    """Hash and store a new password (at least 10 characters)."""
    if len(password) < 10:
        raise TherapistError("password must be at least 10 characters")
    therapist.password_hash = generate_password_hash(password)


def check_password(therapist: Therapist, password: str) -> bool:
    """Return whether `password` is the therapist's password."""
    return bool(therapist.password_hash) and check_password_hash(therapist.password_hash, password)


def find_by_email(email: str) -> Therapist | None:
    """Return the therapist with this email, or None."""
    return db.session.scalar(select(Therapist).where(Therapist.email == email.strip().lower()))


def issue_token(therapist: Therapist, *, now: datetime) -> str:
    """Create an API token and return it; only its digest is stored."""
    token = TOKEN_PREFIX + new_secret(32)
    db.session.add(ApiToken(therapist_id=therapist.id, digest=digest(token), created_at=now))
    db.session.flush()
    return token


def revoke_tokens(therapist: Therapist, *, now: datetime) -> int:
    """Revoke every live token of the therapist; return how many."""
    result = db.session.execute(
        update(ApiToken)
        .where(ApiToken.therapist_id == therapist.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return result.rowcount or 0


def authenticate_token(token: str, *, now: datetime) -> Therapist | None:
    """Return the active therapist a live token belongs to, or None."""
    if not token or len(token) > 200:
        return None
    row = db.session.execute(
        select(ApiToken, Therapist)
        .join(Therapist, Therapist.id == ApiToken.therapist_id)
        .where(ApiToken.digest == digest(token), ApiToken.revoked_at.is_(None))
    ).first()
    if row is None:
        return None
    api_token, therapist = row
    if not therapist.active:
        return None
    # Recording every use would write on every request; minute resolution is plenty.
    if api_token.last_used_at is None or (now - api_token.last_used_at).total_seconds() > 60:
        api_token.last_used_at = now
    return therapist
