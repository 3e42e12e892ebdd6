"""Soak helpers: a seeded practice, real `flask jobs tick` processes, and the invariants they must keep."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.db import db
from service.escalation import consecutive_misses, occurrence_label, should_alert
from service.models import Alert, CheckIn, Commitment, Event, MeetingPlan, Message
from service.models.vocab import CHECKIN_FINAL
from tests.factories import (
    make_client,
    make_commitment,
    make_contact,
    make_meeting,
    make_plan,
)
from tests.fake_twilio import FakeTwilio, fake_twilio_fixture

ROOT = Path(__file__).resolve().parents[2]
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]
OUR_NUMBER = "+15005550006"


@pytest.fixture
def fake_twilio(clock: Any) -> Iterator[FakeTwilio]:
    """A fake Twilio API served from this test process on 127.0.0.1, dated by the test clock.

    The schedulers run at simulated instants (`jobs tick --now`); reconciling a text left
    `sending` asks Twilio for what it created around the claim, so Twilio must live in the
    same simulated time or a text it did create is never found (and is sent again).
    """
    yield from fake_twilio_fixture(clock=clock)


def scheduler_env(database_url: str, server: FakeTwilio, **extra: str) -> dict[str, str]:
    """The environment of a scheduler process: our database, the fake Twilio, nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TWILIO_", "SMS_", "DATABASE"))}
    env.update(
        STEADFAST_ENV="test",
        SECRET_KEY="test-secret-key-0123456789abcdef",
        PUBLIC_BASE_URL="https://steadfast.example.org",
        DATABASE_URL=database_url,
        SMS_BACKEND="twilio",
        TWILIO_API_BASE_URL=server.base_url,
        TWILIO_ACCOUNT_SID=server.account_sid,
        TWILIO_AUTH_TOKEN=server.auth_token,
        TWILIO_FROM_NUMBER=OUR_NUMBER,
        SMS_MPS="0",
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        NO_PROXY="127.0.0.1,localhost",
    )
    env.update(extra)
    return env


def tick_process(instant: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start `flask --app wsgi jobs tick --now INSTANT` as its own process."""
    return subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
        [*FLASK, "jobs", "tick", "--now", instant],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


@dataclass
class Seeded:
    clients: list[Any]
    contacts: list[Any]


def seed_practice(people: Any, start: date, n_clients: int = 3) -> Seeded:
    """A few clients with a weekly meeting plan and a daily call, each verified by a sponsor."""
    riverside = people.riverside.id
    meetings = [
        make_meeting(riverside, name="Thu", day=4, time="19:00", end_time="20:00"),
        make_meeting(riverside, name="Sun", day=0, time="17:00", end_time="18:00"),
        make_meeting(riverside, name="Tue", day=2, time="12:00", end_time="13:00"),
    ]
    clients, contacts = [people.carol], [people.dave]
    for n in range(1, n_clients):
        client = make_client(people.alice.therapist, display_name=f"Client {n}",
                             phone=f"+1500555030{n}")  # fmt: skip
        contact = make_contact(client, display_name=f"Sponsor {n}", phone=f"+1500555040{n}")
        clients.append(client)
        contacts.append(contact)
    for i, (client, contact) in enumerate(zip(clients, contacts, strict=True)):
        make_plan(client, meetings[i % len(meetings)], starts_on=start,
                  verifier_contact_id=contact.id)  # fmt: skip
        make_commitment(client, starts_on=start, time=f"{19 + i % 3}:30",
                        verifier_contact_id=contact.id)  # fmt: skip
    db.session.commit()
    return Seeded(clients, contacts)


def assert_nothing_lost_or_doubled(server: FakeTwilio, final_now: Any) -> dict[str, int]:
    """The invariants of a run; returns the figures for the report."""
    db.session.expire_all()
    checkins = db.session.scalars(select(CheckIn)).all()
    open_after_close = [
        (c.id, c.status) for c in checkins
        if c.closes_at is not None and c.closes_at <= final_now and c.status not in CHECKIN_FINAL
    ]  # fmt: skip
    assert not open_after_close, open_after_close

    outbound = db.session.scalars(select(Message).where(Message.direction == "outbound")).all()
    sent_rows = [m for m in outbound if m.provider_sid]
    # Every message Twilio created belongs to exactly one row, and no row was sent twice.
    created = Counter(m["sid"] for m in server.messages.values())
    assert all(n == 1 for n in created.values())
    by_sid = {m.provider_sid for m in sent_rows}
    assert set(server.messages) == by_sid, (
        set(server.messages) - by_sid,
        by_sid - set(server.messages),
    )
    texts_twilio = Counter((m["to"], m["body"]) for m in server.messages.values())
    texts_rows = Counter((m.to_number, m.body) for m in sent_rows)
    assert texts_twilio == texts_rows, texts_twilio - texts_rows
    # One prompt per check-in at most (per recipient), however often a process died.
    prompts = Counter((m.checkin_id, m.to_number, m.purpose) for m in sent_rows if m.checkin_id)
    assert all(n == 1 for n in prompts.values()), [k for k, n in prompts.items() if n > 1]
    # ... and at least once: every check-in that was asked has its prompt at Twilio.
    prompted = {c.id for c in checkins if c.prompted_at is not None}
    texted = {m.checkin_id for m in sent_rows if m.purpose == "prompt"}
    assert prompted == texted, (prompted - texted, texted - prompted)

    alerts = db.session.scalars(select(Alert)).all()
    keys = Counter((a.kind, a.source_id, a.occurrence) for a in alerts)
    assert all(n == 1 for n in keys.values()), [k for k, n in keys.items() if n > 1]
    missed = [c for c in checkins if c.status == "missed"]
    # Every miss that reached its source's threshold raised exactly one alert, and no other
    # `missed` alert exists. The scenario has no replies, so the final history of each source
    # is the history its sweep saw when it closed the check-in.
    expected = expected_miss_alerts(checkins)
    alerted = Counter((a.source_id, a.occurrence) for a in alerts if a.kind == "missed")
    assert set(alerted) == expected, (set(alerted) - expected, expected - set(alerted))
    assert all(n == 1 for n in alerted.values()), [k for k, n in alerted.items() if n > 1]
    events = db.session.scalars(select(Event)).all()
    assert len({e.id for e in events}) == len(events)
    return {
        "checkins": len(checkins),
        "final": sum(c.status in CHECKIN_FINAL for c in checkins),
        "missed": len(missed),
        "miss_alerts": sum(alerted.values()),
        "alerts": len(alerts),
        "outbound_rows": len(outbound),
        "prompted": len(prompted),
        "sent": len(sent_rows),
        "twilio_posts": len(server.posts()),
        "events": len(events),
    }


def expected_miss_alerts(checkins: list[CheckIn]) -> set[tuple[str, str]]:
    """(source, occurrence) of every miss that made its source's run of misses reach the threshold."""
    thresholds = {
        **{p.id: p.escalate_after_misses for p in db.session.scalars(select(MeetingPlan))},
        **{c.id: c.escalate_after_misses for c in db.session.scalars(select(Commitment))},
    }
    by_source: dict[str, list[CheckIn]] = {}
    for row in checkins:
        by_source.setdefault(row.source_id, []).append(row)
    expected = set()
    for source_id, rows in by_source.items():
        rows.sort(key=lambda r: r.event_at)
        for i, row in enumerate(rows):
            if row.status != "missed":
                continue
            history = [r.status for r in reversed(rows[: i + 1])]
            if should_alert(consecutive_misses(history), thresholds[source_id]):
                expected.add((source_id, occurrence_label(row.occurrence)))
    return expected


def read_event_stream(client: Any, headers: dict[str, str]) -> list[str]:
    """Page through /api/v1/events like a reader would; return the ids in order."""
    ids: list[str] = []
    after = None
    while True:
        query = {"limit": "37"} | ({"after": after} if after else {})
        response = client.get("/api/v1/events", query_string=query, headers=headers)
        assert response.status_code == 200, response.data
        page = response.get_json()
        ids.extend(item["id"] for item in page["items"])
        after = page["next"]
        if not after:
            return ids
