"""Calendar feed tokens: a revocable capability per client or therapist."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import UTCDateTime, db, new_id
from service.models.checkin import CheckIn


class FeedToken(db.Model):
    """Kept as a SHA-256 digest for lookup and Fernet-encrypted so the link can be shown again."""

    __tablename__ = "feed_tokens"
    __table_args__ = (
        CheckConstraint(
            "(client_id IS NOT NULL AND therapist_id IS NULL) OR "
            "(client_id IS NULL AND therapist_id IS NOT NULL)",
            name="one_owner",
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ft"))
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"))
    client_id: Mapped[str | None] = mapped_column(ForeignKey("clients.id"), index=True)
    therapist_id: Mapped[str | None] = mapped_column(ForeignKey("therapists.id"), index=True)
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    token_encrypted: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    poll_count: Mapped[int] = mapped_column(Integer, default=0)


# The feed validator's check-in part (how many of a client's check-ins are excused, skipped
# or cancelled, their latest updated_at, and the latest updated_at of all) is answered from
# this index alone, so a poll costs index entries, not a table read per check-in. Declared
# here, beside the feed tables, because only the feeds read it; it is on the checkins table.
Index("ix_checkins_client_status_updated", CheckIn.client_id, CheckIn.status, CheckIn.updated_at)
