"""Send-time checks: gather what dispatch must know about a claimed message, then decide."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from service import consent
from service.db import db
from service.models import Client, Message, Practice, SupportContact
from service.notifications.policy import Decision, SendFacts, disclosure_scope, send_decision
from service.quiet_hours import QuietHours, defer_question, is_quiet
from service.schedule import get_zone, resolve_local

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recipient:
    """Who a message goes to: its kind and the client (and contact) it concerns."""

    kind: str  # "client", "contact", "staff" or "other"
    client: Client | None
    contact: SupportContact | None

    @property
    def zone(self) -> str | None:
        """Return the recipient's zone: the contact's own, else the client's."""
        if self.contact is not None and self.contact.timezone:
            return self.contact.timezone
        return self.client.timezone if self.client is not None else None


def recipient_of(message: Message) -> Recipient:
    """Return who the message is addressed to, from its client, contact and therapist ids."""
    contact = db.session.get(SupportContact, message.contact_id) if message.contact_id else None
    client = db.session.get(Client, message.client_id) if message.client_id else None
    if contact is not None:
        return Recipient("contact", client or db.session.get(Client, contact.client_id), contact)
    if message.therapist_id is not None:
        return Recipient("staff", client, None)
    if client is not None:
        return Recipient("client", client, None)
    return Recipient("staff" if message.purpose in ("alert", "digest") else "other", None, None)


def local_day(now: datetime, zone: str) -> tuple[datetime, datetime]:
    """Return the UTC bounds [start, end) of the local calendar day containing now."""
    tz = get_zone(zone)
    today = now.astimezone(tz).date()
    start = resolve_local(datetime.combine(today, datetime.min.time()), tz)
    end = resolve_local(datetime.combine(today + timedelta(days=1), datetime.min.time()), tz)
    return start, end


def sent_today(phone: str, now: datetime, zone: str) -> int:
    """Count the texts we started that reached the provider today, recipient-local (not replies)."""
    start, end = local_day(now, zone)
    return int(
        db.session.scalar(
            select(func.count(Message.id)).where(
                Message.direction == "outbound",
                Message.to_number == phone,
                Message.purpose != "reply",
                Message.sent_at >= start,
                Message.sent_at < end,
            )
        )
        or 0
    )


def _client_block(client: Client | None, now: datetime) -> str | None:
    if client is None:
        return None
    if client.status == "discharged":
        return "client_discharged"
    if client.status == "paused":
        today = now.astimezone(get_zone(client.timezone)).date()
        if client.paused_until is None or today < client.paused_until:
            return "client_paused"
    return None


def gather_facts(message: Message, recipient: Recipient, now: datetime) -> SendFacts:
    """Load the facts send_decision needs, re-read now so a change since queuing counts."""
    subject = recipient.contact if recipient.kind == "contact" else recipient.client
    person = recipient.kind in ("client", "contact") and subject is not None
    # Consent is for a number: a person who changed number since the text was queued
    # has not consented at the old one.
    granted = bool(
        person and subject.phone == message.to_number and consent.sms_consent_granted(subject)
    )
    disclosure_ok = True
    zone = recipient.zone
    if recipient.kind == "contact" and recipient.contact is not None:
        scope = disclosure_scope(message.purpose, message.template)
        if scope is not None:
            on = now.astimezone(get_zone(zone)).date() if zone else now.date()
            disclosure_ok = consent.disclosure_allows(recipient.contact, scope, on)
    quiet_until = None
    count = 0
    if person and zone and recipient.client is not None:
        quiet = QuietHours.from_strings(recipient.client.quiet_start, recipient.client.quiet_end)
        if is_quiet(now, zone, quiet):
            quiet_until = defer_question(now, zone, quiet)
        count = sent_today(message.to_number, now, zone)
    return SendFacts(
        purpose=message.purpose,
        template=message.template,
        recipient=recipient.kind,
        opted_out=consent.is_opted_out(message.to_number),
        sms_consent=granted,
        disclosure_ok=disclosure_ok,
        client_block=_client_block(recipient.client, now),
        expires_at=message.expires_at,
        created_at=message.created_at,
        quiet_until=quiet_until,
        sent_today=count,
    )


def decide(message: Message, now: datetime, settings: object) -> tuple[Decision, Recipient]:
    """Return the send-time decision for a claimed message and its recipient."""
    recipient = recipient_of(message)
    facts = gather_facts(message, recipient, now)
    decision = send_decision(
        facts,
        now=now,
        daily_cap=int(getattr(settings, "SMS_DAILY_CAP", 6)),
        stale=timedelta(minutes=int(getattr(settings, "STALE_PROMPT_MINUTES", 30))),
    )
    return decision, recipient


def sender_for(message: Message) -> str | None:
    """Return the number to send from: the message's own, else its practice's, else default."""
    if message.from_number:
        return message.from_number
    if message.practice_id is None:
        return None
    practice = db.session.get(Practice, message.practice_id)
    return practice.sms_from_number if practice is not None and practice.sms_from_number else None
