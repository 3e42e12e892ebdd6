"""`flask therapist set-password-link`: a signed, expiring link to choose a dashboard password."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from service.audit import Actor, record
from service.commands import fail, parse_now
from service.commands.therapist import group
from service.db import db
from service.therapists import find_by_email
from service.web.tokens import LINK_MAX_AGE, make_link_token

__all__ = ["group"]


@group.command("set-password-link")
@click.option("--email", required=True)
@click.option("--now", "now_text", default=None, help="ISO-8601 instant (tests only).")
@with_appcontext
def set_password_link(email: str, now_text: str | None) -> None:
    """Print a one-time link (valid 24 hours) where the therapist chooses a password."""
    now = parse_now(now_text)
    therapist = find_by_email(email)
    if therapist is None or not therapist.active:
        fail(f"no active therapist with email {email}")
    settings = current_app.extensions["settings"]
    token = make_link_token(therapist, secret_key=settings.SECRET_KEY, now=now)
    record(Actor("cli", None, therapist.practice_id), "therapist.set_password_link", now=now,
           subject_type="therapist", subject_id=therapist.id)  # fmt: skip
    db.session.commit()
    click.echo(
        f"Set-password link for {therapist.email} (works once, for {LINK_MAX_AGE // 3600} h):"
    )
    click.echo(f"{settings.PUBLIC_BASE_URL}/set-password/{token}")
