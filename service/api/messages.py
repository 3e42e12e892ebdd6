"""/api/v1/messages and /api/v1/audit: the practice's SMS log and audit trail."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from sqlalchemy import select

from service.api.common import paginate
from service.api.resources import audit, client_or_404, commit, practice_id
from service.api.schemas.messages import AuditOut, AuditQuery, MessageOut, MessageQuery
from service.api.spec import operation, page_of
from service.models import AuditEntry, Message
from service.serialize import audit_dict, message_dict

bp = Blueprint("messages", __name__, url_prefix="/api/v1")


@operation(bp, "/messages", "GET", summary="List texts (the SMS log)", query=MessageQuery,
           response=page_of(MessageOut), tags=("messages",))  # fmt: skip
def list_messages(query: MessageQuery) -> Any:
    """Texts in and out, oldest first; filter by client, direction, status or purpose."""
    stmt = select(Message).where(Message.practice_id == practice_id())
    client_id = None
    if query.client_id is not None:
        client_id = client_or_404(query.client_id).id
        stmt = stmt.where(Message.client_id == client_id)
    for column, value in (
        (Message.direction, query.direction),
        (Message.status, query.status),
        (Message.purpose, query.purpose),
    ):
        if value is not None:
            stmt = stmt.where(column == value)
    page = paginate(stmt, Message.id, message_dict)
    audit("message.list", subject_type="message", client_id=client_id,
          detail={"ids": [item["id"] for item in page["items"]]})  # fmt: skip
    commit()
    return jsonify(page)


@operation(bp, "/audit", "GET", summary="List the practice's audit trail", query=AuditQuery,
           response=page_of(AuditOut), tags=("audit",))  # fmt: skip
def list_audit(query: AuditQuery) -> Any:
    """Who read or changed what, oldest first; filter by client."""
    stmt = select(AuditEntry).where(AuditEntry.practice_id == practice_id())
    client_id = None
    if query.client_id is not None:
        client_id = client_or_404(query.client_id).id
        stmt = stmt.where(AuditEntry.client_id == client_id)
    page = paginate(stmt, AuditEntry.id, audit_dict)
    # Recorded after the page is read, so a page never contains its own read.
    audit("audit.list", subject_type="audit", client_id=client_id,
          detail={"count": len(page["items"])})  # fmt: skip
    commit()
    return jsonify(page)
