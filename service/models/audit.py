"""The append-only audit trail of every read and write of client data by a person."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import UTCDateTime, db, new_id


class AuditEntry(db.Model):
    """Who did what to which record, when, and from where."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_practice_id", "practice_id", "id"),
        Index("ix_audit_entries_client_id", "client_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("au"))
    practice_id: Mapped[str | None] = mapped_column(ForeignKey("practices.id"))
    actor_type: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[str | None] = mapped_column(String(60))
    action: Mapped[str] = mapped_column(String(60))
    subject_type: Mapped[str | None] = mapped_column(String(30))
    subject_id: Mapped[str | None] = mapped_column(String(40))
    client_id: Mapped[str | None] = mapped_column(String(40))
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
