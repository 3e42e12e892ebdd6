"""Consent records (SMS consent per person and number, disclosure consent per contact) and opt-outs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from service.db import UTCDateTime, db, new_id
from service.models.vocab import CONSENT_METHODS, OPT_OUT_REASONS, sql_in


class SmsConsent(db.Model):
    """One version of a person's consent to receive texts at one number; the latest version rules."""

    __tablename__ = "sms_consents"
    __table_args__ = (
        CheckConstraint(
            "(client_id IS NOT NULL AND contact_id IS NULL) OR "
            "(client_id IS NULL AND contact_id IS NOT NULL)",
            name="one_subject",
        ),
        CheckConstraint(f"method IS NULL OR {sql_in('method', CONSENT_METHODS)}", name="method"),
        UniqueConstraint("subject_key", "version"),
        Index("ix_sms_consents_phone", "phone"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("sc"))
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"))
    # "client:<id>" or "contact:<id>", so one unique key covers both kinds of subject.
    subject_key: Mapped[str] = mapped_column(String(60))
    client_id: Mapped[str | None] = mapped_column(ForeignKey("clients.id"))
    contact_id: Mapped[str | None] = mapped_column(ForeignKey("support_contacts.id"))
    phone: Mapped[str] = mapped_column(String(20))
    version: Mapped[int] = mapped_column(Integer)
    granted: Mapped[bool] = mapped_column(default=False)
    method: Mapped[str | None] = mapped_column(String(20))
    recorded_by: Mapped[str | None] = mapped_column(String(60))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DisclosureConsent(db.Model):
    """One version of a client's consent to disclose to one contact (42 CFR Part 2)."""

    __tablename__ = "disclosure_consents"
    __table_args__ = (
        UniqueConstraint("contact_id", "version"),
        CheckConstraint("expires_on IS NULL OR expires_on >= granted_on", name="dates"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("dc"))
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"))
    client_id: Mapped[str] = mapped_column(ForeignKey("clients.id"), index=True)
    contact_id: Mapped[str] = mapped_column(ForeignKey("support_contacts.id"))
    version: Mapped[int] = mapped_column(Integer)
    scope: Mapped[list[Any]] = mapped_column(JSON)
    purpose: Mapped[str | None] = mapped_column(String(500))
    granted_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    recorded_by: Mapped[str | None] = mapped_column(String(60))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class OptOut(db.Model):
    """The suppression list: a number here gets no text from any practice."""

    __tablename__ = "opt_outs"
    __table_args__ = (CheckConstraint(sql_in("reason", OPT_OUT_REASONS), name="reason"),)

    phone: Mapped[str] = mapped_column(String(20), primary_key=True)
    reason: Mapped[str] = mapped_column(String(20), default="opt_out")
    keyword: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
