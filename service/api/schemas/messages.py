"""SMS log and audit trail response bodies and their filters."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from service.api.schemas.fields import (
    Id,
    MessageDirection,
    MessagePurpose,
    MessageStatus,
    ReadModel,
)
from service.api.spec import PageQuery


class MessageOut(ReadModel):
    """One text in or out."""

    id: str
    direction: str
    to: str
    from_: str | None = Field(alias="from", serialization_alias="from")
    body: str | None
    purpose: str
    status: str
    client_id: str | None
    contact_id: str | None
    created_at: str
    sent_at: str | None
    provider_sid: str | None
    error_code: int | None


class MessageQuery(PageQuery):
    """Filters of the SMS log."""

    client_id: Id | None = None
    direction: MessageDirection | None = None
    status: MessageStatus | None = None
    purpose: MessagePurpose | None = None


class AuditOut(ReadModel):
    """One audit entry: who did what to which record, when and from where."""

    id: str
    at: str
    actor_type: str
    actor_id: str | None
    action: str
    subject_type: str | None
    subject_id: str | None
    client_id: str | None
    remote_addr: str | None
    detail: dict[str, Any]


class AuditQuery(PageQuery):
    """Filters of the audit trail."""

    client_id: Id | None = None
