"""Calendar feeds: GET /feeds/<token>.ics for calendar apps, and the API that issues the links."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DBAPIError
from werkzeug.http import http_date, parse_date

from service import feeds
from service.api.common import actor, current_therapist, now
from service.api.problems import ApiError, not_found
from service.api.spec import operation
from service.audit import record
from service.db import db
from service.models import Client

logger = logging.getLogger(__name__)

bp = Blueprint("feeds", __name__)
TAGS = ("feeds",)
# Calendar apps poll hourly; a shared cache may keep a feed this long, never a shared one.
MAX_AGE_SECONDS = 900


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


def _not_modified(validator: feeds.FeedValidator) -> bool:
    """Evaluate If-None-Match (which wins when present) or else If-Modified-Since."""
    match = request.headers.get("If-None-Match")
    if match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in match.split(",")}
        return "*" in tags or validator.etag in tags
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
        "Cache-Control": f"private, max-age={MAX_AGE_SECONDS}",
        "X-Robots-Tag": "noindex, nofollow",
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
    db.session.commit()
    return Response(
        body,
        status=200,
        content_type="text/calendar; charset=utf-8",
        headers={**headers, "Content-Disposition": 'inline; filename="steadfast.ics"'},
    )


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
