"""/api/v1/therapists: the practice's therapists; admins add, change and lock them out."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, url_for
from sqlalchemy import func, select

from service.api.common import (
    current_therapist,
    json_body,
    merge_patch,
    now,
    paginate,
    require_admin,
    validate,
)
from service.api.problems import ApiError, not_found
from service.api.resources import audit, commit, created, practice_id, register_core_errors
from service.api.schemas.therapists import (
    TherapistCreated,
    TherapistIn,
    TherapistOut,
    TherapistUpdate,
    TokensRevoked,
)
from service.api.spec import PageQuery, operation, page_of
from service.db import db
from service.models import Practice, Therapist
from service.serialize import iso
from service.therapists import (
    TherapistError,
    create_therapist,
    find_by_email,
    issue_token,
    revoke_tokens,
)

bp = Blueprint("therapists", __name__, url_prefix="/api/v1")
register_core_errors(bp)
TAGS = ("therapists",)


def therapist_dict(therapist: Therapist) -> dict[str, Any]:
    """Return a therapist as the API shows them (never a secret)."""
    return {
        "id": therapist.id,
        "email": therapist.email,
        "name": therapist.name,
        "role": therapist.role,
        "phone": therapist.phone,
        "active": therapist.active,
        "created_at": iso(therapist.created_at),
    }


def _get(therapist_id: str) -> Therapist:
    therapist = db.session.get(Therapist, therapist_id) if len(therapist_id) <= 40 else None
    if therapist is None or therapist.practice_id != practice_id():
        raise not_found("therapist")
    return therapist


@operation(bp, "/therapists", "GET", summary="List the practice's therapists", query=PageQuery,
           response=page_of(TherapistOut), tags=TAGS)  # fmt: skip
def list_therapists(query: PageQuery) -> Any:
    """Every therapist of the caller's practice, oldest first."""
    stmt = select(Therapist).where(Therapist.practice_id == practice_id())
    page = paginate(stmt, Therapist.id, therapist_dict)
    commit()
    return jsonify(page)


@operation(bp, "/therapists/me", "GET", summary="Who am I", response=TherapistOut, tags=TAGS)
def me() -> Any:
    """The therapist the token belongs to."""
    commit()  # the token's last use
    return jsonify(therapist_dict(current_therapist()))


@operation(bp, "/therapists/<therapist_id>", "GET", summary="Get a therapist",
           response=TherapistOut, tags=TAGS)  # fmt: skip
def get_therapist(therapist_id: str) -> Any:
    """One therapist of the practice."""
    therapist = _get(therapist_id)
    commit()
    return jsonify(therapist_dict(therapist))


@operation(bp, "/therapists", "POST", summary="Add a therapist (admins)", request=TherapistIn,
           response=TherapistCreated, status=201, tags=TAGS, errors=(403,))  # fmt: skip
def create() -> Any:
    """Create a therapist in the admin's practice; their API token is shown this once."""
    require_admin()
    data = validate(TherapistIn, json_body())
    if find_by_email(data.email) is not None:
        raise ApiError(409, "a therapist with this email already exists",
                       errors={"email": ["already in use"]})  # fmt: skip
    practice = db.session.get(Practice, practice_id())
    try:
        therapist = create_therapist(
            email=data.email, name=data.name, practice=practice, now=now(), role=data.role,
            phone=data.phone,
        )  # fmt: skip
    except TherapistError as exc:
        raise ApiError(422, str(exc), errors={"email": [str(exc)]}) from None
    therapist.active = data.active
    token = issue_token(therapist, now=now())
    audit("therapist.create", subject_type="therapist", subject_id=therapist.id)
    body = {"therapist": therapist_dict(therapist), "token": token}
    return created(body, url_for("therapists.get_therapist", therapist_id=therapist.id))


@operation(bp, "/therapists/<therapist_id>", "PATCH", summary="Change a therapist (admins)",
           request=TherapistUpdate, response=TherapistOut, tags=TAGS, errors=(403,))  # fmt: skip
def patch(therapist_id: str) -> Any:
    """Merge-patch role, active, name or phone; the last active admin cannot be demoted."""
    therapist = _get(therapist_id)
    require_admin()
    current = {key: getattr(therapist, key) for key in ("name", "role", "active", "phone")}
    data = validate(TherapistUpdate, merge_patch(_compact(current), json_body()))
    changed = [key for key, value in data.model_dump().items() if getattr(therapist, key) != value]
    for key in changed:
        setattr(therapist, key, getattr(data, key))
    if ("role" in changed or "active" in changed) and not _has_active_admin():
        raise ApiError(409, "the practice must keep at least one active admin")
    audit("therapist.update", subject_type="therapist", subject_id=therapist.id,
          detail={"fields": changed})  # fmt: skip
    commit()
    return jsonify(therapist_dict(therapist))


def _compact(doc: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in doc.items() if value is not None}


def _has_active_admin() -> bool:
    db.session.flush()
    count = db.session.scalar(
        select(func.count())
        .select_from(Therapist)
        .where(
            Therapist.practice_id == practice_id(),
            Therapist.role == "admin",
            Therapist.active.is_(True),
        )  # fmt: skip
    )
    return bool(count)


@operation(bp, "/therapists/<therapist_id>/revoke-tokens", "POST",
           summary="Revoke every API token of a therapist (admins)", response=TokensRevoked,
           tags=TAGS, errors=(403,))  # fmt: skip
def revoke(therapist_id: str) -> Any:
    """Revoke all of the therapist's API tokens; they stop working at once."""
    therapist = _get(therapist_id)
    require_admin()
    count = revoke_tokens(therapist, now=now())
    audit("therapist.revoke_tokens", subject_type="therapist", subject_id=therapist.id,
          detail={"revoked": count})  # fmt: skip
    commit()
    return jsonify({"revoked": count})
