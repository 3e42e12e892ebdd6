"""Consent: SMS consent per person and number, disclosure consent per contact, the opt-out list.

Every sender asks here at send time: `sms_consent_granted(subject)`, `is_opted_out(phone)`,
and for texts to a contact about a client, `disclosure_allows(contact, scope, on)`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import Row, Select, select

from service.db import bound_list, db, id_in, in_bound, new_id
from service.events import append_event
from service.models import Client, DisclosureConsent, OptOut, SmsConsent, SupportContact
from service.outbox import enqueue_message
from service.phones import mask

logger = logging.getLogger(__name__)

Subject = Client | SupportContact

OPTIN_FALLBACK = (
    "Steadfast: you're signed up for reminders. Msg frequency varies. "
    "Reply HELP for help, STOP to opt out."
)


def subject_key(subject: Subject) -> str:
    """Return "client:<id>" or "contact:<id>", the key consent versions are kept under."""
    kind = "client" if isinstance(subject, Client) else "contact"
    return f"{kind}:{subject.id}"


def latest_sms_consent(subject: Subject) -> SmsConsent | None:
    """Return the latest SMS consent version of a person, whatever number it was for."""
    return db.session.scalar(
        select(SmsConsent)
        .where(SmsConsent.subject_key == subject_key(subject))
        .order_by(SmsConsent.version.desc())
        .limit(1)
    )


def sms_consent_history(subject: Subject) -> list[SmsConsent]:
    """Return every SMS consent version of a person, oldest first."""
    return list(
        db.session.scalars(
            select(SmsConsent)
            .where(SmsConsent.subject_key == subject_key(subject))
            .order_by(SmsConsent.version)
        )
    )


def sms_consent_granted(subject: Subject) -> bool:
    """Return whether the person consented to texts at their current number.

    The latest version rules; it must be granted, not revoked, and for the number the person
    has now (a new number needs new consent). An archived contact gets no texts.
    """
    if isinstance(subject, SupportContact) and subject.archived_at is not None:
        return False
    return sms_consent_in_effect(subject, latest_sms_consent(subject))


def sms_consent_in_effect(subject: Subject, latest: SmsConsent | Row[Any] | None) -> bool:
    """Return whether `latest`, the person's latest SMS consent version, lets us text them."""
    if isinstance(subject, SupportContact) and subject.archived_at is not None:
        return False
    return (
        latest is not None
        and latest.granted
        and latest.revoked_at is None
        and latest.phone == subject.phone
    )


def latest_sms_consents(subjects: Iterable[Subject]) -> dict[str, SmsConsent]:
    """Return the latest SMS consent version of each person who has one, by `subject_key`.

    The batch form of `latest_sms_consent`: one query for many people.
    """
    keys = sorted({subject_key(subject) for subject in subjects})
    latest: dict[str, SmsConsent] = {}
    if keys:
        stmt = select(SmsConsent).where(id_in(SmsConsent.subject_key, keys))
        for row in db.session.scalars(stmt):
            kept = latest.get(row.subject_key)
            if kept is None or row.version > kept.version:
                latest[row.subject_key] = row
    return latest


def latest_sms_consent_rows(subjects: Iterable[Subject]) -> dict[str, Row[Any]]:
    """`latest_sms_consents` as plain rows of what `sms_consent_in_effect` reads.

    Each row has subject_key, version, granted, revoked_at and phone; nothing is loaded into
    the session, so a sweep deciding for hundreds of people pays for those columns only.
    """
    return latest_sms_consent_rows_by_key(subject_key(subject) for subject in subjects)


def latest_sms_consent_rows_by_key(subject_keys: Iterable[str]) -> dict[str, Row[Any]]:
    """`latest_sms_consent_rows` for people named by their `subject_key`s."""
    keys = sorted(set(subject_keys))
    latest: dict[str, Row[Any]] = {}
    if not keys:
        return latest
    for row in _read_by("sms_consents", keys):
        kept = latest.get(row.subject_key)
        if kept is None or row.version > kept.version:
            latest[row.subject_key] = row
    return latest


def is_opted_out(phone: str) -> bool:
    """Return whether the number is on the suppression list (STOP, invalid, not mobile)."""
    return db.session.get(OptOut, phone) is not None


def opted_out_among(phones: Iterable[str]) -> set[str]:
    """Return which of the numbers are on the suppression list (the batch `is_opted_out`)."""
    wanted = sorted(set(phones))
    if not wanted:
        return set()
    return {row.phone for row in _read_by("opt_outs", wanted)}


def record_sms_consent(
    *,
    practice_id: str,
    subject: Subject,
    granted: bool,
    method: str | None,
    recorded_by: str | None,
    now: datetime,
) -> SmsConsent:
    """Record a new SMS consent version; a fresh grant queues the opt-in confirmation text."""
    was_granted = sms_consent_granted(subject)
    latest = latest_sms_consent(subject)
    if latest is not None and latest.revoked_at is None and latest.granted and not granted:
        latest.revoked_at = now
    is_client = isinstance(subject, Client)
    consent = SmsConsent(
        id=new_id("sc"),
        practice_id=practice_id,
        subject_key=subject_key(subject),
        client_id=subject.id if is_client else None,
        contact_id=None if is_client else subject.id,
        phone=subject.phone,
        version=(latest.version if latest else 0) + 1,
        granted=granted,
        method=method,
        recorded_by=recorded_by,
        recorded_at=now,
    )
    db.session.add(consent)
    db.session.flush()
    client_id = subject.id if isinstance(subject, Client) else subject.client_id
    append_event(
        "consent.granted" if granted else "consent.revoked",
        now=now,
        practice_id=practice_id,
        client_id=client_id,
        subject_type="client" if is_client else "contact",
        subject_id=subject.id,
        payload={"kind": "sms", "version": consent.version, "method": method},
    )
    if granted and not was_granted:
        _queue_optin(consent, subject, client_id=client_id, now=now)
    return consent


def set_sms_consent(
    *, subject: Subject, granted: bool, method: str | None, recorded_by: str | None, now: datetime
) -> SmsConsent | None:
    """Record a new version only when it changes the consent in effect; return it or None."""
    latest = latest_sms_consent(subject)
    effective = sms_consent_granted(subject)
    if granted == effective and (not granted or (latest is not None and latest.method == method)):
        return None
    if not granted and (latest is None or not latest.granted):
        return None
    return record_sms_consent(
        practice_id=subject.practice_id,
        subject=subject,
        granted=granted,
        method=method,
        recorded_by=recorded_by,
        now=now,
    )


def _queue_optin(consent: SmsConsent, subject: Subject, *, client_id: str, now: datetime) -> None:
    if is_opted_out(subject.phone):
        # Carriers require the person to text START after STOP; we may not text them first.
        logger.info("opt-in confirmation not queued: %s is opted out", mask(subject.phone))
        return
    language = subject.language if isinstance(subject, Client) else "en"
    enqueue_message(
        practice_id=consent.practice_id,
        to=subject.phone,
        body=_optin_body(language),
        purpose="optin_confirmation",
        template="optin_confirmation",
        idempotency_key=f"optin:{consent.id}",
        now=now,
        client_id=client_id,
        contact_id=None if isinstance(subject, Client) else subject.id,
    )


def _optin_body(language: str) -> str:
    try:
        from service.notifications.templates import render
    except ImportError:  # pragma: no cover - the templates module ships with the service
        return OPTIN_FALLBACK
    try:
        return render("optin_confirmation", language)
    except (KeyError, ValueError):
        logger.warning("optin_confirmation template unavailable; using the built-in text")
        return OPTIN_FALLBACK


def disclosure_history(contact: SupportContact) -> list[DisclosureConsent]:
    """Return every disclosure consent version for a contact, oldest first."""
    return list(
        db.session.scalars(
            select(DisclosureConsent)
            .where(DisclosureConsent.contact_id == contact.id)
            .order_by(DisclosureConsent.version)
        )
    )


def latest_disclosure(contact: SupportContact) -> DisclosureConsent | None:
    """Return the latest disclosure consent version for a contact, in effect or not."""
    return db.session.scalar(
        select(DisclosureConsent)
        .where(DisclosureConsent.contact_id == contact.id)
        .order_by(DisclosureConsent.version.desc())
        .limit(1)
    )


def record_disclosure_consent(
    *,
    contact: SupportContact,
    granted_on: date,
    expires_on: date | None,
    scope: list[str],
    purpose: str | None,
    recorded_by: str | None,
    now: datetime,
) -> DisclosureConsent:
    """Record a new version of the client's consent to disclose to this contact."""
    if expires_on is not None and expires_on < granted_on:
        raise ValueError("expires_on must be on or after granted_on")
    latest = latest_disclosure(contact)
    consent = DisclosureConsent(
        id=new_id("dc"),
        practice_id=contact.practice_id,
        client_id=contact.client_id,
        contact_id=contact.id,
        version=(latest.version if latest else 0) + 1,
        scope=sorted(set(scope)),
        purpose=purpose,
        granted_on=granted_on,
        expires_on=expires_on,
        recorded_by=recorded_by,
        recorded_at=now,
    )
    db.session.add(consent)
    db.session.flush()
    append_event(
        "consent.granted",
        now=now,
        practice_id=contact.practice_id,
        client_id=contact.client_id,
        subject_type="contact",
        subject_id=contact.id,
        payload={"kind": "disclosure", "version": consent.version, "scope": consent.scope},
    )
    return consent


def revoke_disclosure_consent(
    *, contact: SupportContact, recorded_by: str | None, now: datetime
) -> DisclosureConsent | None:
    """Revoke the latest disclosure consent; return it, or None when there was none to revoke."""
    latest = latest_disclosure(contact)
    if latest is None or latest.revoked_at is not None:
        return None
    latest.revoked_at = now
    append_event(
        "consent.revoked",
        now=now,
        practice_id=contact.practice_id,
        client_id=contact.client_id,
        subject_type="contact",
        subject_id=contact.id,
        payload={"kind": "disclosure", "version": latest.version, "by": recorded_by},
    )
    return latest


def disclosure_in_effect(consent: DisclosureConsent | Row[Any] | None, on: date) -> bool:
    """Return whether a disclosure consent version covers the date `on`."""
    if consent is None or consent.revoked_at is not None:
        return False
    if on < consent.granted_on:
        return False
    return consent.expires_on is None or on <= consent.expires_on


def current_disclosure(contact: SupportContact, on: date) -> DisclosureConsent | None:
    """Return the disclosure consent in effect on `on` (latest version only), or None."""
    if contact.archived_at is not None:
        return None
    latest = latest_disclosure(contact)
    return latest if disclosure_in_effect(latest, on) else None


def disclosure_allows(contact: SupportContact, scope: str, on: date) -> bool:
    """Return whether the client allows telling this contact about `scope` on the date `on`."""
    consent = current_disclosure(contact, on)
    return consent is not None and scope in (consent.scope or [])


def disclosure_version_allows(
    contact: SupportContact, latest: DisclosureConsent | Row[Any] | None, scope: str, on: date
) -> bool:
    """`disclosure_allows`, given the contact's latest disclosure version (or None)."""
    if contact.archived_at is not None or not disclosure_in_effect(latest, on):
        return False
    return scope in (latest.scope or [])  # type: ignore[union-attr]


def latest_disclosures(contacts: Iterable[SupportContact]) -> dict[str, DisclosureConsent]:
    """Return the latest disclosure consent version of each contact that has one, by id."""
    ids = sorted({contact.id for contact in contacts})
    latest: dict[str, DisclosureConsent] = {}
    if ids:
        stmt = select(DisclosureConsent).where(id_in(DisclosureConsent.contact_id, ids))
        for row in db.session.scalars(stmt):
            kept = latest.get(row.contact_id)
            if kept is None or row.version > kept.version:
                latest[row.contact_id] = row
    return latest


def latest_disclosure_rows(contacts: Iterable[SupportContact]) -> dict[str, Row[Any]]:
    """`latest_disclosures` as plain rows of what `disclosure_version_allows` reads.

    Each row has contact_id, version, revoked_at, granted_on, expires_on and scope.
    """
    ids = sorted({contact.id for contact in contacts})
    latest: dict[str, Row[Any]] = {}
    if not ids:
        return latest
    for row in _read_by("disclosures", ids):
        kept = latest.get(row.contact_id)
        if kept is None or row.version > kept.version:
            latest[row.contact_id] = row
    return latest


def _read_by(what: str, values: list[str]) -> list[Row[Any]]:
    """Run one of the batch reads below on a sorted, non-empty list of keys."""
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    params = {"keys": bound_list("postgresql" if postgresql else "sqlite", values)}
    return db.session.execute(_batch_reads(postgresql)[what], params).all()


@functools.cache
def _batch_reads(postgresql: bool) -> dict[str, Select[Any]]:
    """The batch look-ups (Core, plain rows), built once per dialect with the keys bound.

    The same statements `id_in` makes (an array on PostgreSQL, a JSON list on SQLite), but
    built and cache-keyed once instead of once a batch.
    """

    def among(column: Any) -> Any:
        return in_bound(column, "keys", "postgresql" if postgresql else "sqlite")

    sms, opt_outs, disclosures = (
        SmsConsent.__table__,
        OptOut.__table__,
        DisclosureConsent.__table__,
    )
    return {
        "sms_consents": select(
            sms.c.subject_key, sms.c.version, sms.c.granted, sms.c.revoked_at, sms.c.phone
        ).where(among(sms.c.subject_key)),
        "opt_outs": select(opt_outs.c.phone).where(among(opt_outs.c.phone)),
        "disclosures": select(
            disclosures.c.contact_id,
            disclosures.c.version,
            disclosures.c.revoked_at,
            disclosures.c.granted_on,
            disclosures.c.expires_on,
            disclosures.c.scope,
        ).where(among(disclosures.c.contact_id)),
    }
