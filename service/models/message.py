"""Every SMS in or out: the outbox and the inbox in one table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from service.db import UTCDateTime, db, new_id
from service.models.vocab import MESSAGE_DIRECTIONS, MESSAGE_PURPOSES, MESSAGE_STATUSES, sql_in


class Message(db.Model):
    """One text; outbound rows are queued here and sent by the dispatch sweep."""

    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint(sql_in("direction", MESSAGE_DIRECTIONS), name="direction"),
        CheckConstraint(sql_in("status", MESSAGE_STATUSES), name="status"),
        CheckConstraint(sql_in("purpose", MESSAGE_PURPOSES), name="purpose"),
        Index("ix_messages_client_created", "client_id", "created_at"),
        Index("ix_messages_to_created", "to_number", "created_at"),
        # The daily cap: when the texts to one number reached the provider, by time.
        Index("ix_messages_to_sent", "to_number", "sent_at"),
        Index("ix_messages_from_created", "from_number", "created_at"),
        Index("ix_messages_practice_id", "practice_id", "id"),
        # Closing a check-in looks up its prompt to see whether it was ever sent.
        Index("ix_messages_checkin_id", "checkin_id"),
        # Retention: only bodies not yet erased are candidates.
        Index(
            "ix_messages_body_unpurged",
            "created_at",
            postgresql_where=text("body_purged_at IS NULL"),
            sqlite_where=text("body_purged_at IS NULL"),
        ),
        Index(
            "ix_messages_queued",
            "send_after",
            postgresql_where=text("status = 'queued'"),
            sqlite_where=text("status = 'queued'"),
        ),
        Index(
            "ix_messages_sending",
            "claimed_at",
            postgresql_where=text("status = 'sending'"),
            sqlite_where=text("status = 'sending'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ms"))
    practice_id: Mapped[str | None] = mapped_column(ForeignKey("practices.id"))
    client_id: Mapped[str | None] = mapped_column(ForeignKey("clients.id"))
    contact_id: Mapped[str | None] = mapped_column(ForeignKey("support_contacts.id"))
    therapist_id: Mapped[str | None] = mapped_column(ForeignKey("therapists.id"))
    checkin_id: Mapped[str | None] = mapped_column(ForeignKey("checkins.id"))
    direction: Mapped[str] = mapped_column(String(10))
    to_number: Mapped[str] = mapped_column(String(20))
    from_number: Mapped[str | None] = mapped_column(String(20))
    body: Mapped[str | None] = mapped_column(Text)
    purpose: Mapped[str] = mapped_column(String(30))
    template: Mapped[str | None] = mapped_column(String(60))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    status: Mapped[str] = mapped_column(String(20))
    provider_sid: Mapped[str | None] = mapped_column(String(64), unique=True)
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    segments: Mapped[int | None] = mapped_column(Integer)
    send_after: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Past this instant the text is stale and is skipped rather than sent late.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    body_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
