"""/api/v1/clients/{id}/contacts: the support network and disclosure consents."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, url_for
from sqlalchemy import select

from service import networks
from service.api.common import current_therapist, json_body, merge_patch, now, paginate, validate
from service.api.resources import (
    audit,
    client_or_404,
    commit,
    created,
    get_owned,
    register_core_errors,
)
from service.api.schemas.contacts import (
    ContactIn,
    ContactOut,
    DisclosureConsentIn,
    DisclosureConsentOut,
)
from service.api.schemas.plans import PlanListQuery
from service.api.spec import operation, page_of
from service.models import Client, SupportContact
from service.serialize import contact_dict, disclosure_dict

bp = Blueprint("contacts", __name__, url_prefix="/api/v1")
register_core_errors(bp)
TAGS = ("contacts",)
BASE = "/clients/<client_id>/contacts"


def _view(contact: SupportContact, client: Client) -> dict[str, Any]:
    return contact_dict(contact, on=networks.as_of(client, now()))


def _values(data: ContactIn) -> dict[str, Any]:
    return data.model_dump(include={"display_name", "role", "phone", "timezone", "can_confirm"})


def _disclosure(data: ContactIn) -> dict[str, Any] | None:
    if data.disclosure_consent is None:
        return None
    return data.disclosure_consent.model_dump()


def _document(contact: SupportContact, client: Client) -> dict[str, Any]:
    shown = _view(contact, client)
    doc: dict[str, Any] = {
        "display_name": contact.display_name,
        "role": contact.role,
        "phone": contact.phone,
        "can_confirm": contact.can_confirm,
        "timezone": contact.timezone,
    }
    consent = shown["sms_consent"]
    doc["sms_consent"] = (
        {"granted": True, "method": consent["method"]} if consent["granted"] else {"granted": False}
    )
    disclosure = shown["disclosure_consent"]
    if disclosure is not None:
        doc["disclosure_consent"] = {
            key: disclosure[key]
            for key in ("granted_on", "expires_on", "scope", "purpose")
            if disclosure[key] is not None
        }
    return {key: value for key, value in doc.items() if value is not None}


@operation(bp, BASE, "GET", summary="List a client's support network", query=PlanListQuery,
           response=page_of(ContactOut), tags=TAGS)  # fmt: skip
def list_contacts(client_id: str, query: PlanListQuery) -> Any:
    """The client's sponsors, peers and family; archived ones with include_archived=true."""
    client = client_or_404(client_id)
    stmt = select(SupportContact).where(SupportContact.client_id == client.id)
    if not query.include_archived:
        stmt = stmt.where(SupportContact.archived_at.is_(None))
    page = paginate(stmt, SupportContact.id, lambda c: _view(c, client))
    audit("contact.list", subject_type="contact", client_id=client.id,
          detail={"ids": [item["id"] for item in page["items"]]})  # fmt: skip
    commit()
    return jsonify(page)


@operation(bp, BASE, "POST", summary="Add a support contact", request=ContactIn,
           response=ContactOut, status=201, tags=TAGS)  # fmt: skip
def create_contact(client_id: str) -> Any:
    """Add a sponsor, peer or family member, with their SMS and disclosure consent if given."""
    client = client_or_404(client_id)
    data = validate(ContactIn, json_body())
    contact = networks.create_contact(
        client,
        values=_values(data),
        sms_consent=data.sms_consent.model_dump(),
        disclosure=_disclosure(data),
        recorded_by=current_therapist().id,
        now=now(),
    )
    audit("contact.create", subject_type="contact", subject_id=contact.id, client_id=client.id)
    location = url_for("contacts.get_contact", client_id=client.id, contact_id=contact.id)
    return created(_view(contact, client), location)


@operation(bp, BASE + "/<contact_id>", "GET", summary="Get a support contact",
           response=ContactOut, tags=TAGS)  # fmt: skip
def get_contact(client_id: str, contact_id: str) -> Any:
    """One support contact."""
    client = client_or_404(client_id)
    contact = get_owned(SupportContact, contact_id, client, "contact")
    audit("contact.read", subject_type="contact", subject_id=contact.id, client_id=client.id)
    commit()
    return jsonify(_view(contact, client))


@operation(bp, BASE + "/<contact_id>", "PATCH", summary="Change a support contact (merge patch)",
           request=ContactIn, response=ContactOut, tags=TAGS)  # fmt: skip
def patch_contact(client_id: str, contact_id: str) -> Any:
    """Merge-patch a contact; a changed `sms_consent` or `disclosure_consent` adds a version."""
    client = client_or_404(client_id)
    contact = get_owned(SupportContact, contact_id, client, "contact")
    patch = json_body()
    data = validate(ContactIn, merge_patch(_document(contact, client), patch))
    if "disclosure_consent" not in patch:
        disclosure: Any = False
    else:
        disclosure = _disclosure(data)
    changed = networks.update_contact(
        contact,
        values=_values(data),
        sms_consent=data.sms_consent.model_dump() if "sms_consent" in patch else None,
        disclosure=disclosure,
        recorded_by=current_therapist().id,
        now=now(),
    )
    audit("contact.update", subject_type="contact", subject_id=contact.id, client_id=client.id,
          detail={"fields": changed})  # fmt: skip
    commit()
    return jsonify(_view(contact, client))


@operation(bp, BASE + "/<contact_id>", "DELETE", summary="Archive a support contact",
           response=ContactOut, tags=TAGS)  # fmt: skip
def archive_contact(client_id: str, contact_id: str) -> Any:
    """Archive: no more texts; plans they verified fall back to the client's own report."""
    client = client_or_404(client_id)
    contact = get_owned(SupportContact, contact_id, client, "contact")
    switched = networks.archive_contact(contact, now=now())
    audit("contact.archive", subject_type="contact", subject_id=contact.id, client_id=client.id,
          detail={"now_self_verified": [sid for _, sid in switched]})  # fmt: skip
    commit()
    return jsonify(_view(contact, client))


@operation(bp, BASE + "/<contact_id>/disclosure-consent", "POST",
           summary="Record a disclosure consent (new version)", request=DisclosureConsentIn,
           response=DisclosureConsentOut, status=201, tags=TAGS)  # fmt: skip
def record_disclosure(client_id: str, contact_id: str) -> Any:
    """Record the client's consent to tell this contact about check-ins, misses or urges."""
    client = client_or_404(client_id)
    contact = get_owned(SupportContact, contact_id, client, "contact")
    data = validate(DisclosureConsentIn, json_body())
    row = networks.record_disclosure(
        contact, values=data.model_dump(), recorded_by=current_therapist().id, now=now()
    )
    audit("disclosure_consent.record", subject_type="contact", subject_id=contact.id,
          client_id=client.id, detail={"version": row.version, "scope": row.scope})  # fmt: skip
    location = url_for("contacts.get_contact", client_id=client.id, contact_id=contact.id)
    return created(disclosure_dict(row, on=networks.as_of(client, now())), location)


@operation(bp, BASE + "/<contact_id>/disclosure-consent", "DELETE",
           summary="Revoke the current disclosure consent", response=DisclosureConsentOut,
           tags=TAGS)  # fmt: skip
def revoke_disclosure(client_id: str, contact_id: str) -> Any:
    """Revoke the consent in place; nothing more is disclosed to this contact. 409 if none."""
    client = client_or_404(client_id)
    contact = get_owned(SupportContact, contact_id, client, "contact")
    row = networks.revoke_disclosure(contact, recorded_by=current_therapist().id, now=now())
    audit("disclosure_consent.revoke", subject_type="contact", subject_id=contact.id,
          client_id=client.id, detail={"version": row.version})  # fmt: skip
    commit()
    return jsonify(disclosure_dict(row, on=networks.as_of(client, now())))
