"""The client page's forms for the profile, SMS consent, the support network and the feed link."""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, redirect, request, url_for
from werkzeug.wrappers import Response

from service import networks
from service.api.schemas.clients import ClientIn
from service.api.schemas.contacts import ContactIn, DisclosureConsentIn
from service.api.schemas.fields import SmsConsentIn
from service.clients import update_client
from service.db import db
from service.errors import Conflict, Invalid
from service.models import Client, SupportContact
from service.schedule import ScheduleError
from service.web import feedlinks
from service.web.base import audit, bp, client_or_404, me, now
from service.web.client_page import render_client
from service.web.forms import (
    CLIENT_SPEC,
    CONTACT_SPEC,
    DISCLOSURE_SPEC,
    SMS_CONSENT_SPEC,
    FormInvalid,
    Spec,
    check,
    client_values,
    core_errors,
    form_body,
    refill,
)

logger = logging.getLogger(__name__)
CORE_ERRORS = (Invalid, Conflict, ScheduleError)


def failed(client: Client, form: str, spec: Spec, errors: dict[str, list[str]]) -> tuple[str, int]:
    """Re-render the client page with one form's errors beside its fields (422)."""
    db.session.rollback()
    return render_client(
        client, errors={form: errors}, values={form: refill(request.form, spec)}, status=422
    )


def done(client: Client, action: str, message: str, anchor: str, **audit_args: Any) -> Response:
    """Audit, commit, say what happened, and go back to the client page section."""
    audit(action, client_id=client.id, **audit_args)
    db.session.commit()
    flash(message, "success")
    return redirect(url_for("web.client_page", client_id=client.id, _anchor=anchor))


def contact_or_404(client: Client, contact_id: str) -> SupportContact:
    """Return a live contact of this client, or 404."""
    contact = db.session.get(SupportContact, contact_id) if len(contact_id) <= 40 else None
    if contact is None or contact.client_id != client.id or contact.archived_at is not None:
        abort(404)
    return contact


@bp.route("/clients/<client_id>/profile", methods=["POST"])
def client_update(client_id: str) -> Any:
    """Save the profile form (validated like PATCH /api/v1/clients/{id})."""
    client = client_or_404(client_id)
    try:
        parsed = check(ClientIn, form_body(request.form, CLIENT_SPEC))
        changed = update_client(
            client, values=client_values(parsed), sms_consent=None, recorded_by=me().id, now=now()
        )
    except FormInvalid as exc:
        return failed(client, "profile", CLIENT_SPEC, exc.errors)
    except CORE_ERRORS as exc:
        return failed(client, "profile", CLIENT_SPEC, core_errors(exc))
    message = "Profile saved." if changed else "Nothing changed."
    return done(
        client,
        "dashboard.client.update",
        message,
        "profile",
        subject_type="client",
        subject_id=client.id,
        detail={"fields": changed},
    )


def _sms_body() -> dict[str, Any]:
    return check(SmsConsentIn, form_body(request.form, SMS_CONSENT_SPEC)).model_dump()


@bp.route("/clients/<client_id>/sms-consent", methods=["POST"])
def client_sms_consent(client_id: str) -> Any:
    """Record a new version of the client's SMS consent."""
    client = client_or_404(client_id)
    try:
        changed = update_client(
            client, values={}, sms_consent=_sms_body(), recorded_by=me().id, now=now()
        )
    except FormInvalid as exc:
        return failed(client, "client_sms", SMS_CONSENT_SPEC, exc.errors)
    message = "SMS consent recorded." if changed else "SMS consent unchanged."
    return done(
        client,
        "dashboard.client.sms_consent",
        message,
        "profile",
        subject_type="client",
        subject_id=client.id,
    )


@bp.route("/clients/<client_id>/contacts", methods=["POST"])
def contact_new(client_id: str) -> Any:
    """Add a person to the support network (validated like POST …/contacts)."""
    client = client_or_404(client_id)
    spec = {**CONTACT_SPEC, **{f"disclosure_consent.{k}": v for k, v in DISCLOSURE_SPEC.items()}}
    body = form_body(request.form, spec)
    if not body.get("disclosure_consent"):
        body.pop("disclosure_consent", None)
    try:
        parsed = check(ContactIn, body)
        contact = networks.create_contact(
            client,
            values=parsed.model_dump(exclude={"sms_consent", "disclosure_consent"}),
            sms_consent=parsed.sms_consent.model_dump(),
            disclosure=parsed.disclosure_consent.model_dump()
            if parsed.disclosure_consent
            else None,
            recorded_by=me().id,
            now=now(),
        )
    except FormInvalid as exc:
        return failed(client, "contact_new", spec, exc.errors)
    except CORE_ERRORS as exc:
        return failed(client, "contact_new", spec, core_errors(exc))
    return done(
        client,
        "dashboard.contact.create",
        f"{contact.display_name} was added.",
        "network",
        subject_type="contact",
        subject_id=contact.id,
    )


@bp.route("/clients/<client_id>/contacts/<contact_id>/sms-consent", methods=["POST"])
def contact_sms_consent(client_id: str, contact_id: str) -> Any:
    """Record a new version of a contact's SMS consent."""
    client = client_or_404(client_id)
    contact = contact_or_404(client, contact_id)
    try:
        changed = networks.update_contact(
            contact, values={}, sms_consent=_sms_body(), disclosure=False,
            recorded_by=me().id, now=now(),
        )  # fmt: skip
    except FormInvalid as exc:
        return failed(client, f"contact_sms:{contact.id}", SMS_CONSENT_SPEC, exc.errors)
    message = "SMS consent recorded." if changed else "SMS consent unchanged."
    return done(
        client,
        "dashboard.contact.sms_consent",
        message,
        f"contact-{contact.id}",
        subject_type="contact",
        subject_id=contact.id,
    )


@bp.route("/clients/<client_id>/contacts/<contact_id>/disclosure", methods=["POST"])
def contact_disclosure(client_id: str, contact_id: str) -> Any:
    """Record a new version of the client's consent to disclose to this contact."""
    client = client_or_404(client_id)
    contact = contact_or_404(client, contact_id)
    try:
        parsed = check(DisclosureConsentIn, form_body(request.form, DISCLOSURE_SPEC))
        networks.record_disclosure(
            contact, values=parsed.model_dump(), recorded_by=me().id, now=now()
        )
    except FormInvalid as exc:
        return failed(client, f"disclosure:{contact.id}", DISCLOSURE_SPEC, exc.errors)
    except (*CORE_ERRORS, ValueError) as exc:
        return failed(client, f"disclosure:{contact.id}", DISCLOSURE_SPEC, core_errors(exc))
    return done(
        client,
        "dashboard.contact.disclosure",
        "Disclosure consent recorded.",
        f"contact-{contact.id}",
        subject_type="contact",
        subject_id=contact.id,
    )


@bp.route("/clients/<client_id>/contacts/<contact_id>/disclosure/revoke", methods=["POST"])
def contact_disclosure_revoke(client_id: str, contact_id: str) -> Any:
    """Revoke the disclosure consent in place for this contact."""
    client = client_or_404(client_id)
    contact = contact_or_404(client, contact_id)
    try:
        networks.revoke_disclosure(contact, recorded_by=me().id, now=now())
    except Conflict as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("web.client_page", client_id=client.id, _anchor="network"))
    return done(
        client,
        "dashboard.contact.disclosure_revoke",
        "Disclosure consent revoked.",
        f"contact-{contact.id}",
        subject_type="contact",
        subject_id=contact.id,
    )


@bp.route("/clients/<client_id>/contacts/<contact_id>/archive", methods=["POST"])
def contact_archive(client_id: str, contact_id: str) -> Any:
    """Remove a person from the network; plans they confirmed fall back to self-report."""
    client = client_or_404(client_id)
    contact = contact_or_404(client, contact_id)
    sources = networks.archive_contact(contact, now=now())
    extra = f" {len(sources)} plan(s) they confirmed are now self-reported." if sources else ""
    return done(
        client,
        "dashboard.contact.archive",
        f"{contact.display_name} was removed.{extra}",
        "network",
        subject_type="contact",
        subject_id=contact.id,
    )


@bp.route("/clients/<client_id>/feed/rotate", methods=["POST"])
def feed_rotate(client_id: str) -> Any:
    """Issue a new calendar feed link; the old one stops working."""
    client = client_or_404(client_id)
    feedlinks.rotate(client, now=now())
    return done(
        client,
        "dashboard.feed.rotate",
        "A new feed link was made; the old one no longer works.",
        "feed",
        subject_type="client",
        subject_id=client.id,
    )


@bp.route("/clients/<client_id>/feed/revoke", methods=["POST"])
def feed_revoke(client_id: str) -> Any:
    """Revoke the calendar feed link."""
    client = client_or_404(client_id)
    feedlinks.revoke(client, now=now())
    return done(
        client,
        "dashboard.feed.revoke",
        "The feed link was revoked.",
        "feed",
        subject_type="client",
        subject_id=client.id,
    )
