"""The suppression list in action: opt a number out of every practice (or back in) and say so."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from service import alerts
from service.db import db
from service.events import append_event
from service.models import Client, Message, OptOut, SupportContact
from service.phones import mask

logger = logging.getLogger(__name__)


def people_at(phone: str) -> tuple[list[Client], list[SupportContact]]:
    """Return the clients and (unarchived) contacts of every practice who have this number."""
    clients = db.session.scalars(
        select(Client).where(Client.phone == phone).order_by(Client.created_at, Client.id)
    ).all()
    contacts = db.session.scalars(
        select(SupportContact)
        .where(SupportContact.phone == phone, SupportContact.archived_at.is_(None))
        .order_by(SupportContact.created_at, SupportContact.id)
    ).all()
    return list(clients), list(contacts)


def cancel_queued(phone: str, now: datetime, reason: str = "opted out") -> int:
    """Skip every queued text to the number so nothing more goes out; return how many."""
    result = db.session.execute(
        update(Message)
        .where(
            Message.to_number == phone,
            Message.direction == "outbound",
            Message.status == "queued",
        )
        .values(status="skipped", error_message=reason, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def opt_out_number(
    phone: str,
    *,
    reason: str,
    keyword: str | None,
    now: datetime,
    alert_kind: str = "opted_out",
    source: str = "inbound",
) -> bool:
    """Put the number on the suppression list and cancel its queued texts; True if it is new.

    A new opt-out writes an `sms.opted_out` event per person at the number and raises an
    alert (`alert_kind`) for each active client concerned, in every practice.
    """
    existing = db.session.get(OptOut, phone)
    created = False
    if existing is None:
        try:
            with db.session.begin_nested():
                db.session.add(
                    OptOut(
                        phone=phone,
                        reason=reason,
                        keyword=(keyword or "")[:40] or None,
                        created_at=now,
                    )  # fmt: skip
                )
            created = True
        except IntegrityError:
            existing = db.session.get(OptOut, phone)  # a concurrent STOP won the race
    if existing is not None and reason == "opt_out" and existing.reason != "opt_out":
        # Only START lifts an opt-out; a number marked invalid that texts STOP is now both.
        existing.reason = "opt_out"
        existing.keyword = (keyword or "")[:40] or None
    cancelled = cancel_queued(phone, now)
    if created:
        _announce(phone, reason=reason, alert_kind=alert_kind, source=source, now=now)
        logger.info("%s opted out (%s, %s); %d queued texts cancelled", mask(phone), reason,
                    source, cancelled)  # fmt: skip
    return created


def opt_in_number(phone: str, *, now: datetime) -> bool:
    """Lift a STOP (never an invalid-number mark); return True when the number was opted out."""
    existing = db.session.get(OptOut, phone)
    if existing is None or existing.reason != "opt_out":
        return False
    db.session.delete(existing)
    db.session.flush()
    clients, contacts = people_at(phone)
    for subject in (*clients, *contacts):
        _event("sms.opted_in", subject, now, {})
    logger.info("%s opted back in", mask(phone))
    return True


def _announce(phone: str, *, reason: str, alert_kind: str, source: str, now: datetime) -> None:
    clients, contacts = people_at(phone)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S")
    for subject in (*clients, *contacts):
        _event("sms.opted_out", subject, now, {"reason": reason, "source": source})
        client = (
            subject if isinstance(subject, Client) else db.session.get(Client, subject.client_id)
        )
        if client is None or client.status == "discharged":
            continue
        who = "client" if isinstance(subject, Client) else "contact"
        alerts.raise_alert(
            kind=alert_kind,
            client=client,
            source_type=who,
            source_id=subject.id,
            occurrence=stamp,
            detail={
                "who": who,
                "role": getattr(subject, "role", None),
                "reason": reason,
                "source": source,
                "phone": mask(phone),
            },
            now=now,
        )


def _event(kind: str, subject: Client | SupportContact, now: datetime, payload: dict) -> None:
    is_client = isinstance(subject, Client)
    append_event(
        kind,
        now=now,
        practice_id=subject.practice_id,
        client_id=subject.id if is_client else subject.client_id,
        subject_type="client" if is_client else "contact",
        subject_id=subject.id,
        payload=payload,
    )
