"""The dashboard blueprint and what every page shares: the clock, the actor, tenancy lookups."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, g, request
from flask_login import current_user
from sqlalchemy import select

from service.audit import Actor, record
from service.db import db, utcnow
from service.models import Alert, Client, Therapist

logger = logging.getLogger(__name__)

bp = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/assets",
)


def now() -> datetime:
    """Return the request's instant: the app clock, which tests may pin."""
    if "web_now" not in g:
        g.web_now = current_app.extensions.get("clock", utcnow)()
    return g.web_now


def settings() -> Any:
    """Return the app's parsed Settings."""
    return current_app.extensions["settings"]


def me() -> Therapist:
    """Return the signed-in therapist."""
    return current_user.therapist


def is_admin() -> bool:
    """Return whether the signed-in therapist administers their practice."""
    return bool(current_user.is_authenticated and me().role == "admin")


def actor() -> Actor:
    """Return the audit actor for this request."""
    therapist = me()
    return Actor("therapist", therapist.id, therapist.practice_id, request.remote_addr)


def audit(action: str, *, client_id: str | None = None, **kwargs: Any) -> None:
    """Append an audit entry for this request (committed with the page's unit of work)."""
    record(actor(), action, now=now(), client_id=client_id, **kwargs)


def local_today(zone: str) -> date:
    """Return today's date in a time zone."""
    return now().astimezone(ZoneInfo(zone)).date()


def client_or_404(client_id: str) -> Client:
    """Return a client of the therapist's practice, or 404 exactly like an unknown id."""
    client = db.session.scalar(
        select(Client).where(Client.id == client_id, Client.practice_id == me().practice_id)
    )
    if client is None:
        abort(404)
    return client


def alert_or_404(alert_id: str) -> Alert:
    """Return an alert of the therapist's practice, or 404 exactly like an unknown id."""
    alert = db.session.scalar(
        select(Alert).where(Alert.id == alert_id, Alert.practice_id == me().practice_id)
    )
    if alert is None:
        abort(404)
    return alert


def practice_therapists() -> list[Therapist]:
    """Return the active therapists of the signed-in therapist's practice, by name."""
    return list(
        db.session.scalars(
            select(Therapist)
            .where(Therapist.practice_id == me().practice_id, Therapist.active.is_(True))
            .order_by(Therapist.name)
        )
    )
