"""What the resource blueprints share: tenancy-checked lookups, audit, merge patch, 201 answers."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from flask import Blueprint, Response, jsonify
from pydantic import BaseModel

from service.api.common import actor, json_body, merge_patch, now, validate
from service.api.problems import not_found, problem
from service.audit import record
from service.db import db
from service.errors import Conflict, Invalid
from service.models import Client
from service.schedule import ScheduleError

M = TypeVar("M", bound=BaseModel)
R = TypeVar("R")


def register_core_errors(bp: Blueprint) -> None:
    """Answer the core's Invalid as 422 naming the field and Conflict as 409."""

    @bp.errorhandler(Invalid)
    @bp.errorhandler(ScheduleError)
    def _invalid(exc: Invalid | ScheduleError) -> Response:
        db.session.rollback()
        field, message = exc.field, str(getattr(exc, "message", exc))
        return problem(422, f"invalid field {field}: {message}", errors={field: [message]})

    @bp.errorhandler(Conflict)
    def _conflict(exc: Conflict) -> Response:
        db.session.rollback()
        return problem(409, exc.message)


def practice_id() -> str:
    """Return the practice of the authenticated therapist: the tenant of every query."""
    return actor().practice_id or ""


def client_or_404(client_id: str) -> Client:
    """Return the practice's client, or 404 (also for another practice's client)."""
    client = db.session.get(Client, client_id) if len(client_id) <= 40 else None
    if client is None or client.practice_id != practice_id():
        raise not_found("client")
    return client


def get_owned(model: type[R], row_id: str, client: Client, what: str) -> R:
    """Return a row of `model` belonging to `client`, or 404."""
    row = db.session.get(model, row_id) if len(row_id) <= 40 else None
    if row is None or row.client_id != client.id or row.practice_id != client.practice_id:  # type: ignore[attr-defined]
        raise not_found(what)
    return row


def audit(
    action: str,
    *,
    subject_type: str | None = None,
    subject_id: str | None = None,
    client_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record who read or wrote what, in this request's transaction."""
    record(
        actor(),
        action,
        now=now(),
        subject_type=subject_type,
        subject_id=subject_id,
        client_id=client_id,
        detail=detail,
    )


def patched(
    schema: type[M], current: dict[str, Any], *, context: dict[str, Any] | None = None
) -> tuple[M, dict[str, Any]]:
    """Merge-patch `current` with the request body and validate it with the create schema."""
    patch = json_body()
    merged = merge_patch(current, patch)
    return validate(schema, merged, context=context), patch


def validation_context() -> dict[str, Any]:
    """Return what validators may compare against: the latest date it is anywhere on Earth."""
    return {"today": (now() + timedelta(hours=14)).date()}


def commit() -> None:
    """Commit the request's single unit of work."""
    db.session.commit()


def created(body: dict[str, Any], location: str) -> Response:
    """Build the 201 answer with the new resource and its Location, then commit the work."""
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = location
    commit()
    return response
