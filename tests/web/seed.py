"""Seed a client's past: a meeting plan, a weekly quota, 12 weeks of check-ins and some texts."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from service.db import db
from service.models import CheckIn, Client, Message, SupportContact
from tests.factories import make_commitment, make_meeting, make_plan

NY = ZoneInfo("America/New_York")


def _checkin(
    client: Client,
    source_type: str,
    source_id: str,
    local: datetime,
    status: str,
    verifier: SupportContact | None = None,
) -> CheckIn:
    at = local.replace(tzinfo=NY).astimezone(UTC)
    row = CheckIn(
        practice_id=client.practice_id, client_id=client.id, source_type=source_type,
        source_id=source_id, occurrence=local, event_at=at, due_at=at + timedelta(hours=1),
        status=status, verifier_contact_id=verifier.id if verifier else None,
        responded_at=at + timedelta(hours=2) if status in ("confirmed", "declined") else None,
        responded_by=verifier.id if verifier and status in ("confirmed", "declined") else None,
        created_at=at, updated_at=at,
    )  # fmt: skip
    db.session.add(row)
    return row


def seed_history(client: Client, sponsor: SupportContact, today: date, *, seed: int = 7) -> dict:
    """Give `client` 12 weeks of history up to `today` (local); return the rows made."""
    rng = random.Random(seed)
    meetings = [
        make_meeting(client.practice_id, name="Thursday Night Big Book", day=4, time="19:00"),
        make_meeting(client.practice_id, name="Monday Step Study", day=1, time="18:30",
                     location="Grace Church annex", types=["C", "ST"]),
        make_meeting(client.practice_id, name="Online Morning Reflections", day=6, time="08:00",
                     end_time="09:00",
                     address=None, location=None, conference_url="https://meet.example.org/amr",
                     attendance="online", types=["O", "ONL"]),
    ]  # fmt: skip
    plans = [make_plan(client, m, verifier_contact_id=sponsor.id, starts_on=today - timedelta(weeks=12))
             for m in meetings]  # fmt: skip
    call = make_commitment(client, title="Call Dave", starts_on=today - timedelta(weeks=12),
                           verifier_contact_id=sponsor.id)  # fmt: skip
    quota = make_commitment(client, kind="meeting_quota", title="Three meetings a week",
                            rrule="FREQ=WEEKLY", time=None, target=3,
                            starts_on=today - timedelta(weeks=12))  # fmt: skip
    first = today - timedelta(days=83)
    rows = []
    for offset in range(84):
        day = first + timedelta(days=offset)
        if day >= today:
            break
        weights = [("confirmed", 7), ("declined", 1), ("missed", 1), ("excused", 1), ("skipped", 1)]
        status = rng.choices([s for s, _ in weights], [w for _, w in weights])[0]
        if offset % 5 != 3:
            rows.append(_checkin(client, "commitment", call.id, datetime.combine(day, time(20)),
                                 status, sponsor))  # fmt: skip
        for plan, meeting in zip(plans, meetings, strict=True):
            if (day.isoweekday() % 7) == meeting.day:
                outcome = "confirmed" if rng.random() < 0.75 else "missed"
                hh, mm = (int(x) for x in meeting.time.split(":"))
                rows.append(_checkin(client, "meeting_plan", plan.id,
                                     datetime.combine(day, time(hh, mm)), outcome, sponsor))  # fmt: skip
    now = datetime.combine(today, time(12), NY).astimezone(UTC)
    texts = [
        ("outbound", "Reminder: Thursday Night Big Book at 19:00.", None),
        (
            "outbound",
            "Did Carol make it to Thursday Night Big Book? Reply 1 yes, 2 no.",
            sponsor.id,
        ),
        ("inbound", "1", sponsor.id),
        ("outbound", "An old message whose body was purged.", None),
    ]
    for index, (direction, body, contact_id) in enumerate(texts):
        purged = index == 3
        db.session.add(Message(
            practice_id=client.practice_id, client_id=client.id, contact_id=contact_id,
            direction=direction, to_number=client.phone, body=None if purged else body,
            purpose="inbound" if direction == "inbound" else "prompt",
            status="received" if direction == "inbound" else "delivered",
            body_purged_at=now if purged else None,
            created_at=now - timedelta(days=3 * index + 1), updated_at=now,
        ))  # fmt: skip
    db.session.commit()
    return {"meetings": meetings, "plans": plans, "call": call, "quota": quota, "checkins": rows}
