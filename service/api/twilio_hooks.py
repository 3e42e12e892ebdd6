"""/twilio/inbound and /twilio/status: Twilio's signed webhooks (outside the bearer API and its document)."""

from __future__ import annotations

import fcntl
import logging
import os
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

from flask import Blueprint, Response, current_app, request
from twilio.request_validator import RequestValidator, compare, remove_port
from twilio.twiml.messaging_response import MessagingResponse

from service.api.common import settings
from service.api.problems import ApiError
from service.db import db, utcnow
from service.notifications.inbound import handle_inbound
from service.notifications.status import apply_status

logger = logging.getLogger(__name__)

bp = Blueprint("twilio_hooks", __name__, url_prefix="/twilio")


def _now() -> datetime:
    """Return the app clock's instant (tests pin it), read afresh for each webhook."""
    return current_app.extensions.get("clock", utcnow)()


def signed_url() -> str:
    """Return the URL Twilio signed: the public one, whatever scheme and host reached us.

    Behind a TLS-terminating proxy the request arrives as http://internal-host/...; Twilio
    signed https://PUBLIC_BASE_URL/..., so the URL is rebuilt from the setting, never trusted
    from the request's Host or X-Forwarded-* headers.
    """
    url = settings().PUBLIC_BASE_URL + request.path
    query = request.query_string.decode("latin-1")
    return f"{url}?{query}" if query else url


def _require_signature() -> None:
    """Refuse (403) a request not signed with our auth token for exactly this public URL."""
    token = settings().TWILIO_AUTH_TOKEN
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token:
        logger.warning("twilio webhook refused: TWILIO_AUTH_TOKEN is not configured")
        raise ApiError(403, "webhook signatures cannot be checked: no auth token is configured")
    if not signature or not _valid(token, signed_url(), request.form, signature):
        logger.warning("twilio webhook refused: bad or missing signature on %s", request.path)
        raise ApiError(403, "invalid Twilio signature")


def _valid(token: str, url: str, form: Any, signature: str) -> bool:
    """RequestValidator.validate, computing the usual signature first.

    validate computes two signatures for every request, the URL without its port and with
    the scheme's port (Twilio signs one or the other), and accepts either. A request signed
    for the first is accepted here on that one alone; anything else gets the full check.
    """
    validator = _validator(token)
    if compare(validator.compute_signature(_without_port(url), form), signature):
        return True
    return validator.validate(url, form, signature)


@lru_cache(maxsize=4)
def _validator(token: str) -> RequestValidator:
    return RequestValidator(token)


@lru_cache(maxsize=64)
def _without_port(url: str) -> str:
    """The URL validate signs first (twilio.request_validator.remove_port)."""
    return remove_port(urlparse(url))


# What MessagingResponse renders with nothing to say (most answers): built once.
_EMPTY_TWIML = str(MessagingResponse())
# What it renders around one <Message> (twiml_by_library is the reference).
_MESSAGE_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response><Message>{}</Message></Response>'


def twiml_text(answer: str | None) -> str:
    """Return the TwiML answering a text: MessagingResponse's output, without building its
    element tree (ElementTree escapes &, < and > in text, and nothing else)."""
    if not answer:
        return _EMPTY_TWIML
    escaped = answer.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MESSAGE_TWIML.format(escaped)


def twiml_by_library(answer: str | None) -> str:
    """The TwiML as the twilio library renders it (the reference for twiml_text)."""
    twiml = MessagingResponse()
    if answer:
        twiml.message(answer)  # the library XML-escapes the text
    return str(twiml)


def _twiml(answer: str | None) -> Response:
    return Response(twiml_text(answer), status=200, mimetype="text/xml")


@bp.post("/inbound")
def inbound() -> Any:
    """Handle an inbound text and answer it in TwiML (an empty Response when there is none)."""
    _require_signature()
    form = request.form
    gate = _WriteGate(_gate_path())
    try:
        result = handle_inbound(
            from_number=form.get("From", ""),
            to_number=form.get("To"),
            body=form.get("Body", ""),
            now=_now(),
            message_sid=form.get("MessageSid") or form.get("SmsSid") or None,
            settings=settings(),
            before_write=gate.enter,
        )
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    finally:
        gate.leave()
    return _twiml(result.answer_text)


def _gate_path() -> str | None:
    """Return the webhook's write-gate file beside a SQLite database file, else None."""
    url = db.engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return f"{url.database}-webhook.lock"


class _WriteGate:
    """Queue webhook requests for SQLite's one write lock on a blocking file lock.

    SQLite's busy handler makes a writer that finds the lock taken sleep 1, 2, 5, 10, 15...
    ms before trying again, and a worker that just committed often takes the lock back
    first: under gunicorn, workers spent a third of their time asleep there. Waiting on a
    flock wakes the next request as soon as the previous one committed. Taken after every
    lookup and released after the commit or rollback; SQLite's own lock is unchanged, so
    other writers (the scheduler, the API) are not affected. No-op on PostgreSQL.
    """

    def __init__(self, path: str | None) -> None:
        self._path = path
        self._fd: int | None = None

    def enter(self) -> None:
        if self._path is None or self._fd is not None:
            return
        # Opened per request: flock belongs to an open file, and a descriptor shared across
        # gunicorn's fork would not exclude the other workers.
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def leave(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the file releases its lock


@bp.post("/status")
def status() -> Any:
    """Record a delivery status (forward only); an unknown sid still gets 200 so Twilio stops."""
    _require_signature()
    form = request.form
    sid = form.get("MessageSid") or form.get("SmsSid") or ""
    raw_code = (form.get("ErrorCode") or "").strip()
    try:
        result = apply_status(
            sid=sid,
            provider_status=form.get("MessageStatus") or form.get("SmsStatus") or "",
            error_code=int(raw_code) if raw_code.isdigit() else None,
            now=_now(),
        )
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    if not result.known:
        logger.info("status callback for a message we do not know (%s)", sid[:8])
    return Response(status=200)
