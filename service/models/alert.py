"""Alerts: what a therapist must look at, deduplicated per (client, source, occurrence)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import UTCDateTime, db, new_id
from service.models.vocab import ALERT_KINDS, ALERT_STATUSES, sql_in


class Alert(db.Model):
    """One thing for a therapist to act on; open → acknowledged → resolved."""

    __tablename__ = "alerts"
    __table_args__ = (
        CheckConstraint(sql_in("kind", ALERT_KINDS), name="kind"),
        CheckConstraint(sql_in("status", ALERT_STATUSES), name="status"),
        Index("ix_alerts_practice_status", "practice_id", "status"),
        Index("ix_alerts_client_id", "client_id"),
        Index(
            "ix_alerts_unnotified",
            "therapist_id",
            postgresql_where=text("notified_at IS NULL"),
            sqlite_where=text("notified_at IS NULL"),
        ),
        # Crises waiting for an acknowledgement before the on-call re-send.
        Index(
            "ix_alerts_crisis_unescalated",
            "created_at",
            postgresql_where=text("kind = 'crisis' AND status = 'open' AND escalated_at IS NULL"),
            sqlite_where=text("kind = 'crisis' AND status = 'open' AND escalated_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("al"))
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"))
    client_id: Mapped[str | None] = mapped_column(ForeignKey("clients.id"))
    therapist_id: Mapped[str | None] = mapped_column(ForeignKey("therapists.id"))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="open")
    source_type: Mapped[str | None] = mapped_column(String(20))
    source_id: Mapped[str | None] = mapped_column(String(40))
    # The occurrence or period the alert is about (e.g. "2026-12-01T19:00", "2026-W49").
    occurrence: Mapped[str | None] = mapped_column(String(40))
    # Unique key that makes raising the same alert twice a no-op.
    dedup_key: Mapped[str] = mapped_column(String(200), unique=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(40))
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(40))
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
