"""Record every read and write of client data by a person, in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from service.db import db
from service.models import AuditEntry


@dataclass(frozen=True)
class Actor:
    """Who is acting: a therapist (API or dashboard) or an operator at the CLI."""

    type: str  # "therapist", "cli", "system"
    id: str | None
    practice_id: str | None
    remote_addr: str | None = None


def record(
    actor: Actor,
    action: str,
    *,
    now: datetime,
    subject_type: str | None = None,
    subject_id: str | None = None,
    client_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one audit entry (flushed with the caller's unit of work, never committed here)."""
    entry = AuditEntry(
        practice_id=actor.practice_id,
        actor_type=actor.type,
        actor_id=actor.id,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        client_id=client_id,
        remote_addr=actor.remote_addr,
        detail=detail or {},
        at=now,
    )
    db.session.add(entry)
    return entry
