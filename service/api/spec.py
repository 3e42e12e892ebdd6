"""The registry of API operations: one decorator registers a Flask route and documents it.

Register every /api/v1 operation with `operation` instead of `bp.route`, so the OpenAPI
document (service/api/openapi.py) and the docs page describe it:

    from flask import Blueprint
    from service.api.spec import PageQuery, operation, page_of

    bp = Blueprint("alerts", __name__, url_prefix="/api/v1")

    class AlertQuery(PageQuery):              # query models are lax: "3" parses as 3
        status: Literal["open", "acknowledged", "resolved"] | None = None

    @operation(bp, "/alerts", "GET", summary="List alerts", query=AlertQuery,
               response=page_of(AlertOut), tags=("alerts",))
    def list_alerts(query: AlertQuery):       # the parsed query arrives as `query=`
        ...

    @operation(bp, "/alerts/<alert_id>/acknowledge", "POST", summary="Acknowledge an alert",
               request=AckIn, response=AlertOut, tags=("alerts",))
    def acknowledge(alert_id: str):
        body = validate(AckIn, json_body())   # bodies are parsed by the view (PATCH needs raw)
        ...

`auth=True` (the default) wraps the view in `require_token`; do not add it yourself.
`status` is the success status (201 documents a Location header); `response=None` with
`status=204` documents an empty answer; `media="text/calendar"` documents a non-JSON body.
`errors` adds statuses (e.g. 403 for admin-only operations) to the default problem answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, wraps
from typing import Any

from flask import Blueprint, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from service.api.common import require_token, validation_errors
from service.api.problems import ApiError

# Answers every operation may give (problem+json); 401 is added for authenticated ones.
DEFAULT_ERRORS: tuple[int, ...] = (400, 404, 409, 413, 415, 422, 503)

_RULE_PARAM = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")


class PageQuery(BaseModel):
    """Query parameters every list operation takes; extend it with the operation's filters."""

    model_config = ConfigDict(extra="ignore")

    limit: int = Field(50, ge=1, le=500, description="Page size (1–500).")
    after: str | None = Field(
        None,
        max_length=100,
        pattern=r"^[A-Za-z0-9_]+$",
        description="The `next` cursor of the previous page.",
    )


@dataclass(frozen=True)
class Operation:
    """One documented operation: a Flask route plus what it takes and answers."""

    blueprint: str
    url_prefix: str
    rule: str
    method: str
    endpoint: str
    summary: str
    description: str
    request: type[BaseModel] | None
    response: type[BaseModel] | None
    query: type[BaseModel] | None
    status: int
    tags: tuple[str, ...]
    auth: bool
    errors: tuple[int, ...]
    media: str
    bare_errors: tuple[int, ...] = ()
    path_params: tuple[tuple[str, str], ...] = field(default=())

    @property
    def path(self) -> str:
        """Return the OpenAPI path, e.g. /api/v1/clients/{client_id}."""
        return _RULE_PARAM.sub(lambda m: "{" + m.group("name") + "}", self.url_prefix + self.rule)

    @property
    def operation_id(self) -> str:
        """Return a unique operation id such as clients.get_client."""
        return f"{self.blueprint}.{self.endpoint}"


OPERATIONS: list[Operation] = []


def operation(
    bp: Blueprint,
    rule: str,
    method: str,
    *,
    summary: str,
    request: type[BaseModel] | None = None,
    response: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    status: int = 200,
    tags: tuple[str, ...] = (),
    auth: bool = True,
    errors: tuple[int, ...] = (),
    media: str = "application/json",
    bare_errors: tuple[int, ...] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register `view` as the route `rule` on `bp` and record it for the OpenAPI document."""
    method = method.upper()

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        inner = _with_query(view, query) if query is not None else view
        wrapped = require_token(inner) if auth else inner
        bp.add_url_rule(rule, endpoint=view.__name__, view_func=wrapped, methods=[method])
        params = tuple(
            (m.group("name"), m.group("converter") or "string") for m in _RULE_PARAM.finditer(rule)
        )
        doc = (view.__doc__ or "").strip()
        all_errors = tuple(sorted({*DEFAULT_ERRORS, *((401,) if auth else ()), *errors}))
        OPERATIONS.append(
            Operation(
                blueprint=bp.name,
                url_prefix=(bp.url_prefix or "").rstrip("/"),
                rule=rule,
                method=method,
                endpoint=view.__name__,
                summary=summary,
                description=doc,
                request=request,
                response=response,
                query=query,
                status=status,
                tags=tags,
                auth=auth,
                errors=all_errors,
                media=media,
                path_params=params,
                bare_errors=bare_errors,
            )
        )
        return wrapped

    return decorator


def _with_query(view: Callable[..., Any], model: type[BaseModel]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        kwargs["query"] = parse_query(model)
        return view(*args, **kwargs)

    return wrapper


def parse_query(model: type[BaseModel]) -> Any:
    """Validate the query string with `model` or raise 422 naming each bad parameter."""
    raw = {key: request.args.get(key) for key in request.args}
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = validation_errors(exc)
        first = next(iter(errors))
        raise ApiError(
            422, f"invalid query parameter {first}: {errors[first][0]}", errors=errors
        ) from None


@cache
def page_of(item: type[BaseModel]) -> type[BaseModel]:
    """Return the list-response model {"items": [item], "next": cursor or null}."""
    return create_model(
        f"{item.__name__}Page",
        __config__=ConfigDict(extra="forbid"),
        items=(list[item], ...),  # type: ignore[valid-type]
        next=(str | None, Field(None, description="Cursor for the next page, or null.")),
    )


def operations_for(blueprints: set[str] | None = None) -> list[Operation]:
    """Return the registered operations, optionally only those of the given blueprints."""
    if blueprints is None:
        return list(OPERATIONS)
    return [op for op in OPERATIONS if op.blueprint in blueprints]
