"""Send-time checks: gather what dispatch must know about a claimed message, then decide."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from service import consent
from service.db import db
from service.models import (
    Client,
    DisclosureConsent,
    Message,
    OptOut,
    Practice,
    SmsConsent,
    SupportContact,
)
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


# A day either side of now covers the local calendar day of every zone (UTC-12 to UTC+14).
_DAY_MARGIN = timedelta(hours=36)


@dataclass
class Prefetched:
    """The gate's inputs for a batch of claimed messages, read in a few IN queries.

    Read once, right after the batch's claim is committed and just before its texts go out:
    the same rows gather_facts would read one message at a time. Only numbers in this
    batch are covered (dispatch never has two texts to one number in flight), and a key
    that is not here falls back to the per-message query.
    """

    now: datetime
    clients: dict[str, Client] = field(default_factory=dict)
    contacts: dict[str, SupportContact] = field(default_factory=dict)
    practices: dict[str, Practice] = field(default_factory=dict)
    sms_consents: dict[str, SmsConsent | None] = field(default_factory=dict)
    disclosures: dict[str, DisclosureConsent | None] = field(default_factory=dict)
    phones: frozenset[str] = frozenset()
    opted_out: frozenset[str] = frozenset()
    sent_times: dict[str, list[datetime]] = field(default_factory=dict)


_PREFETCHED: ContextVar[Prefetched | None] = ContextVar("gate_prefetched", default=None)


def _fresh(stmt):  # noqa: ANN001, ANN202
    # Rows already in the session are overwritten with what the database holds now: the
    # dispatcher does not expire its session at each commit, and a check must see a
    # change made since (a discharge, a revoked consent).
    return stmt.execution_options(populate_existing=True)


def _load(model: type, ids: set[str]) -> dict[str, object]:
    if not ids:
        return {}
    return {
        row.id: row for row in db.session.scalars(_fresh(select(model).where(model.id.in_(ids))))
    }


def _latest(rows: Sequence[SmsConsent | DisclosureConsent], key: str) -> dict[str, object]:
    latest: dict[str, object] = {}
    for row in rows:  # ordered by version: the last one per key wins
        latest[getattr(row, key)] = row
    return latest


def prefetch(messages: Sequence[Message], now: datetime) -> Prefetched:
    """Read every input the gate needs for these messages in a handful of queries."""
    pre = Prefetched(now=now)
    pre.contacts = _load(SupportContact, {m.contact_id for m in messages if m.contact_id})
    client_ids = {m.client_id for m in messages if m.client_id}
    client_ids |= {c.client_id for c in pre.contacts.values()}
    pre.clients = _load(Client, client_ids)
    pre.practices = _load(Practice, {m.practice_id for m in messages if m.practice_id})
    subjects: list[Client | SupportContact] = [*pre.clients.values(), *pre.contacts.values()]
    keys = {consent.subject_key(s) for s in subjects}
    if keys:
        rows = db.session.scalars(
            _fresh(
                select(SmsConsent)
                .where(SmsConsent.subject_key.in_(keys))
                .order_by(SmsConsent.subject_key, SmsConsent.version)
            )
        ).all()
        pre.sms_consents = {k: None for k in keys} | _latest(rows, "subject_key")
    if pre.contacts:
        rows = db.session.scalars(
            _fresh(
                select(DisclosureConsent)
                .where(DisclosureConsent.contact_id.in_(pre.contacts))
                .order_by(DisclosureConsent.contact_id, DisclosureConsent.version)
            )
        ).all()
        pre.disclosures = {k: None for k in pre.contacts} | _latest(rows, "contact_id")
    pre.phones = frozenset(m.to_number for m in messages)
    if pre.phones:
        pre.opted_out = frozenset(
            db.session.scalars(select(OptOut.phone).where(OptOut.phone.in_(pre.phones)))
        )
        sent: dict[str, list[datetime]] = {p: [] for p in pre.phones}
        for phone, at in db.session.execute(
            select(Message.to_number, Message.sent_at).where(
                Message.direction == "outbound",
                Message.to_number.in_(pre.phones),
                Message.purpose != "reply",
                Message.sent_at >= now - _DAY_MARGIN,
                Message.sent_at < now + _DAY_MARGIN,
            )
        ):
            sent[phone].append(at)
        pre.sent_times = sent
    return pre


@contextmanager
def prefetched(messages: Sequence[Message], now: datetime) -> Iterator[Prefetched]:
    """Within the block, decide() on these messages at `now` reads the prefetched rows."""
    token = _PREFETCHED.set(prefetch(messages, now))
    try:
        yield _PREFETCHED.get()  # type: ignore[misc]
    finally:
        _PREFETCHED.reset(token)


def _cached(now: datetime | None = None) -> Prefetched | None:
    pre = _PREFETCHED.get()
    return pre if pre is not None and (now is None or pre.now == now) else None


def _get(model: type, key: str, pre: Prefetched | None, table: str) -> object | None:
    if pre is not None:
        rows = getattr(pre, table)
        if key in rows:
            return rows[key]
    return db.session.get(model, key)


def recipient_of(message: Message) -> Recipient:
    """Return who the message is addressed to, from its client, contact and therapist ids."""
    pre = _cached()
    contact = (
        _get(SupportContact, message.contact_id, pre, "contacts") if message.contact_id else None
    )
    client = _get(Client, message.client_id, pre, "clients") if message.client_id else None
    if contact is not None:
        client = client or _get(Client, contact.client_id, pre, "clients")
        return Recipient("contact", client, contact)
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
    pre = _cached(now)
    if pre is not None and phone in pre.sent_times:
        return sum(1 for at in pre.sent_times[phone] if start <= at < end)
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


def _sms_consent_granted(subject: Client | SupportContact) -> bool:
    """consent.sms_consent_granted, on the prefetched latest version when there is one."""
    pre = _cached()
    key = consent.subject_key(subject)
    if pre is None or key not in pre.sms_consents:
        return consent.sms_consent_granted(subject)
    if isinstance(subject, SupportContact) and subject.archived_at is not None:
        return False
    latest = pre.sms_consents[key]
    return (
        latest is not None
        and latest.granted
        and latest.revoked_at is None
        and latest.phone == subject.phone
    )


def _disclosure_allows(contact: SupportContact, scope: str, on) -> bool:  # noqa: ANN001
    """consent.disclosure_allows, on the prefetched latest version when there is one."""
    pre = _cached()
    if pre is None or contact.id not in pre.disclosures:
        return consent.disclosure_allows(contact, scope, on)
    if contact.archived_at is not None:
        return False
    latest = pre.disclosures[contact.id]
    return consent.disclosure_in_effect(latest, on) and scope in (latest.scope or [])


def _is_opted_out(phone: str) -> bool:
    pre = _cached()
    if pre is None or phone not in pre.phones:
        return consent.is_opted_out(phone)
    return phone in pre.opted_out


def gather_facts(message: Message, recipient: Recipient, now: datetime) -> SendFacts:
    """Load the facts send_decision needs, re-read now so a change since queuing counts."""
    subject = recipient.contact if recipient.kind == "contact" else recipient.client
    person = recipient.kind in ("client", "contact") and subject is not None
    # Consent is for a number: a person who changed number since the text was queued
    # has not consented at the old one.
    granted = bool(person and subject.phone == message.to_number and _sms_consent_granted(subject))
    disclosure_ok = True
    zone = recipient.zone
    if recipient.kind == "contact" and recipient.contact is not None:
        scope = disclosure_scope(message.purpose, message.template)
        if scope is not None:
            on = now.astimezone(get_zone(zone)).date() if zone else now.date()
            disclosure_ok = _disclosure_allows(recipient.contact, scope, on)
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
        opted_out=_is_opted_out(message.to_number),
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
    practice = _get(Practice, message.practice_id, _cached(), "practices")
    return practice.sms_from_number if practice is not None and practice.sms_from_number else None
