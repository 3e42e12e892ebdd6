"""Check-ins: one occurrence of a meeting plan or commitment and what became of it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db import UTCDateTime, db, new_id
from service.models.vocab import CHANNELS, CHECKIN_SOURCES, CHECKIN_STATUSES, sql_in


class CheckIn(db.Model):
    """One occurrence, unique per (source, occurrence); its status follows the lifecycle."""

    __tablename__ = "checkins"
    __table_args__ = (
        CheckConstraint(sql_in("status", CHECKIN_STATUSES), name="status"),
        CheckConstraint(sql_in("source_type", CHECKIN_SOURCES), name="source_type"),
        CheckConstraint(f"channel IS NULL OR {sql_in('channel', CHANNELS)}", name="channel"),
        UniqueConstraint("source_type", "source_id", "occurrence"),
        Index("ix_checkins_client_due", "client_id", "due_at"),
        # Partial indexes keep the sweeps' claims proportional to what is due.
        Index(
            "ix_checkins_due_scheduled",
            "due_at",
            postgresql_where=text("status = 'scheduled'"),
            sqlite_where=text("status = 'scheduled'"),
        ),
        Index(
            "ix_checkins_reminder_due",
            "reminder_at",
            postgresql_where=text("status = 'scheduled' AND reminder_sent_at IS NULL"),
            sqlite_where=text("status = 'scheduled' AND reminder_sent_at IS NULL"),
        ),
        Index(
            "ix_checkins_closes_missed",
            "closes_at",
            postgresql_where=text("status = 'missed'"),
            sqlite_where=text("status = 'missed'"),
        ),
        Index(
            "ix_checkins_closes_prompted",
            "closes_at",
            postgresql_where=text("status = 'prompted'"),
            sqlite_where=text("status = 'prompted'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ci"))
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    source_type: Mapped[str] = mapped_column(String(20))
    source_id: Mapped[str] = mapped_column(String(40))
    # Local wall time of the occurrence in the client's (or meeting's) zone; naive by design.
    occurrence: Mapped[datetime] = mapped_column(DateTime(timezone=False))
    event_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reminder_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    prompted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(20), default="scheduled")
    verifier_contact_id: Mapped[str | None] = mapped_column(ForeignKey("support_contacts.id"))
    prompt_code: Mapped[str | None] = mapped_column(String(4))
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    responded_by: Mapped[str | None] = mapped_column(String(60))
    channel: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    skip_reason: Mapped[str | None] = mapped_column(String(60))
    late_reply: Mapped[str | None] = mapped_column(String(20))
    late_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
