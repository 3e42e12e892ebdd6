"""Clients and the people in their support network."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import UTCDateTime, db, new_id
from service.models.vocab import (
    CLIENT_STATUSES,
    CONTACT_ROLES,
    LANGUAGES,
    RECOVERY_PATHS,
    STAGES_OF_CHANGE,
    sql_in,
)


class Client(db.Model):
    """A person in treatment whose plan Steadfast keeps."""

    __tablename__ = "clients"
    __table_args__ = (
        CheckConstraint(sql_in("status", CLIENT_STATUSES), name="status"),
        CheckConstraint(sql_in("language", LANGUAGES), name="language"),
        CheckConstraint(sql_in("recovery_path", RECOVERY_PATHS), name="recovery_path"),
        CheckConstraint(
            f"stage_of_change IS NULL OR {sql_in('stage_of_change', STAGES_OF_CHANGE)}",
            name="stage_of_change",
        ),
        CheckConstraint("current_step IS NULL OR current_step BETWEEN 1 AND 12", name="step"),
        Index("ix_clients_practice_status", "practice_id", "status"),
        Index("ix_clients_phone", "phone"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("cl"))
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"))
    therapist_id: Mapped[str] = mapped_column(ForeignKey("therapists.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(20))
    timezone: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(5), default="en")
    recovery_path: Mapped[str] = mapped_column(String(20), default="other")
    sobriety_date: Mapped[date | None] = mapped_column(Date)
    stage_of_change: Mapped[str | None] = mapped_column(String(20))
    current_step: Mapped[int | None] = mapped_column(Integer)
    coping_plan: Mapped[str | None] = mapped_column(Text)
    quiet_start: Mapped[str] = mapped_column(String(5), default="21:00")
    quiet_end: Mapped[str] = mapped_column(String(5), default="08:00")
    discreet: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(20), default="active")
    paused_until: Mapped[date | None] = mapped_column(Date)
    discharged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revision: Mapped[int] = mapped_column(Integer, default=0)

    contacts: Mapped[list[SupportContact]] = relationship(
        back_populates="client", order_by="SupportContact.id"
    )


class SupportContact(db.Model):
    """A sponsor, peer or family member in a client's support network."""

    __tablename__ = "support_contacts"
    __table_args__ = (
        CheckConstraint(sql_in("role", CONTACT_ROLES), name="role"),
        Index("ix_support_contacts_client_id", "client_id"),
        Index("ix_support_contacts_phone", "phone"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("ct"))
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"))
    role: Mapped[str] = mapped_column(String(20))
    display_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str] = mapped_column(String(20))
    timezone: Mapped[str | None] = mapped_column(String(64))
    can_confirm: Mapped[bool] = mapped_column(Boolean, default=False)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    client: Mapped[Client] = relationship(back_populates="contacts")
