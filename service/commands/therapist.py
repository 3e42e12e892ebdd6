"""`flask therapist …`: create therapists and manage their API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from flask.cli import with_appcontext

from service.audit import Actor, record
from service.commands import fail, parse_now
from service.db import db
from service.models import Therapist
from service.phones import PhoneError, normalize_phone
from service.therapists import (
    DEFAULT_PRACTICE,
    TherapistError,
    create_therapist,
    find_by_email,
    get_or_create_practice,
    issue_token,
    revoke_tokens,
    set_password,
)

group = click.Group("therapist", help="Create therapists and manage their API tokens.")


@group.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option("--practice", "practice_name", default=DEFAULT_PRACTICE, show_default=True)
@click.option("--role", type=click.Choice(["therapist", "admin"]), default="therapist")
@click.option("--phone", default=None, help="For alert texts; E.164 or a national number.")
@click.option("--password", default=None, help="Sign-in password for the dashboard.")
@with_appcontext
def create(
    email: str, name: str, practice_name: str, role: str, phone: str | None, password: str | None
) -> None:
    """Create a therapist and print an API token alone on the last line."""
    from flask import current_app

    now = parse_now(None)
    try:
        if phone:
            phone = normalize_phone(phone, current_app.extensions["settings"].DEFAULT_PHONE_REGION)
        practice = get_or_create_practice(practice_name, now=now)
        therapist = create_therapist(
            email=email,
            name=name,
            practice=practice,
            now=now,
            role=role,
            phone=phone,
            password=password,
        )
        token = issue_token(therapist, now=now)
        record(
            Actor("cli", None, practice.id),
            "therapist.create",
            now=now,
            subject_type="therapist",
            subject_id=therapist.id,
        )
        db.session.commit()
    except (TherapistError, PhoneError) as exc:
        db.session.rollback()
        fail(str(exc))
    click.echo(f"Created {therapist.role} {therapist.email} ({therapist.id}) in {practice.name}.")
    click.echo("API token (shown once; keep it secret):")
    click.echo(token)


def _therapist(email: str) -> Therapist:
    """Return the therapist with this email, or exit non-zero saying there is none."""
    therapist = find_by_email(email)
    if therapist is None:
        fail(f"no therapist with email {email}")
    return therapist


def _audit(therapist: Therapist, action: str, *, now: datetime, **detail: Any) -> None:
    """Record an operator's action on a therapist."""
    record(
        Actor("cli", None, therapist.practice_id), action, now=now,
        subject_type="therapist", subject_id=therapist.id, **detail,
    )  # fmt: skip


@group.command("token")
@click.option("--email", required=True)
@with_appcontext
def token(email: str) -> None:
    """Issue a new API token, printed alone on the last line."""
    now = parse_now(None)
    therapist = _therapist(email)
    value = issue_token(therapist, now=now)
    _audit(therapist, "therapist.token", now=now)
    db.session.commit()
    click.echo(value)


@group.command("revoke-tokens")
@click.option("--email", required=True)
@with_appcontext
def revoke(email: str) -> None:
    """Revoke every API token of a therapist."""
    now = parse_now(None)
    therapist = _therapist(email)
    count = revoke_tokens(therapist, now=now)
    _audit(therapist, "therapist.revoke_tokens", now=now, detail={"revoked": count})
    db.session.commit()
    click.echo(f"Revoked {count} token(s) of {therapist.email}.")


@group.command("set-password")
@click.option("--email", required=True)
@click.password_option()
@with_appcontext
def set_password_command(email: str, password: str) -> None:
    """Set a therapist's dashboard password."""
    now = parse_now(None)
    therapist = _therapist(email)
    try:
        set_password(therapist, password)
    except TherapistError as exc:
        fail(str(exc))
    _audit(therapist, "therapist.set_password", now=now)
    db.session.commit()
    click.echo(f"Password set for {therapist.email}.")
