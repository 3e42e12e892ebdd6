"""What a client has planned: meeting plans, commitments, and one-off activities and sessions."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import UTCDateTime, db, new_id
from service.models.meeting import Meeting
from service.models.vocab import ACTIVITY_KINDS, COMMITMENT_KINDS, sql_in


class MeetingPlan(db.Model):
    """This client attends this meeting; someone confirms attendance after it ends."""

    __tablename__ = "meeting_plans"
    __table_args__ = (
        CheckConstraint("remind_minutes_before BETWEEN 0 AND 1440", name="remind"),
        CheckConstraint("confirm_window_hours BETWEEN 1 AND 72", name="window"),
        CheckConstraint("escalate_after_misses BETWEEN 1 AND 50", name="escalate"),
        Index("ix_meeting_plans_client_id", "client_id"),
        Index("ix_meeting_plans_meeting_id", "meeting_id"),
        # The planning sweep reads only live plans whose watermark lags the horizon.
        Index(
            "ix_meeting_plans_planned_until",
            "planned_until",
            postgresql_where=text("archived_at IS NULL"),
            sqlite_where=text("archived_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("mp"))
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    meeting_id: Mapped[str] = mapped_column(ForeignKey("meetings.id"))
    verifier_contact_id: Mapped[str | None] = mapped_column(ForeignKey("support_contacts.id"))
    remind_minutes_before: Mapped[int] = mapped_column(Integer, default=60)
    confirm_window_hours: Mapped[int] = mapped_column(Integer, default=12)
    escalate_after_misses: Mapped[int] = mapped_column(Integer, default=1)
    starts_on: Mapped[date] = mapped_column(Date)
    paused_until: Mapped[date | None] = mapped_column(Date)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Planning watermark: check-ins exist for every occurrence before this instant.
    planned_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revision: Mapped[int] = mapped_column(Integer, default=0)

    meeting: Mapped[Meeting] = relationship()


class Commitment(db.Model):
    """An accountability promise with a schedule (RRULE + local time in the client's zone)."""

    __tablename__ = "commitments"
    __table_args__ = (
        CheckConstraint(sql_in("kind", COMMITMENT_KINDS), name="kind"),
        CheckConstraint("grace_minutes BETWEEN 5 AND 1440", name="grace"),
        CheckConstraint("escalate_after_misses BETWEEN 1 AND 50", name="escalate"),
        CheckConstraint("target IS NULL OR target BETWEEN 1 AND 50", name="target"),
        CheckConstraint("kind <> 'meeting_quota' OR target IS NOT NULL", name="quota_target"),
        Index("ix_commitments_client_id", "client_id"),
        # The quota sweep reads only live weekly quotas.
        Index(
            "ix_commitments_live_quota",
            "id",
            postgresql_where=text("kind = 'meeting_quota' AND active AND archived_at IS NULL"),
            sqlite_where=text("kind = 'meeting_quota' AND active AND archived_at IS NULL"),
        ),
        # The planning sweep reads only live commitments whose watermark lags the horizon.
        Index(
            "ix_commitments_planned_until",
            "planned_until",
            postgresql_where=text("active AND archived_at IS NULL"),
            sqlite_where=text("active AND archived_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("cm"))
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    rrule: Mapped[str] = mapped_column(String(500))
    time: Mapped[str | None] = mapped_column(String(5))
    target: Mapped[int | None] = mapped_column(Integer)
    verifier_contact_id: Mapped[str | None] = mapped_column(ForeignKey("support_contacts.id"))
    grace_minutes: Mapped[int] = mapped_column(Integer, default=120)
    escalate_after_misses: Mapped[int] = mapped_column(Integer, default=1)
    notify_sponsor: Mapped[bool] = mapped_column(Boolean, default=False)
    starts_on: Mapped[date] = mapped_column(Date)
    paused_until: Mapped[date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    planned_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Quotas: the last local week (its Monday, ISO) that was evaluated.
    quota_evaluated_week: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revision: Mapped[int] = mapped_column(Integer, default=0)


class Activity(db.Model):
    """A one-off activity or therapy session on the client's calendar."""

    __tablename__ = "activities"
    __table_args__ = (
        CheckConstraint(sql_in("kind", ACTIVITY_KINDS), name="kind"),
        CheckConstraint("duration_minutes BETWEEN 1 AND 1440", name="duration"),
        Index("ix_activities_client_id_starts_at", "client_id", "starts_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ac"))
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    therapist_id: Mapped[str | None] = mapped_column(ForeignKey("therapists.id"))
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    duration_minutes: Mapped[int] = mapped_column(Integer, default=50)
    location: Mapped[str | None] = mapped_column(String(500))
    notes: Mapped[str | None] = mapped_column(Text)
    cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revision: Mapped[int] = mapped_column(Integer, default=0)
