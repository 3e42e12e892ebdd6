"""RFC 9457 problem+json for every API error, with an `errors` object naming each bad field."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json, request
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.exceptions import HTTPException

from service.db import db, is_database_outage

logger = logging.getLogger(__name__)

PROBLEM_TYPE = "about:blank"
# Seconds a client is told to wait when the database is unavailable (a restart takes a few).
DATABASE_RETRY_AFTER = "5"
_DATABASE_DOWN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Temporarily unavailable - Steadfast</title>
</head><body><h1>Temporarily unavailable</h1>
<p>Steadfast cannot reach its database right now. Nothing you saved is lost; reload this page
in a few seconds.</p></body></html>
"""


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

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Any:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        db.session.rollback()
        if not _wants_problem():
            return Response("Internal Server Error", status=500)
        return problem(500, "internal error")

    @app.errorhandler(DBAPIError)
    @app.errorhandler(PoolTimeout)
    def _database_error(exc: Exception) -> Any:
        # Down, restarting or out of connections: 503. A constraint that no validation caught
        # is a write racing another (two requests creating the same thing): 409, nothing
        # written. Any other SQL error is a bug: 500.
        if is_database_outage(exc):
            return database_unavailable(exc)
        if isinstance(exc, IntegrityError):
            logger.warning("constraint refused a write on %s %s: %s", request.method,
                           request.path, type(exc.orig).__name__)  # fmt: skip
            db.session.rollback()
            if not _wants_problem():
                return Response("Conflict", status=409)
            return problem(409, "the change conflicts with a record written at the same time; "
                                "reload and try again")  # fmt: skip
        return _unexpected(exc)


def database_unavailable(exc: BaseException) -> Response:
    """Answer 503 with Retry-After for a database that is down or restarting; never a 500.

    The API, webhooks and health get problem+json; the dashboard a self-contained page (its
    usual layout reads the signed-in user from the database that just failed).
    """
    logger.warning("database unavailable, answered 503: %s", type(exc).__name__)
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection may already be gone
        logger.debug("rollback after database error failed", exc_info=True)
    headers = {"Retry-After": DATABASE_RETRY_AFTER}
    if _wants_problem():
        return problem(503, "the database is unavailable; try again shortly", headers=headers)
    return Response(_DATABASE_DOWN_PAGE, status=503, mimetype="text/html", headers=headers)
