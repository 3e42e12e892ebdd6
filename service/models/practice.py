"""Practices (the tenant boundary), their therapists, and the therapists' API tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from service.db import UTCDateTime, db, new_id
from service.models.vocab import THERAPIST_ROLES, sql_in


class Practice(db.Model):
    """A clinic or solo practice: everything else belongs to exactly one."""

    __tablename__ = "practices"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("pr"))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    sms_from_number: Mapped[str | None] = mapped_column(String(20))
    on_call_phone: Mapped[str | None] = mapped_column(String(20))
    phone: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    therapists: Mapped[list[Therapist]] = relationship(back_populates="practice")


class Therapist(db.Model):
    """A user of a practice; admins manage therapists, tokens and caseloads."""

    __tablename__ = "therapists"
    __table_args__ = (CheckConstraint(sql_in("role", THERAPIST_ROLES), name="role"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("th"))
    practice_id: Mapped[str] = mapped_column(ForeignKey("practices.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), default="therapist")
    phone: Mapped[str | None] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    totp_secret_encrypted: Mapped[str | None] = mapped_column(String(255))
    # The last TOTP time step (unix time // 30) a code was accepted for: each code works once.
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    alerts_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    digest_sent_on: Mapped[str | None] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    practice: Mapped[Practice] = relationship(back_populates="therapists")


class ApiToken(db.Model):
    """A bearer token for the JSON API, stored only as its SHA-256 digest."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_therapist_id", "therapist_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: new_id("tk"))
    therapist_id: Mapped[str] = mapped_column(ForeignKey("therapists.id"))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    therapist: Mapped[Therapist] = relationship()
