"""Deliver events to webhook endpoints at least once: signed POSTs to vetted addresses, retried."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.exc import IntegrityError

from service import fetch
from service.db import db, new_id
from service.escalation import webhook_backoff
from service.events import read_events
from service.models import Event, WebhookDelivery, WebhookEndpoint
from service.webhooks import endpoint_secret, event_body, sign

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BATCH = 100


class DeliveryRefused(Exception):
    """The endpoint's address is not allowed (or not resolvable) right now."""


@dataclass
class _Job:
    endpoint: WebhookEndpoint
    event: Event
    delivery: WebhookDelivery | None  # None: the event's first attempt, row not yet written
    status_code: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def post_signed(url: str, body: str, headers: dict[str, str], *, allow_private: bool) -> int:
    """POST `body` to `url`, connecting only to an address that passed the guard; return status."""
    try:
        return fetch.post_url(url, body.encode("utf-8"), headers, allow_private=allow_private)
    except fetch.FetchError as exc:
        raise DeliveryRefused(exc.message) from None


def _attempt(job: _Job, *, allow_private: bool) -> None:
    secret = endpoint_secret(job.endpoint)
    if secret is None:
        job.error = "the secret cannot be decrypted (SECRET_KEY changed)"
        return
    body = event_body(job.event)
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Steadfast-Webhooks/1",
        "webhook-id": str(job.event.id),
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, str(job.event.id), timestamp, body),
    }
    try:
        job.status_code = post_signed(job.endpoint.url, body, headers, allow_private=allow_private)
        if not job.ok:
            job.error = f"HTTP {job.status_code}"
    except DeliveryRefused as exc:
        job.error = str(exc)[:500]


def live_endpoints_stmt() -> Select[tuple[WebhookEndpoint]]:
    """Select the live endpoints, each locked (SKIP LOCKED) by the scheduler that works it."""
    return (
        select(WebhookEndpoint)
        .where(WebhookEndpoint.active.is_(True), WebhookEndpoint.deleted_at.is_(None))
        .order_by(WebhookEndpoint.id)
        .with_for_update(skip_locked=True)
    )


def due_deliveries_stmt(
    endpoint_id: str, now: datetime, batch: int = BATCH
) -> Select[tuple[WebhookDelivery, Event]]:
    """Select an endpoint's pending deliveries whose retry time has come, with their events."""
    return (
        select(WebhookDelivery, Event)
        .join(Event, Event.id == WebhookDelivery.event_id)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
        )
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(batch)
    )


def deliver_webhooks(now: datetime, *, allow_private: bool, batch: int = BATCH) -> int:
    """Fan new events out to endpoints and POST every due delivery; return how many succeeded.

    Work is read first and written after the POSTs, so on SQLite no write lock is held
    while waiting on a receiver. On PostgreSQL each endpoint row is locked (SKIP LOCKED)
    for the sweep, so two schedulers never deliver the same endpoint's events at once.
    """
    endpoints = db.session.scalars(live_endpoints_stmt()).all()
    jobs: list[_Job] = []
    cursors: dict[str, int] = {}
    for endpoint in endpoints:
        due = db.session.execute(due_deliveries_stmt(endpoint.id, now, batch)).all()
        jobs += [_Job(endpoint, event, delivery) for delivery, event in due]
        events, cursor = read_events(
            practice_id=endpoint.practice_id, after=endpoint.cursor or None, limit=batch
        )
        jobs += [_Job(endpoint, event, None) for event in events]
        if cursor and cursor != endpoint.cursor:
            cursors[endpoint.id] = cursor
    for job in jobs:
        _attempt(job, allow_private=allow_private)
    for endpoint in endpoints:
        if endpoint.id in cursors:
            endpoint.cursor = cursors[endpoint.id]
    return sum(_record(job, now) for job in jobs)


def _record(job: _Job, now: datetime) -> bool:
    delivery = job.delivery
    if delivery is None:
        delivery = WebhookDelivery(
            id=new_id("wd"), endpoint_id=job.endpoint.id, event_id=job.event.id,
            status="pending", attempts=0, next_attempt_at=now, created_at=now,
        )  # fmt: skip
        try:
            with db.session.begin_nested():
                db.session.add(delivery)
        except IntegrityError:
            return False  # already fanned out (a cursor moved back by hand)
    delivery.attempts += 1
    delivery.last_status_code = job.status_code
    delivery.last_error = job.error
    if job.ok:
        delivery.status = "delivered"
        delivery.delivered_at = now
        return True
    if delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = "failed"
        logger.warning("webhook delivery %s failed for good: %s", delivery.id, job.error)
    else:
        delivery.next_attempt_at = now + webhook_backoff(delivery.attempts)
        logger.info("webhook delivery %s attempt %d failed: %s", delivery.id, delivery.attempts,
                    job.error)  # fmt: skip
    return False
