"""Fixed-window counters for rate limits shared by every web worker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from service.db import UTCDateTime, db


class RateLimitBucket(db.Model):
    """Hits counted under one key (e.g. "login:203.0.113.9") in the current window."""

    __tablename__ = "rate_limit_buckets"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    count: Mapped[int] = mapped_column(Integer, default=0)
