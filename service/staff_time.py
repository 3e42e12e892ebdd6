"""When staff may be texted: a therapist's working zone and the hours that are off limits."""

from __future__ import annotations

from datetime import time

from sqlalchemy import func, select

from service.db import db
from service.models import Client
from service.quiet_hours import QuietHours

# Therapists have no timezone of their own. Their texts follow the zone most of their
# clients live in; a therapist with no clients is taken to work on New York time.
DEFAULT_STAFF_ZONE = "America/New_York"
# Batched alert texts and digests wait for the working day; crises never wait.
STAFF_QUIET_HOURS = QuietHours(time(21, 0), time(8, 0))
DIGEST_FROM = time(8, 0)


def therapist_zone(therapist_id: str) -> str:
    """Return the zone most of the therapist's current clients live in, else New York."""
    row = db.session.execute(
        select(Client.timezone, func.count(Client.id).label("n"))
        .where(Client.therapist_id == therapist_id, Client.status != "discharged")
        .group_by(Client.timezone)
        .order_by(func.count(Client.id).desc(), Client.timezone)
        .limit(1)
    ).first()
    return row[0] if row else DEFAULT_STAFF_ZONE
