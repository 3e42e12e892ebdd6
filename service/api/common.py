"""What every API view shares: the clock, authentication, body parsing, pagination, merge patch."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, request
from pydantic import BaseModel, ValidationError
from sqlalchemy import Select

from service.api.problems import ApiError
from service.audit import Actor
from service.db import db, utcnow
from service.models import Therapist
from service.therapists import authenticate_token

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)

MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_DEPTH = 32


def now() -> datetime:
    """Return the request's instant: the app clock, which tests may pin."""
    if "now" not in g:
        clock = current_app.extensions.get("clock", utcnow)
        g.now = clock()
    return g.now


def settings() -> Any:
    """Return the app's parsed Settings."""
    return current_app.extensions["settings"]


def current_therapist() -> Therapist:
    """Return the authenticated therapist of this request."""
    return g.therapist


def actor() -> Actor:
    """Return the audit actor for this request."""
    therapist = current_therapist()
    return Actor("therapist", therapist.id, therapist.practice_id, request.remote_addr)


def require_token(view: F) -> F:
    """Authenticate the bearer token or answer 401."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        therapist = None
        if scheme.lower() == "bearer" and token.strip():
            therapist = authenticate_token(token.strip(), now=now())
        if therapist is None:
            raise ApiError(
                401,
                "a valid bearer token is required",
                headers={"WWW-Authenticate": 'Bearer realm="steadfast"'},
            )
        g.therapist = therapist
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def require_admin() -> None:
    """Refuse the request unless the therapist is an admin of their practice."""
    if current_therapist().role != "admin":
        raise ApiError(403, "this needs an admin of the practice")


def _depth(value: Any, limit: int = MAX_DEPTH) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def json_body(*, allow_empty: bool = False) -> dict[str, Any]:
    """Return the request's JSON object, or raise 415/400 for the wrong type or bad JSON."""
    raw = request.get_data(cache=True)
    if allow_empty and not raw.strip():
        return {}
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise ApiError(415, "send the body as application/json")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(400, "the body is not valid UTF-8") from None
    try:
        data = json.loads(text)
    except RecursionError:
        raise ApiError(400, "the JSON body is nested too deeply") from None
    except ValueError as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the JSON body must be an object")
    if _depth(data) > MAX_DEPTH:
        raise ApiError(400, "the JSON body is nested too deeply")
    return data


def validation_errors(exc: ValidationError) -> dict[str, list[str]]:
    """Turn pydantic's errors into {field: [messages]}."""
    errors: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ()) if part not in ("body",)]
        field = ".".join(loc) or "body"
        message = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            message = "unknown field"
        elif err.get("type") == "missing":
            message = "this field is required"
        message = message.removeprefix("Value error, ")
        errors.setdefault(field, []).append(message)
    return errors


def validate(schema: type[M], data: dict[str, Any], *, context: dict[str, Any] | None = None) -> M:
    """Validate `data` with `schema` or raise 422 naming each bad field."""
    try:
        return schema.model_validate(data, context=context)
    except ValidationError as exc:
        errors = validation_errors(exc)
        first = next(iter(errors))
        raise ApiError(422, f"invalid field {first}: {errors[first][0]}", errors=errors) from None


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7396 JSON merge patch to `target` and return the result (a new object)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def page_args() -> tuple[int, str | None]:
    """Parse `limit` and `after` from the query string."""
    raw = request.args.get("limit")
    limit = DEFAULT_LIMIT
    if raw is not None:
        try:
            limit = int(raw)
        except ValueError:
            raise ApiError(
                422, "limit must be an integer", errors={"limit": ["must be an integer"]}
            ) from None
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiError(
                422,
                f"limit must be between 1 and {MAX_LIMIT}",
                errors={"limit": [f"must be between 1 and {MAX_LIMIT}"]},
            )
    after = request.args.get("after") or None
    if after is not None and (len(after) > 100 or not after.replace("_", "").isalnum()):
        raise ApiError(422, "after is not a cursor", errors={"after": ["not a valid cursor"]})
    return limit, after


def paginate(
    stmt: Select[Any],
    id_column: Any,
    serialize: Callable[[Any], dict[str, Any]],
    *,
    cursor_of: Callable[[Any], str] | None = None,
    serialize_page: Callable[[Sequence[Any]], list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """Run `stmt` oldest first from the `after` cursor and return {"items", "next"}.

    `serialize_page`, when given, turns the whole page at once (a few queries for the page
    instead of a few per row); `serialize` is the one-row form.
    """
    limit, after = page_args()
    if after is not None:
        stmt = stmt.where(id_column > after)
    rows: Sequence[Any] = db.session.scalars(stmt.order_by(id_column).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    items = serialize_page(rows) if serialize_page else [serialize(row) for row in rows]
    next_cursor = None
    if more and rows:
        next_cursor = cursor_of(rows[-1]) if cursor_of else rows[-1].id
    return {"items": items, "next": next_cursor}
