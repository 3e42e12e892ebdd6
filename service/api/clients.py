"""/api/v1/clients: the caseload, one client, discharge, reassignment and the record export."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, url_for
from pydantic import Field
from sqlalchemy import func, select

from service import clients as core
from service.api.common import (
    current_therapist,
    json_body,
    merge_patch,
    now,
    paginate,
    require_admin,
    validate,
)
from service.api.resources import (
    audit,
    client_or_404,
    commit,
    created,
    practice_id,
    register_core_errors,
    validation_context,
)
from service.api.schemas.clients import ClientIn, ClientOut, ReassignIn
from service.api.schemas.export import ClientExport
from service.api.schemas.fields import ClientStatus, Id
from service.api.schemas.meetings import SearchText
from service.api.spec import PageQuery, operation, page_of
from service.db import db
from service.errors import Invalid
from service.export import export_client
from service.meetings import escape_like
from service.models import Client, Therapist
from service.serialize import client_dict, client_dicts

bp = Blueprint("clients", __name__, url_prefix="/api/v1")
register_core_errors(bp)
TAGS = ("clients",)


class ClientQuery(PageQuery):
    """Filters of the client list."""

    status: ClientStatus | None = None
    q: SearchText | None = Field(None, description="Part of the display name.")
    therapist_id: Id | None = Field(None, description="Only this therapist's caseload.")


def values_of(data: ClientIn) -> dict[str, Any]:
    """Return the model columns a validated client body sets."""
    values = data.model_dump(exclude={"sms_consent", "quiet_hours", "therapist_id"})
    values["quiet_start"] = data.quiet_hours.start
    values["quiet_end"] = data.quiet_hours.end
    return values


def document(client: Client) -> dict[str, Any]:
    """Return the client's writable fields in the shape of ClientIn (the merge-patch target)."""
    shown = client_dict(client)
    doc = {key: shown[key] for key in ClientIn.model_fields if key in shown}
    doc["therapist_id"] = client.therapist_id
    consent = shown["sms_consent"]
    doc["sms_consent"] = (
        {"granted": True, "method": consent["method"]} if consent["granted"] else {"granted": False}
    )
    return {key: value for key, value in doc.items() if value is not None}


@operation(bp, "/clients", "GET", summary="List clients", query=ClientQuery,
           response=page_of(ClientOut), tags=TAGS)  # fmt: skip
def list_clients(query: ClientQuery) -> Any:
    """The practice's clients, oldest first; filter by status, therapist or part of the name."""
    stmt = select(Client).where(Client.practice_id == practice_id())
    if query.status is not None:
        stmt = stmt.where(Client.status == query.status)
    if query.therapist_id is not None:
        stmt = stmt.where(Client.therapist_id == query.therapist_id)
    if query.q:
        pattern = f"%{escape_like(query.q.lower())}%"
        stmt = stmt.where(func.lower(Client.display_name).like(pattern, escape="\\"))
    page = paginate(stmt, Client.id, client_dict, serialize_page=client_dicts)
    audit("client.list", subject_type="client",
          detail={"ids": [item["id"] for item in page["items"]]})  # fmt: skip
    commit()
    return jsonify(page)


@operation(bp, "/clients", "POST", summary="Create a client", request=ClientIn,
           response=ClientOut, status=201, tags=TAGS, errors=(403,))  # fmt: skip
def create_client() -> Any:
    """Create a client of the caller (or, for admins, of `therapist_id`)."""
    data = validate(ClientIn, json_body(), context=validation_context())
    therapist = _therapist_for(data.therapist_id)
    client = core.create_client(
        practice_id=practice_id(),
        therapist=therapist,
        values=values_of(data),
        sms_consent=data.sms_consent.model_dump(),
        recorded_by=current_therapist().id,
        now=now(),
    )
    audit("client.create", subject_type="client", subject_id=client.id, client_id=client.id)
    return created(client_dict(client), url_for("clients.get_client", client_id=client.id))


def _therapist_for(therapist_id: str | None) -> Therapist:
    me = current_therapist()
    if therapist_id is None or therapist_id == me.id:
        return me
    require_admin()
    therapist = db.session.get(Therapist, therapist_id)
    if therapist is None or therapist.practice_id != me.practice_id:
        raise Invalid("therapist_id", "no therapist with this id in your practice")
    return therapist


@operation(bp, "/clients/<client_id>", "GET", summary="Get a client", response=ClientOut,
           tags=TAGS)  # fmt: skip
def get_client(client_id: str) -> Any:
    """One client."""
    client = client_or_404(client_id)
    audit("client.read", subject_type="client", subject_id=client.id, client_id=client.id)
    commit()
    return jsonify(client_dict(client))


@operation(bp, "/clients/<client_id>", "PATCH", summary="Change a client (JSON merge patch)",
           request=ClientIn, response=ClientOut, tags=TAGS, errors=(403,))  # fmt: skip
def patch_client(client_id: str) -> Any:
    """Merge-patch a client; `status: discharged` discharges, a changed `therapist_id` reassigns."""
    client = client_or_404(client_id)
    current = document(client)
    patch = json_body()
    if patch.get("status") not in (None, "paused") and "paused_until" not in patch:
        current.pop("paused_until", None)  # leaving a pause ends it
    data = validate(ClientIn, merge_patch(current, patch), context=validation_context())
    if data.therapist_id not in (None, client.therapist_id):
        core.reassign_client(client, _therapist_for(data.therapist_id), now=now())
    values = values_of(data)
    changed = core.update_client(
        client,
        values=values,
        sms_consent=data.sms_consent.model_dump() if "sms_consent" in patch else None,
        recorded_by=current_therapist().id,
        now=now(),
    )
    audit("client.update", subject_type="client", subject_id=client.id, client_id=client.id,
          detail={"fields": changed})  # fmt: skip
    commit()
    return jsonify(client_dict(client))


@operation(bp, "/clients/<client_id>", "DELETE", summary="Discharge a client",
           response=ClientOut, tags=TAGS)  # fmt: skip
def discharge_client(client_id: str) -> Any:
    """Discharge: status becomes discharged, the record stays, future texts stop."""
    client = client_or_404(client_id)
    core.discharge_client(client, now=now())
    audit("client.discharge", subject_type="client", subject_id=client.id, client_id=client.id)
    commit()
    return jsonify(client_dict(client))


@operation(bp, "/clients/<client_id>/reassign", "POST", summary="Reassign a client (admins)",
           request=ReassignIn, response=ClientOut, tags=TAGS, errors=(403,))  # fmt: skip
def reassign_client(client_id: str) -> Any:
    """Move the client to another active therapist of the practice."""
    client = client_or_404(client_id)
    require_admin()
    data = validate(ReassignIn, json_body())
    previous = client.therapist_id
    therapist = db.session.get(Therapist, data.therapist_id)
    if therapist is None or therapist.practice_id != client.practice_id:
        raise Invalid("therapist_id", "no therapist with this id in your practice")
    core.reassign_client(client, therapist, now=now())
    audit("client.reassign", subject_type="client", subject_id=client.id, client_id=client.id,
          detail={"from": previous, "to": therapist.id})  # fmt: skip
    commit()
    return jsonify(client_dict(client))


@operation(bp, "/clients/<client_id>/export", "GET", summary="Export a client's whole record",
           response=ClientExport, tags=TAGS)  # fmt: skip
def export(client_id: str) -> Any:
    """Everything held about the client (the right of access), as one JSON document."""
    client = client_or_404(client_id)
    # Audit first, so the export's own audit section shows this access.
    audit("client.export", subject_type="client", subject_id=client.id, client_id=client.id)
    db.session.flush()
    body = export_client(client, now=now())
    commit()
    return jsonify(body)
