"""`flask sms …`: feed an inbound text through the webhook's handler, list the outbox, send a test."""

from __future__ import annotations

import uuid
from datetime import datetime

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from service.commands import fail, parse_now
from service.db import db, utcnow
from service.models import Message
from service.phones import PhoneError, mask, normalize_phone
from service.serialize import iso

group = click.Group("sms", help="Receive a text locally, list the outbox, send a test text.")


def _now(value: str | None) -> datetime:
    """Return --now, else the app's clock (which tests pin), else the real one."""
    if value:
        return parse_now(value)
    return current_app.extensions.get("clock", utcnow)()


@group.command("receive")
@click.option("--from", "from_number", required=True, help="The sender's number (E.164).")
@click.option("--body", required=True, help="The text as received.")
@click.option("--now", "now_text", default=None, help="The instant (ISO-8601 with offset).")
@with_appcontext
def receive(from_number: str, body: str, now_text: str | None) -> None:
    """Handle an inbound text like POST /twilio/inbound and print the answer (if any)."""
    from service.notifications.inbound import handle_inbound

    settings = current_app.extensions["settings"]
    try:
        result = handle_inbound(
            from_number=from_number,
            to_number=settings.TWILIO_FROM_NUMBER or None,
            body=body,
            now=_now(now_text),
            settings=settings,
        )
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    if result.answer_text:
        click.echo(result.answer_text)


@group.command("outbox")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 500))
@with_appcontext
def outbox(limit: int) -> None:
    """Show the most recent outbound texts, newest first (numbers masked, bodies never shown)."""
    rows = db.session.scalars(
        select(Message)
        .where(Message.direction == "outbound")
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(limit)
    ).all()
    if not rows:
        click.echo("the outbox is empty")
        return
    for m in rows:
        fields = [
            iso(m.created_at),
            m.status,
            m.purpose,
            m.template or "-",
            f"to {mask(m.to_number)}",
            f"attempts {m.attempts}",
            m.provider_sid or "-",
        ]
        if m.error_message:
            fields.append(m.error_message)
        click.echo("  ".join(fields))


@group.command("test")
@click.argument("number")
@with_appcontext
def send_test(number: str) -> None:
    """Queue one test text to NUMBER and dispatch it now through the configured provider."""
    from service.notifications.dispatch import dispatch_outbox
    from service.notifications.templates import render
    from service.outbox import enqueue_message

    settings = current_app.extensions["settings"]
    try:
        phone = normalize_phone(number, settings.DEFAULT_PHONE_REGION)
    except PhoneError as exc:
        fail(str(exc))
    now = _now(None)
    message = enqueue_message(
        practice_id=None,
        to=phone,
        body=render("test_message", "en"),
        purpose="test",
        template="test_message",
        idempotency_key=f"test:{uuid.uuid4().hex}",
        now=now,
    )
    db.session.commit()
    assert message is not None  # a fresh random key cannot collide
    message_id = message.id
    dispatch_outbox(now=now, provider=current_app.extensions["sms"], message_ids=[message_id])
    message = db.session.get(Message, message_id, populate_existing=True)
    if message.status == "sent":
        click.echo(message.provider_sid)
        return
    if message.status == "queued":
        # An operator's test is one try; a retry hours later would only confuse.
        message.status, message.updated_at = "failed", now
        db.session.commit()
    elif message.status == "sending":
        fail(f"the provider may have sent it ({message.error_message}); it will be reconciled")
    fail(f"not sent ({message.status}): {message.error_message or 'no reason given'}")
