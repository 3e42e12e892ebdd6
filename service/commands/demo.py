"""`flask demo seed`: a demo practice with clients, networks, meetings and plans to click through."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import click
from flask.cli import with_appcontext
from sqlalchemy import select

from service import activities, clients, meetings, networks, plans
from service.audit import Actor, record
from service.commands import parse_now
from service.db import db
from service.models import Practice
from service.schedule import get_zone, resolve_local
from service.therapists import create_therapist, get_or_create_practice, issue_token

group = click.Group("demo", help="Demo data for trying Steadfast out.")

PRACTICE = "Demo practice"
EMAIL = "demo@steadfast.example"
PASSWORD = "demo-password"  # noqa: S105 - the demo's published password
WRITTEN = {"granted": True, "method": "written"}

MEETINGS: dict[str, dict[str, Any]] = {
    "big_book": {
        "name": "Thursday Night Big Book", "fellowship": "aa", "day": 4, "time": "19:00",
        "timezone": "America/New_York", "location": "St. Mark's Parish Hall",
        "address": "120 Church St, Springfield", "types": ["O", "B"],
    },
    "step_study": {
        "name": "Saturday Morning Step Study", "fellowship": "aa", "day": 6, "time": "09:00",
        "timezone": "America/New_York", "location": "Community Center, Room 2",
        "address": "45 Elm Ave, Springfield", "types": ["C", "ST"],
    },
    "just_for_today": {
        "name": "Just for Today (online)", "fellowship": "na", "day": 1, "time": "12:00",
        "timezone": "America/Chicago", "conference_url": "https://zoom.example/j/5550100",
        "types": ["O", "JFT", "ONL"],
    },
    "smart": {
        "name": "SMART Recovery Tuesday", "fellowship": "smart", "day": 2, "time": "18:30",
        "timezone": "America/Los_Angeles", "location": "Wellness Clinic",
        "address": "9 Harbor Blvd, Bayview", "conference_url": "https://zoom.example/j/5550101",
        "types": ["O"],
    },
}  # fmt: skip

CLIENTS: list[dict[str, Any]] = [
    {
        "values": {
            "display_name": "Jordan M.", "phone": "+12025550143", "timezone": "America/New_York",
            "recovery_path": "aa", "current_step": 4, "stage_of_change": "action",
            "sobriety_date": date(2026, 8, 14),
            "coping_plan": "Call Sam, go for a walk, read page 417.",
        },
        "contacts": [
            {"display_name": "Sam K.", "role": "sponsor", "phone": "+12025550144", "can_confirm": True},
            {"display_name": "Riley P.", "role": "peer", "phone": "+12025550145"},
        ],
    },
    {
        "values": {
            "display_name": "Alex R.", "phone": "+13125550188", "timezone": "America/Chicago",
            "recovery_path": "na", "current_step": 2, "stage_of_change": "preparation",
            "sobriety_date": date(2026, 10, 30), "language": "es",
        },
        "contacts": [
            {"display_name": "Chris D.", "role": "sponsor", "phone": "+13125550189", "can_confirm": True},
        ],
    },
    {
        "values": {
            "display_name": "Taylor B.", "phone": "+13105550142", "timezone": "America/Los_Angeles",
            "recovery_path": "smart", "stage_of_change": "maintenance",
            "coping_plan": "Use the DISARM tool, text Morgan, make tea.",
        },
        "contacts": [
            {"display_name": "Morgan L.", "role": "peer", "phone": "+13105550143", "can_confirm": True},
            {"display_name": "Jamie B.", "role": "family", "phone": "+13105550144"},
        ],
    },
]  # fmt: skip


@group.command("seed")
@click.option("--now", "now_text", default=None, help="Pretend it is this instant (ISO-8601).")
@with_appcontext
def seed(now_text: str | None) -> None:
    """Create the demo practice; print the admin's email, password and API token (last line)."""
    now = parse_now(now_text)
    if db.session.scalar(select(Practice.id).where(Practice.name == PRACTICE)):
        click.echo(f"The demo already exists (practice {PRACTICE!r}, sign in as {EMAIL}).")
        return
    practice = get_or_create_practice(PRACTICE, now=now)
    admin = create_therapist(
        email=EMAIL, name="Dana Demo", practice=practice, now=now, role="admin",
        phone="+12025550100", password=PASSWORD,
    )  # fmt: skip
    by_key = {
        key: meetings.create_meeting(practice_id=practice.id, values=values, now=now)
        for key, values in MEETINGS.items()
    }
    people = [_client(spec, practice.id, admin, now) for spec in CLIENTS]
    _plans(people, by_key, admin.id, now)
    token = issue_token(admin, now=now)
    record(Actor("cli", None, practice.id), "demo.seed", now=now,
           subject_type="practice", subject_id=practice.id)  # fmt: skip
    db.session.commit()
    click.echo(f"Created {PRACTICE!r}: 3 clients, {len(MEETINGS)} meetings.")
    click.echo(f"Sign in as {EMAIL} with password {PASSWORD}")
    click.echo("API token (shown once):")
    click.echo(token)


def _client(
    spec: dict[str, Any], practice_id: str, admin: Any, now: datetime
) -> tuple[Any, list[Any]]:
    client = clients.create_client(
        practice_id=practice_id, therapist=admin, values=spec["values"], sms_consent=WRITTEN,
        recorded_by=admin.id, now=now,
    )  # fmt: skip
    disclosure = {
        "granted_on": clients.local_today(client.timezone, now),
        "expires_on": clients.local_today(client.timezone, now) + timedelta(days=365),
        "scope": ["checkins", "missed"],
        "purpose": "Support attendance and accountability during treatment.",
    }
    contacts = [
        networks.create_contact(
            client,
            values=values,
            sms_consent=WRITTEN,
            disclosure=disclosure,
            recorded_by=admin.id,
            now=now,
        )  # fmt: skip
        for values in spec["contacts"]
    ]
    return client, contacts


def _plans(
    people: list[tuple[Any, list[Any]]], by_key: dict[str, Any], admin_id: str, now: datetime
) -> None:
    (jordan, (sam, _riley)), (alex, _alex_net), (taylor, (morgan, _jamie)) = people
    plans.create_plan(
        jordan, values={"meeting_id": by_key["big_book"].id, "verifier": sam.id}, now=now
    )
    plans.create_plan(jordan, values={"meeting_id": by_key["step_study"].id}, now=now)
    plans.create_plan(alex, values={"meeting_id": by_key["just_for_today"].id}, now=now)
    plans.create_plan(
        taylor, values={"meeting_id": by_key["smart"].id, "verifier": morgan.id}, now=now
    )
    plans.create_commitment(jordan, values={
        "kind": "sponsor_call", "title": "Call Sam", "rrule": "FREQ=DAILY", "time": "20:00",
        "verifier": sam.id, "grace_minutes": 120,
    }, now=now)  # fmt: skip
    plans.create_commitment(jordan, values={
        "kind": "step_work", "title": "Step 4 inventory: one page", "rrule": "FREQ=WEEKLY;BYDAY=SU",
        "time": "17:00",
    }, now=now)  # fmt: skip
    plans.create_commitment(alex, values={
        "kind": "meeting_quota", "title": "Three meetings a week", "rrule": "FREQ=WEEKLY",
        "target": 3,
    }, now=now)  # fmt: skip
    plans.create_commitment(taylor, values={
        "kind": "practice", "title": "10 minutes of mindfulness", "rrule": "FREQ=DAILY",
        "time": "08:30",
    }, now=now)  # fmt: skip
    session_day = clients.local_today(jordan.timezone, now) + timedelta(days=7)
    starts_at = datetime.combine(session_day, datetime.min.time()).replace(hour=15)
    activities.create_activity(jordan, values={
        "kind": "therapy_session", "title": "Individual session",
        "starts_at": resolve_local(starts_at, get_zone(jordan.timezone)), "duration_minutes": 50,
        "location": "Office 3",
    }, therapist_id=admin_id, now=now)  # fmt: skip
