"""RFC 9457 problem+json for every API error, with an `errors` object naming each bad field."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json, request
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from service.db import db

logger = logging.getLogger(__name__)

PROBLEM_TYPE = "about:blank"


class ApiError(Exception):
    """An error answered as problem+json."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        errors: dict[str, list[str]] | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.errors = errors or {}
        self.title = title
        self.headers = headers or {}


def field_error(field: str, message: str, status: int = 422) -> ApiError:
    """Return a 422 naming one bad field."""
    return ApiError(status, f"{field}: {message}", errors={field: [message]})


def not_found(what: str = "resource") -> ApiError:
    """Return the 404 used for unknown ids and for other practices' ids alike."""
    return ApiError(404, f"{what} not found")


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def problem(
    status: int,
    detail: str,
    *,
    errors: dict[str, list[str]] | None = None,
    title: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """Build a problem+json response."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE,
        "title": title or _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = errors
    response = Response(
        json.dumps(body), status=status, mimetype="application/problem+json", headers=headers
    )
    return response


def _wants_problem() -> bool:
    """Answer problem+json on the API, webhooks, feeds and health; the dashboard gets HTML."""
    return request.path.startswith(("/api/", "/twilio/", "/feeds/", "/healthz", "/readyz"))


def init_app(app: Flask) -> None:
    """Register the error handlers."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        db.session.rollback()
        return problem(
            exc.status, exc.detail, errors=exc.errors, title=exc.title, headers=exc.headers
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        if not _wants_problem():
            return exc
        db.session.rollback()
        status = exc.code or 500
        detail = exc.description or _TITLES.get(status, "error")
        if status == 413:
            detail = "request body too large"
        headers = {}
        valid = getattr(exc, "valid_methods", None)
        if status == 405 and valid:
            headers["Allow"] = ", ".join(valid)
        return problem(status, detail, headers=headers)

    @app.errorhandler(OperationalError)
    @app.errorhandler(DBAPIError)
    def _database_down(exc: Exception) -> Response:
        # A database that is unreachable or restarting: fail fast and say so; never a 500.
        logger.warning("database error answered 503: %s", type(exc).__name__)
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection may already be gone
            logger.debug("rollback after database error failed", exc_info=True)
        return problem(
            503, "the database is unavailable; try again shortly", headers={"Retry-After": "5"}
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        if not _wants_problem():
            return Response("Internal Server Error", status=500)
        return problem(500, "internal error")
