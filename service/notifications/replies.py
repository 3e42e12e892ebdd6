"""What an answer to an inbound text does: close the right check-in, or help with an urge."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, or_, select

from service import consent
from service.checkins import (
    LATE_REPLY_WINDOW,
    late_reply_candidates,
    open_prompts_for,
    record_reply,
)
from service.db import db, new_id
from service.models import CheckIn, Client, Message, SupportContact
from service.notifications import grammar, gsm
from service.notifications.templates import render
from service.outbox import enqueue_message
from service.schedule import get_zone

logger = logging.getLogger(__name__)

# "Can you call them now?" is worth sending for this long after the client asked.
URGE_REQUEST_LIFETIME = timedelta(minutes=30)


def responder_of(checkin: CheckIn) -> str:
    """Return who answered a check-in by text, as a subject key (never the phone number)."""
    if checkin.verifier_contact_id:
        return f"contact:{checkin.verifier_contact_id}"
    return f"client:{checkin.client_id}"


def pick_checkin(
    open_prompts: list[CheckIn], late: list[CheckIn], code: str | None
) -> tuple[CheckIn | None, list[str]]:
    """Choose the check-in an answer is for; else return the open codes to ask about.

    With a code, only the prompt carrying it (open, else closed within the late window);
    without, the one open prompt, else the one late candidate. Never a guess.
    """
    codes = [p.prompt_code.upper() for p in open_prompts if p.prompt_code]
    if code is not None:
        for row in (*open_prompts, *late):
            if (row.prompt_code or "").upper() == code.upper():
                return row, []
        return None, codes
    if len(open_prompts) == 1:
        return open_prompts[0], []
    if open_prompts:
        return None, codes
    if len(late) == 1:
        return late[0], []
    return None, []


def answer_prompt(
    phone: str,
    reply: grammar.Reply,
    intent: str,
    now: datetime,
    language: str,
    *,
    candidates: tuple[list[CheckIn], list[CheckIn]] | None = None,
) -> tuple[str | None, str | None, str]:
    """Record a 1/2 answer on the right check-in; return (template, answer, action).

    `candidates`: (open prompts, late-reply candidates) of the number when the caller has
    read them already (answerable_checkins); else they are read here.
    """
    if candidates is None:
        candidates = open_prompts_for(phone, now), late_reply_candidates(phone, now)
    open_prompts, late = candidates
    row, codes = pick_checkin(open_prompts, late, reply.code)
    if row is not None:
        record_reply(row, intent, responder=responder_of(row), channel="sms", now=now)
        return None, None, "confirmed" if intent == grammar.CONFIRM else "declined"
    if codes:
        return "clarify_codes", render("clarify_codes", language, codes=codes), "clarify"
    return "didnt_understand", render("didnt_understand", language), "nothing_open"


# The prompted and recently missed check-ins of some clients, through ix_checkins_client_due:
# proportional to those clients' check-ins, not to every open prompt of every practice.
_OPEN_OR_LATE = select(CheckIn).where(
    CheckIn.client_id.in_(bindparam("client_ids", expanding=True)),
    or_(
        CheckIn.status == "prompted",
        and_(
            CheckIn.status == "missed",
            CheckIn.prompted_at.is_not(None),
            CheckIn.closes_at >= bindparam("since"),
        ),
    ),
)


def answerable_checkins(
    clients: list[Client], contacts: list[SupportContact], now: datetime
) -> tuple[list[CheckIn], list[CheckIn]]:
    """Return (open_prompts_for, late_reply_candidates) of the number these people share.

    The same rows in the same order as those two (a check-in answered by its client when it
    has no verifier, else by its verifier contact), given the clients and every contact,
    archived or not, who have the number. A verifier is always a contact of the check-in's
    client (plans.resolve_verifier), so the clients to read are known before the query.
    """
    client_ids = {c.id for c in clients}
    contact_ids = {c.id for c in contacts}
    wanted = client_ids | {c.client_id for c in contacts}
    if not wanted:
        return [], []
    open_prompts: list[CheckIn] = []
    late: list[CheckIn] = []
    params = {"client_ids": sorted(wanted), "since": now - LATE_REPLY_WINDOW}
    for row in db.session.scalars(_OPEN_OR_LATE, params):
        verifier = row.verifier_contact_id
        if verifier in contact_ids if verifier else row.client_id in client_ids:
            (open_prompts if row.status == "prompted" else late).append(row)
    # ORDER BY prompted_at, id and ORDER BY closes_at DESC, id (check-in ids are unique).
    open_prompts.sort(key=lambda r: (r.prompted_at is not None, r.prompted_at or now, r.id))
    late.sort(key=lambda r: r.id)
    late.sort(key=lambda r: r.closes_at, reverse=True)
    return open_prompts, late


def first_sponsor(client: Client) -> SupportContact | None:
    """Return the client's first sponsor still in their network."""
    return db.session.scalar(
        select(SupportContact)
        .where(
            SupportContact.client_id == client.id,
            SupportContact.role == "sponsor",
            SupportContact.archived_at.is_(None),
        )
        .order_by(SupportContact.created_at, SupportContact.id)
        .limit(1)
    )


def urge_answer(client: Client, inbound: Message, now: datetime) -> tuple[str, str]:
    """Answer URGE with the coping plan and the sponsor's number; ask the sponsor to call."""
    sponsor = first_sponsor(client)
    text = render(
        "urge_client",
        client.language,
        plan=client.coping_plan or "",
        sponsor_name=sponsor.display_name if sponsor else None,
        sponsor_phone=sponsor.phone if sponsor else None,
    )
    if sponsor is not None and _may_ask(sponsor, client, now):
        enqueue_message(
            practice_id=client.practice_id,
            to=sponsor.phone,
            # A contact learns the client's initial only; the `urge` scope was checked.
            body=render("urge_sponsor_request", "en", client_name=client.display_name),
            purpose="urge_request",
            template="urge_sponsor_request",
            idempotency_key=f"urge:{inbound.id}:{sponsor.id}",
            now=now,
            client_id=client.id,
            contact_id=sponsor.id,
            expires_at=now + URGE_REQUEST_LIFETIME,
        )
    return "urge_client", text


def _may_ask(sponsor: SupportContact, client: Client, now: datetime) -> bool:
    zone = sponsor.timezone or client.timezone
    today = now.astimezone(get_zone(zone)).date()
    return (
        not consent.is_opted_out(sponsor.phone)
        and consent.sms_consent_granted(sponsor)
        and consent.disclosure_allows(sponsor, "urge", today)
    )


def reply_values(
    inbound: Mapping[str, Any] | Message, answer: str, template: str | None, now: datetime
) -> dict[str, Any]:
    """Return the columns of the outbound `reply` row for an answer sent in the webhook response.

    `inbound`: the inbound text's row, or its columns as inserted.
    """
    if isinstance(inbound, Message):
        inbound = {c: getattr(inbound, c) for c in _INBOUND_COLUMNS}
    return {
        "id": new_id("ms"),
        "practice_id": inbound["practice_id"],
        "client_id": inbound["client_id"],
        "contact_id": inbound["contact_id"],
        "direction": "outbound",
        "to_number": inbound["from_number"] or "",
        "from_number": inbound["to_number"] or None,
        "body": answer,
        "purpose": "reply",
        "provider_sid": None,
        "template": template,
        "idempotency_key": f"reply:{inbound['id']}",
        "status": "sent",
        "attempts": 1,
        "segments": gsm.segments(answer),
        "send_after": now,
        "sent_at": now,
        "created_at": now,
        "updated_at": now,
    }


_INBOUND_COLUMNS = ("id", "practice_id", "client_id", "contact_id", "from_number", "to_number")


def reply_row(inbound: Message, answer: str, template: str | None, now: datetime) -> Message:
    """Return the outbound `reply` row for an answer sent in the webhook response itself."""
    return Message(**reply_values(inbound, answer, template, now))
