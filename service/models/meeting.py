"""The practice's meeting directory and the feeds it imports from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db import UTCDateTime, db, new_id
from service.models.vocab import ATTENDANCE, RECOVERY_PATHS, sql_in


class MeetingFeed(db.Model):
    """A remembered meeting feed (URL or file) that can be re-imported."""

    __tablename__ = "meeting_feeds"
    __table_args__ = (UniqueConstraint("practice_id", "key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("mf"))
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"))
    key: Mapped[str] = mapped_column(String(500))
    url: Mapped[str | None] = mapped_column(String(2000))
    format: Mapped[str | None] = mapped_column(String(10))
    default_timezone: Mapped[str | None] = mapped_column(String(64))
    fellowship: Mapped[str] = mapped_column(String(20), default="other")
    last_imported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    next_refresh_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Meeting(db.Model):
    """A weekly group meeting (day 0 = Sunday); unscheduled when day or time is unknown."""

    __tablename__ = "meetings"
    __table_args__ = (
        CheckConstraint("day IS NULL OR day BETWEEN 0 AND 6", name="day"),
        CheckConstraint(sql_in("fellowship", RECOVERY_PATHS), name="fellowship"),
        CheckConstraint(sql_in("attendance", ATTENDANCE), name="attendance"),
        UniqueConstraint("feed_id", "slug"),
        Index("ix_meetings_practice_day_time", "practice_id", "day", "time"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("mt"))
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"))
    feed_id: Mapped[str | None] = mapped_column(ForeignKey("meeting_feeds.id"))
    slug: Mapped[str | None] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(255))
    fellowship: Mapped[str] = mapped_column(String(20), default="other")
    day: Mapped[int | None] = mapped_column(Integer)
    time: Mapped[str | None] = mapped_column(String(5))
    end_time: Mapped[str | None] = mapped_column(String(5))
    timezone: Mapped[str] = mapped_column(String(64))
    location: Mapped[str | None] = mapped_column(String(500))
    address: Mapped[str | None] = mapped_column(String(500))
    conference_url: Mapped[str | None] = mapped_column(String(2000))
    conference_phone: Mapped[str | None] = mapped_column(String(100))
    types: Mapped[list[Any]] = mapped_column(JSON, default=list)
    notes: Mapped[str | None] = mapped_column(Text)
    region: Mapped[str | None] = mapped_column(String(200))
    attendance: Mapped[str] = mapped_column(String(20), default="in_person")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revision: Mapped[int] = mapped_column(Integer, default=0)
