"""The client record export document."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from service.api.schemas.clients import ClientOut
from service.api.schemas.contacts import ContactOut, DisclosureConsentOut
from service.api.schemas.fields import ReadModel
from service.api.schemas.messages import AuditOut, MessageOut
from service.api.schemas.plans import ActivityOut, CommitmentOut, MeetingPlanOut


class SmsConsentVersion(ReadModel):
    """One version of a person's SMS consent."""

    id: str
    subject: str = Field(description="client or contact")
    client_id: str | None
    contact_id: str | None
    phone: str
    version: int
    granted: bool
    method: str | None
    recorded_by: str | None
    recorded_at: str
    revoked_at: str | None


class ConsentHistory(ReadModel):
    """Every consent version: SMS (client and contacts) and disclosure."""

    sms: list[SmsConsentVersion]
    disclosure: list[DisclosureConsentOut]


class ClientExport(ReadModel):
    """Everything held about one client."""

    format: str
    exported_at: str
    profile: ClientOut
    network: list[ContactOut]
    consents: ConsentHistory
    meeting_plans: list[MeetingPlanOut]
    commitments: list[CommitmentOut]
    activities: list[ActivityOut]
    checkins: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    messages: list[MessageOut] = Field(description="Texts to and from the client.")
    disclosures: list[MessageOut] = Field(
        description="Texts sent to the client's support network about the client."
    )
    audit: list[AuditOut]
    events: list[dict[str, Any]]
