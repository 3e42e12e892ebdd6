"""Send-time checks: gather what dispatch must know about a claimed message, then decide.

The inputs are read in one Core statement per batch of claimed texts, right after the
batch's claim is committed and just before its texts go out: one row per text with its
recipient, practice, opt-out, latest consent versions and the recent send times of its
number (for the daily cap). Nothing is kept from one batch to the next.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import String, and_, bindparam, case, func, literal, literal_column, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from service import consent
from service.db import bound_list, db, in_bound, utcnow
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
from service.planning import ClientFacts
from service.quiet_hours import QuietHours, defer_question, is_quiet
from service.schedule import get_zone, resolve_local

logger = logging.getLogger(__name__)

_M = Message.__table__


@dataclass(slots=True)
class Claimed:
    """A claimed outbound text: the columns dispatch uses, as the claim's UPDATE left them."""

    id: str
    practice_id: str | None
    client_id: str | None
    contact_id: str | None
    therapist_id: str | None
    to_number: str
    from_number: str | None
    body: str | None
    purpose: str
    template: str | None
    idempotency_key: str | None
    attempts: int
    send_after: datetime | None
    expires_at: datetime | None
    claimed_at: datetime | None
    created_at: datetime
    status: str = "sending"
    error_code: int | None = None
    error_message: str | None = None
    provider_sid: str | None = None
    segments: int | None = None
    sent_at: datetime | None = None
    updated_at: datetime | None = None


# The claim's RETURNING: Claimed's leading fields, in order.
CLAIMED_COLUMNS = tuple(
    _M.c[name]
    for name in (
        "id", "practice_id", "client_id", "contact_id", "therapist_id", "to_number",
        "from_number", "body", "purpose", "template", "idempotency_key", "attempts",
        "send_after", "expires_at", "claimed_at", "created_at",
    )
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class ContactFacts:
    id: str
    client_id: str
    phone: str
    timezone: str | None
    archived_at: datetime | None


@dataclass(frozen=True)
class Recipient:
    """Who a message goes to: its kind and the client (and contact) it concerns."""

    kind: str  # "client", "contact", "staff" or "other"
    client: ClientFacts | None
    contact: ContactFacts | None

    @property
    def zone(self) -> str | None:
        """Return the recipient's zone: the contact's own, else the client's."""
        if self.contact is not None and self.contact.timezone:
            return self.contact.timezone
        return self.client.timezone if self.client is not None else None


@dataclass(frozen=True, slots=True)
class _Facts:
    """One text's send-time inputs, as one row of the batch's facts query read them."""

    recipient: Recipient
    sender: str | None  # the practice's number
    opted_out: bool
    sms_consent: Any  # latest SMS consent version of the subject: granted, revoked_at, phone
    disclosure: Any  # latest disclosure version of the contact, or None
    sent: str | None  # when texts to the number reached the provider, around now (see below)


# A day either side of now covers the local calendar day of every zone (UTC-12 to UTC+14).
_DAY_MARGIN = timedelta(hours=36)


@dataclass
class Prefetched:
    """The gate's inputs for a batch of claimed messages, read in one statement.

    Only numbers in this batch are covered (dispatch never has two texts to one number in
    flight); a message that is not here is read on its own.
    """

    now: datetime
    facts: dict[str, _Facts] = field(default_factory=dict)


_PREFETCHED: ContextVar[Prefetched | None] = ContextVar("gate_prefetched", default=None)


def facts_statement(ids: Sequence[str]):  # noqa: ANN202
    """The batch's facts query: one row per message id, every recipient fact joined.

    Bind `send_window(now)` when running it (the daily cap's send times).
    """
    dialect = db.session.get_bind().dialect.name
    return _facts_statement(dialect).params(ids=bound_list(dialect, ids))


def _facts_statement(dialect: str):  # noqa: ANN202
    """The facts query for a dialect, its message ids bound as `ids` (built at import)."""
    base = _FACTS_SELECT.get(dialect)
    if base is None:
        base = _FACTS_SELECT[dialect] = _FACTS_BASE.where(in_bound(_M.c.id, "ids", dialect))
    return base


class _JoinedSentAt(FunctionElement[str]):
    """The daily cap's send times of a number as one string of UTC instants, comma-joined.

    Rendered per dialect when compiled, so the facts query is built once for all of them.
    """

    type = String()
    inherit_cache = True
    name = "joined_sent_at"


@compiles(_JoinedSentAt)
def _joined_sent_at_sqlite(element: _JoinedSentAt, compiler: Any, **kw: Any) -> str:
    # SQLite keeps UTC instants as 'YYYY-MM-DD HH:MM:SS.ffffff' text.
    (at,) = element.clauses
    return compiler.process(func.group_concat(at, literal_column("','")), **kw)


@compiles(_JoinedSentAt, "postgresql")
def _joined_sent_at_postgresql(element: _JoinedSentAt, compiler: Any, **kw: Any) -> str:
    (at,) = element.clauses
    instant = func.to_char(
        func.timezone(literal_column("'UTC'"), at), literal_column("'YYYY-MM-DD HH24:MI:SS.US'")
    )
    return compiler.process(func.string_agg(instant, literal_column("','")), **kw)


def _facts_select():  # noqa: ANN202
    ct = SupportContact.__table__.alias("ct")
    cl = Client.__table__.alias("cl")
    pr = Practice.__table__.alias("pr")
    oo = OptOut.__table__.alias("oo")
    sc = SmsConsent.__table__.alias("sc")
    sc2 = SmsConsent.__table__.alias("sc2")
    dc = DisclosureConsent.__table__.alias("dc")
    dc2 = DisclosureConsent.__table__.alias("dc2")
    # The consent subject: the contact when the text is to one, else the client.
    subject = case(
        (ct.c.id.is_not(None), literal("contact:") + ct.c.id),
        (cl.c.id.is_not(None), literal("client:") + cl.c.id),
    )
    latest_sc = (
        select(func.max(sc2.c.version)).where(sc2.c.subject_key == subject).scalar_subquery()
    )
    latest_dc = select(func.max(dc2.c.version)).where(dc2.c.contact_id == ct.c.id).scalar_subquery()
    # The daily cap's input: when the texts we started to this number reached the provider
    # (not replies), within a day and a half either side of now (every zone's local day),
    # as one string of UTC instants (one row per text, not per send).
    m2 = _M.alias("m2")
    joined_times = _JoinedSentAt(m2.c.sent_at)
    sent = (
        select(joined_times)
        .where(
            m2.c.to_number == _M.c.to_number,
            m2.c.direction == "outbound",
            m2.c.purpose != "reply",
            m2.c.sent_at >= bindparam("sent_from", type_=m2.c.sent_at.type),
            m2.c.sent_at < bindparam("sent_until", type_=m2.c.sent_at.type),
        )
        .scalar_subquery()
    )
    joined = (
        _M.outerjoin(ct, ct.c.id == _M.c.contact_id)
        .outerjoin(cl, cl.c.id == func.coalesce(_M.c.client_id, ct.c.client_id))
        .outerjoin(pr, pr.c.id == _M.c.practice_id)
        .outerjoin(oo, oo.c.phone == _M.c.to_number)
        .outerjoin(sc, and_(sc.c.subject_key == subject, sc.c.version == latest_sc))
        .outerjoin(dc, and_(dc.c.contact_id == ct.c.id, dc.c.version == latest_dc))
    )
    return select(
        _M.c.id, _M.c.therapist_id, _M.c.purpose,
        ct.c.id, ct.c.client_id, ct.c.phone, ct.c.timezone, ct.c.archived_at,
        cl.c.id, cl.c.status, cl.c.paused_until, cl.c.timezone, cl.c.quiet_start,
        cl.c.quiet_end, cl.c.phone,
        pr.c.sms_from_number, oo.c.phone,
        sc.c.id, sc.c.granted, sc.c.revoked_at, sc.c.phone,
        dc.c.id, dc.c.revoked_at, dc.c.granted_on, dc.c.expires_on, dc.c.scope, sent,
    ).select_from(joined)  # fmt: skip


# Built once at import (the aliases and joins cost to set up, and to walk for a cache key),
# with the message ids left unbound for each dialect's list.
_FACTS_BASE = _facts_select()
_FACTS_SELECT: dict[str, Any] = {}
for _dialect in ("sqlite", "postgresql"):
    _facts_statement(_dialect)


@dataclass(frozen=True, slots=True)
class _SmsConsent:
    granted: bool
    revoked_at: datetime | None
    phone: str


@dataclass(frozen=True, slots=True)
class _Disclosure:
    revoked_at: datetime | None
    granted_on: date
    expires_on: date | None
    scope: list[Any] | None


def _facts_of(row: Sequence[Any]) -> _Facts:
    (_, therapist_id, purpose, ct_id, ct_client, ct_phone, ct_zone, ct_archived, cl_id,
     cl_status, cl_paused, cl_zone, cl_qs, cl_qe, cl_phone, sender, opted, sc_id, sc_granted,
     sc_revoked, sc_phone, dc_id, dc_revoked, dc_on, dc_expires, dc_scope, sent) = row  # fmt: skip
    contact = (
        ContactFacts(ct_id, ct_client, ct_phone, ct_zone, ct_archived)
        if ct_id is not None
        else None
    )
    client = (
        ClientFacts(cl_id, cl_status, cl_paused, cl_zone, cl_qs, cl_qe, cl_phone)
        if cl_id is not None
        else None
    )
    if contact is not None:
        recipient = Recipient("contact", client, contact)
    elif therapist_id is not None:
        recipient = Recipient("staff", client, None)
    elif client is not None:
        recipient = Recipient("client", client, None)
    else:
        recipient = Recipient("staff" if purpose in ("alert", "digest") else "other", None, None)
    return _Facts(
        recipient=recipient,
        sender=sender,
        opted_out=opted is not None,
        sms_consent=_SmsConsent(bool(sc_granted), sc_revoked, sc_phone) if sc_id else None,
        disclosure=_Disclosure(dc_revoked, dc_on, dc_expires, dc_scope) if dc_id else None,
        sent=sent,
    )


def send_window(now: datetime) -> dict[str, datetime]:
    """The daily cap's reach: every zone's local day around `now` lies within it."""
    return {"sent_from": now - _DAY_MARGIN, "sent_until": now + _DAY_MARGIN}


def prefetch(messages: Sequence[Any], now: datetime) -> Prefetched:
    """Read every input the gate needs for these messages in one statement."""
    pre = Prefetched(now=now)
    if not messages:
        return pre
    dialect = db.session.get_bind().dialect.name
    params = {"ids": bound_list(dialect, [m.id for m in messages]), **send_window(now)}
    rows = db.session.execute(_facts_statement(dialect), params)
    pre.facts = {row[0]: _facts_of(row) for row in rows}
    return pre


@contextmanager
def prefetched(messages: Sequence[Any], now: datetime) -> Iterator[Prefetched]:
    """Within the block, decide() on these messages at `now` reads the prefetched rows."""
    token = _PREFETCHED.set(prefetch(messages, now))
    try:
        yield _PREFETCHED.get()  # type: ignore[misc]
    finally:
        _PREFETCHED.reset(token)


def _inputs(message: Any, now: datetime) -> tuple[_Facts, Prefetched]:
    """The message's facts from the batch read, or read now for it alone."""
    pre = _PREFETCHED.get()
    if pre is None or pre.now != now or message.id not in pre.facts:
        pre = prefetch([message], now)
    if message.id not in pre.facts:
        raise LookupError(f"message {message.id} not found")
    return pre.facts[message.id], pre


def recipient_of(message: Any) -> Recipient:
    """Return who the message is addressed to, from its client, contact and therapist ids."""
    pre = _PREFETCHED.get()
    return _inputs(message, pre.now if pre is not None else utcnow())[0].recipient


@lru_cache(maxsize=256)  # a pure function of its arguments; a batch shares a few zones
def local_day(now: datetime, zone: str) -> tuple[datetime, datetime]:
    """Return the UTC bounds [start, end) of the local calendar day containing now."""
    tz = get_zone(zone)
    today = now.astimezone(tz).date()
    start = resolve_local(datetime.combine(today, datetime.min.time()), tz)
    end = resolve_local(datetime.combine(today + timedelta(days=1), datetime.min.time()), tz)
    return start, end


@lru_cache(maxsize=256)  # a pure function of its arguments; a batch shares a few zones
def _quiet_until(now: datetime, zone: str, start: str, end: str) -> datetime | None:
    """Return when the recipient's quiet hours end if now is inside them, else None."""
    quiet = QuietHours.from_strings(start, end)
    return defer_question(now, zone, quiet) if is_quiet(now, zone, quiet) else None


def _sent_today(sent: str | None, now: datetime, zone: str) -> int:
    """Count the texts we started that reached the provider today, recipient-local (not replies).

    `sent` is the facts query's comma-joined UTC instants around now (None: none).
    """
    if not sent:
        return 0
    start, end = local_day(now, zone)
    times = (datetime.fromisoformat(at).replace(tzinfo=UTC) for at in sent.split(","))
    return sum(1 for at in times if start <= at < end)


def _client_block(client: ClientFacts | None, now: datetime) -> str | None:
    if client is None:
        return None
    if client.status == "discharged":
        return "client_discharged"
    if client.status == "paused":
        today = now.astimezone(get_zone(client.timezone)).date()
        if client.paused_until is None or today < client.paused_until:
            return "client_paused"
    return None


def _sms_consent_granted(subject: ClientFacts | ContactFacts, latest: Any) -> bool:
    """consent.sms_consent_granted on the subject's latest version (read with the batch)."""
    if isinstance(subject, ContactFacts) and subject.archived_at is not None:
        return False
    return (
        latest is not None
        and latest.granted
        and latest.revoked_at is None
        and latest.phone == subject.phone
    )


def _disclosure_allows(contact: ContactFacts, latest: Any, scope: str, on: date) -> bool:
    """consent.disclosure_allows on the contact's latest version (read with the batch)."""
    if contact.archived_at is not None:
        return False
    return consent.disclosure_in_effect(latest, on) and scope in (latest.scope or [])


def gather_facts(message: Any, now: datetime) -> tuple[SendFacts, Recipient]:
    """Return the facts send_decision needs, read after the claim so a change since counts."""
    facts, pre = _inputs(message, now)
    recipient = facts.recipient
    subject = recipient.contact if recipient.kind == "contact" else recipient.client
    person = recipient.kind in ("client", "contact") and subject is not None
    # Consent is for a number: a person who changed number since the text was queued
    # has not consented at the old one.
    granted = bool(
        person
        and subject.phone == message.to_number
        and _sms_consent_granted(subject, facts.sms_consent)
    )
    disclosure_ok = True
    zone = recipient.zone
    if recipient.kind == "contact" and recipient.contact is not None:
        scope = disclosure_scope(message.purpose, message.template)
        if scope is not None:
            on = now.astimezone(get_zone(zone)).date() if zone else now.date()
            disclosure_ok = _disclosure_allows(recipient.contact, facts.disclosure, scope, on)
    quiet_until = None
    count = 0
    if person and zone and recipient.client is not None:
        client = recipient.client
        quiet_until = _quiet_until(now, zone, client.quiet_start, client.quiet_end)
        count = _sent_today(facts.sent, now, zone)
    return SendFacts(
        purpose=message.purpose,
        template=message.template,
        recipient=recipient.kind,
        opted_out=facts.opted_out,
        sms_consent=granted,
        disclosure_ok=disclosure_ok,
        client_block=_client_block(recipient.client, now),
        expires_at=message.expires_at,
        created_at=message.created_at,
        quiet_until=quiet_until,
        sent_today=count,
    ), recipient


def decide(message: Any, now: datetime, settings: object) -> tuple[Decision, Recipient]:
    """Return the send-time decision for a claimed message and its recipient."""
    facts, recipient = gather_facts(message, now)
    decision = send_decision(
        facts,
        now=now,
        daily_cap=int(getattr(settings, "SMS_DAILY_CAP", 6)),
        stale=timedelta(minutes=int(getattr(settings, "STALE_PROMPT_MINUTES", 30))),
    )
    return decision, recipient


def sender_for(message: Any) -> str | None:
    """Return the number to send from: the message's own, else its practice's, else default."""
    if message.from_number:
        return message.from_number
    if message.practice_id is None:
        return None
    pre = _PREFETCHED.get()
    facts = _inputs(message, pre.now if pre is not None else utcnow())[0]
    return facts.sender or None
