"""Check-in, alert, event and webhook request/response bodies and their filters."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from service.api.schemas.fields import Day, Id, ReadModel, StrictModel, text
from service.api.spec import PageQuery
from service.models import vocab

CheckInStatus = Literal[vocab.CHECKIN_STATUSES]  # type: ignore[valid-type]
AlertKind = Literal[vocab.ALERT_KINDS]  # type: ignore[valid-type]
AlertStatus = Literal[vocab.ALERT_STATUSES]  # type: ignore[valid-type]


class CheckInOut(ReadModel):
    """One occurrence of a meeting plan or commitment and what became of it."""

    id: str
    client_id: str
    source_type: str
    source_id: str
    occurrence: str = Field(description='Local wall time, "YYYY-MM-DDTHH:MM".')
    due_at: str
    closes_at: str | None
    status: str
    verifier: str = Field(description='"self" or the verifying contact\'s id.')
    prompt_code: str | None
    responded_at: str | None
    channel: str | None
    skip_reason: str | None
    late_reply: str | None
    late_reply_at: str | None
    note: str | None


class CheckInQuery(PageQuery):
    """Filters of a client's check-ins (dates are the occurrence's local date, inclusive)."""

    status: CheckInStatus | None = None
    from_: Day | None = Field(None, alias="from")
    to: Day | None = None


class CheckInCorrection(StrictModel):
    """A therapist's correction of a check-in's outcome."""

    status: Literal["confirmed", "declined", "excused"]
    note: text(2000) | None = None  # type: ignore[valid-type]


class AlertOut(ReadModel):
    """Something for the therapist to look at."""

    id: str
    kind: str
    status: str
    client_id: str | None
    source_type: str | None
    source_id: str | None
    occurrence: str | None
    detail: dict[str, Any]
    created_at: str
    acknowledged_at: str | None
    resolved_at: str | None


class AlertQuery(PageQuery):
    """Filters of the alert inbox."""

    status: AlertStatus | None = None
    kind: AlertKind | None = None
    client_id: Id | None = None


class EventOut(ReadModel):
    """One state change; `id` is the cursor."""

    id: str
    type: str
    occurred_at: str
    client_id: str | None
    payload: dict[str, Any]


class EventQuery(PageQuery):
    """Filters of the event stream."""

    after: str | None = Field(None, pattern=r"^[0-9]{1,19}$", description="The last id seen.")
    type: str | None = Field(None, max_length=60)
    client_id: Id | None = None


class WebhookIn(StrictModel):
    """A new outbound webhook endpoint."""

    url: text(2000, min_length=1)  # type: ignore[valid-type]
    description: text(200) | None = None  # type: ignore[valid-type]


class WebhookOut(ReadModel):
    """An outbound webhook endpoint (its secret is shown only when it is created)."""

    id: str
    url: str
    description: str | None
    active: bool
    created_at: str


class WebhookCreated(WebhookOut):
    """A new endpoint with its signing secret, shown this once."""

    secret: str
