"""Calendar feeds: GET /feeds/<token>.ics for calendar apps, and the API that issues the links."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import Blueprint, Flask, Response, current_app, has_app_context, jsonify, request
from flask.blueprints import BlueprintSetupState
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from werkzeug.http import http_date, parse_date

from service import feeds
from service.api.common import actor, current_therapist, now
from service.api.problems import ApiError, not_found
from service.api.spec import operation
from service.audit import record
from service.db import db, utcnow
from service.models import Client

logger = logging.getLogger(__name__)

bp = Blueprint("feeds", __name__)
TAGS = ("feeds",)
# Calendar apps poll hourly; a shared cache may keep a feed this long, never a shared one.
MAX_AGE_SECONDS = 900
CACHE_CONTROL = f"private, max-age={MAX_AGE_SECONDS}"
ROBOTS = "noindex, nofollow"


class FeedLinkOut(BaseModel):
    """A feed link: https for copying, webcal:// to open a calendar app's subscribe dialog."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="https://…/feeds/<token>.ics")
    webcal_url: str = Field(description="webcal://…/feeds/<token>.ics")


def _empty(status: int, **headers: str) -> Response:
    # No body and no detail: a refused token says nothing about why.
    response = Response(b"", status=status, headers={"Cache-Control": "no-store", **headers})
    response.headers.pop("Content-Type", None)
    return response


def _miss(at: datetime) -> Response:
    address = request.remote_addr
    wait = feeds.guess_retry_after(address, now=at)
    if wait is None:
        feeds.record_miss(address, now=at)
        db.session.commit()
        return _empty(404)
    # Refused misses are not counted, so a guesser cannot keep the window open forever.
    logger.info("feed lookups refused for %s: too many misses", address)
    return _empty(429, **{"Retry-After": str(wait)})


def _etag_matches(etag: str, if_none_match: str) -> bool:
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def _not_modified(validator: feeds.FeedValidator) -> bool:
    """Evaluate If-None-Match (which wins when present) or else If-Modified-Since."""
    match = request.headers.get("If-None-Match")
    if match is not None:
        return _etag_matches(validator.etag, match)
    since = parse_date(request.headers.get("If-Modified-Since"))
    return since is not None and validator.last_modified <= since


@operation(bp, "/feeds/<token>.ics", "GET", summary="Fetch a calendar feed", auth=False,
           media="text/calendar", errors=(429,), bare_errors=(404, 429, 503), tags=TAGS)  # fmt: skip
def get_feed(token: str) -> Any:
    """The subscribable iCalendar feed; the token in the path is the only credential.

    Answers 304 to a matching If-None-Match or If-Modified-Since without rendering. An
    unknown, revoked or malformed token, or a discharged client's, is 404 with an empty body;
    after 20 such misses from one address in 10 minutes further misses get 429 with
    Retry-After. Valid tokens are always served: shared pollers (Google, Apple) are never
    refused for someone else's bad link.
    """
    try:
        return _serve(token)
    except DBAPIError as exc:
        # Handled here, not by the app's handlers: those log the path, and the path is the key.
        db.session.rollback()
        logger.warning("feed answered 503: database error %s", type(exc).__name__)
        return _empty(503, **{"Retry-After": "60"})
    except Exception:
        db.session.rollback()
        logger.exception("feed answered 500 (token withheld from the log)")
        return _empty(500)


def _serve(token: str) -> Response:
    at = now()
    # One query finds a live token, its owner and the validator; nothing renders for a 304.
    feed = feeds.live_feed(token, now=at)
    if feed is None:
        return _miss(at)
    validator = feed.validator
    headers = {
        "ETag": validator.etag,
        "Last-Modified": http_date(validator.last_modified),
        "Cache-Control": CACHE_CONTROL,
        "X-Robots-Tag": ROBOTS,
    }
    recorded = feeds.record_poll(feed, now=at)
    if _not_modified(validator):
        if recorded:  # else nothing was written: the request's teardown ends the read
            db.session.commit()
        response = Response(status=304, headers=headers)
        response.headers.pop("Content-Type", None)
        return response
    # Re-fetches without a validator (and a second worker's first) reuse the rendered bytes.
    body = feeds.cached_feed_body(feed, now=at)
    if recorded:  # else nothing was written (an empty commit cost ~170 µs): teardown ends it
        db.session.commit()
    return Response(
        body,
        status=200,
        content_type="text/calendar; charset=utf-8",
        headers={**headers, "Content-Disposition": 'inline; filename="steadfast.ics"'},
    )


class PollFastPath:
    """WSGI middleware answering the common poll, an unchanged feed, before Flask is entered.

    Calendar servers poll every feed about hourly with If-None-Match; nearly every answer is
    304. Flask's request context, session, routing and response objects cost about as much
    CPU as the poll's query, so a GET /feeds/<token>.ics with If-None-Match is answered here
    when it is sure to be exactly what get_feed answers: a live client feed with no pause on
    record (feeds.poll_etag: one query, no session), a matching ETag, and no poll to record
    (feeds.poll_due). Everything else (a miss, a therapist's feed, a pause, a 200, a poll to
    record, HEAD, If-Modified-Since alone, any error) goes to the app untouched, so get_feed
    decides and answers it, errors included (a database error here is met again there).
    """

    def __init__(self, app: Flask, wsgi_app: Callable[..., Any]) -> None:
        self.app = app
        self.wsgi_app = wsgi_app
        self._engine: Engine | None = None
        # PostgreSQL: POLL_STATE runs on a connection kept per serving thread (PollReader).
        self._reader: feeds.PollReader | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        match = environ.get("HTTP_IF_NONE_MATCH")
        if match is not None and environ.get("REQUEST_METHOD") == "GET":
            path = environ.get("PATH_INFO", "")
            if path.startswith("/feeds/") and path.endswith(".ics"):
                etag = self._unchanged(path[7:-4], match)
                if etag is not None:
                    # get_feed's 304, as werkzeug sends it (no Last-Modified on a 304), with
                    # the app's X-Content-Type-Options.
                    start_response("304 NOT MODIFIED", [
                        ("ETag", etag), ("Cache-Control", CACHE_CONTROL), ("X-Robots-Tag", ROBOTS),
                        ("X-Content-Type-Options", "nosniff"),
                    ])  # fmt: skip
                    return []
        return self.wsgi_app(environ, start_response)

    def _unchanged(self, token: str, if_none_match: str) -> str | None:
        """The feed's ETag when get_feed would answer this poll 304 and record nothing."""
        try:
            if self._engine is None:
                with self.app.app_context():
                    engine = db.engine
                if engine.dialect.name == "postgresql":
                    self._reader = feeds.PollReader(engine)
                self._engine = engine
            at = self._now()
            found = feeds.poll_etag(token, engine=self._engine, now=at, reader=self._reader)
        except Exception:  # noqa: BLE001 - get_feed meets it again, and answers and logs it
            return None
        if found is None:
            return None
        etag, last_seen_at = found
        if feeds.poll_due(last_seen_at, now=at) or not _etag_matches(etag, if_none_match):
            return None
        return etag

    def _now(self) -> datetime:
        # get_feed's clock: the app's (tests pin it), or the instant already taken in an app
        # context of this app that a request would share (as tests do).
        if has_app_context() and current_app._get_current_object() is self.app:  # type: ignore[attr-defined]
            return now()
        return self.app.extensions.get("clock", utcnow)()


@bp.record_once
def _install_fast_path(state: BlueprintSetupState) -> None:
    app = state.app
    app.wsgi_app = PollFastPath(app, app.wsgi_app)  # type: ignore[method-assign]


@bp.route("/feeds/<path:rest>", methods=["GET"])
def malformed_feed(rest: str) -> Response:
    """Anything else under /feeds/ is a miss too, and answers the same empty 404."""
    return _miss(now())


def _client(client_id: str) -> Client:
    client = db.session.get(Client, client_id) if len(client_id) <= 40 else None
    if client is None or client.practice_id != actor().practice_id:
        raise not_found("client")
    return client


def _links(url: str) -> dict[str, str]:
    token = url.rsplit("/", 1)[1].removesuffix(".ics")
    return {"url": url, "webcal_url": feeds.webcal_url(token)}


def _audit(action: str, subject: Client | Any, **detail: Any) -> None:
    # The feed's owner is the subject; the token itself never reaches the audit trail.
    is_client = isinstance(subject, Client)
    record(actor(), action, now=now(), subject_type="client" if is_client else "therapist",
           subject_id=subject.id, client_id=subject.id if is_client else None,
           detail=detail)  # fmt: skip


@operation(bp, "/api/v1/clients/<client_id>/feed", "POST", summary="Issue a client's feed link",
           response=FeedLinkOut, status=201, tags=TAGS)  # fmt: skip
def rotate_client(client_id: str) -> Any:
    """Issue a new calendar link for the client; any previous link stops working at once."""
    client = _client(client_id)
    if client.status == "discharged":
        raise ApiError(409, "this client is discharged; their calendar feed has ended")
    url = feeds.rotate_client_feed(client, now=now())
    _audit("feed.rotate", client)
    db.session.commit()
    response = jsonify(_links(url))
    response.status_code = 201
    response.headers["Location"] = url
    return response


@operation(bp, "/api/v1/clients/<client_id>/feed", "DELETE", summary="Revoke a client's feed link",
           status=204, tags=TAGS)  # fmt: skip
def revoke_client(client_id: str) -> Any:
    """Revoke the client's calendar link; subscribed calendars stop updating (404)."""
    client = _client(client_id)
    revoked = feeds.revoke_client_feed(client, now=now())
    _audit("feed.revoke", client, revoked=revoked)
    db.session.commit()
    return Response(status=204)


@operation(bp, "/api/v1/therapists/me/feed", "POST", summary="Issue your own feed link",
           response=FeedLinkOut, status=201, tags=TAGS)  # fmt: skip
def rotate_mine() -> Any:
    """Issue a new link to your sessions and open follow-ups (clients' initials only)."""
    therapist = current_therapist()
    url = feeds.rotate_therapist_feed(therapist, now=now())
    _audit("feed.rotate", therapist)
    db.session.commit()
    response = jsonify(_links(url))
    response.status_code = 201
    response.headers["Location"] = url
    return response


@operation(bp, "/api/v1/therapists/me/feed", "DELETE", summary="Revoke your own feed link",
           status=204, tags=TAGS)  # fmt: skip
def revoke_mine() -> Any:
    """Revoke your calendar link."""
    therapist = current_therapist()
    revoked = feeds.revoke_therapist_feed(therapist, now=now())
    _audit("feed.revoke", therapist, revoked=revoked)
    db.session.commit()
    return Response(status=204)
