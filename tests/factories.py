"""Factories as plain functions with defaults, and the named test people.

- alice: therapist at Riverside Counseling (has an API token); her client carol has sponsor dave.
- bob: therapist at Harbor Health, another practice, who must see nothing of Riverside's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from service.db import db
from service.models import (
    Client,
    Commitment,
    DisclosureConsent,
    Meeting,
    MeetingPlan,
    Practice,
    SmsConsent,
    SupportContact,
    Therapist,
)
from service.therapists import create_therapist, get_or_create_practice, issue_token

T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)


@dataclass
class Person:
    therapist: Therapist
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def id(self) -> str:
        return self.therapist.id

    @property
    def practice_id(self) -> str:
        return self.therapist.practice_id


@dataclass
class People:
    alice: Person
    bob: Person
    carol: Client
    dave: SupportContact
    riverside: Practice
    harbor: Practice


def make_therapist(
    email: str = "alice@riverside.example",
    name: str = "Alice Moreno",
    practice: str = "Riverside Counseling",
    role: str = "therapist",
    phone: str | None = "+15005550001",
    password: str | None = None,
) -> Person:
    """Create a therapist (and their practice) with one API token."""
    p = get_or_create_practice(practice, now=T0)
    t = create_therapist(
        email=email, name=name, practice=p, now=T0, role=role, phone=phone, password=password
    )
    return Person(t, issue_token(t, now=T0))


def make_client(therapist: Therapist, **fields: Any) -> Client:
    """Create a client of `therapist` with SMS consent unless told otherwise."""
    consent = fields.pop("sms_consent", True)
    values: dict[str, Any] = {
        "display_name": "Carol S.",
        "phone": "+15005550101",
        "timezone": "America/New_York",
        "language": "en",
        "recovery_path": "aa",
        "sobriety_date": date(2026, 9, 1),
        "coping_plan": "Call Dave, walk around the block, drink water.",
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(fields)
    client = Client(practice_id=therapist.practice_id, therapist_id=therapist.id, **values)
    db.session.add(client)
    db.session.flush()
    if consent:
        grant_sms_consent(client=client)
    return client


def make_contact(client: Client, **fields: Any) -> SupportContact:
    """Create a support contact (a sponsor by default) with SMS and disclosure consent."""
    sms = fields.pop("sms_consent", True)
    scope = fields.pop("disclosure_scope", ["checkins", "missed", "urge"])
    values: dict[str, Any] = {
        "role": "sponsor",
        "display_name": "Dave R.",
        "phone": "+15005550102",
        "can_confirm": True,
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(fields)
    contact = SupportContact(practice_id=client.practice_id, client_id=client.id, **values)
    db.session.add(contact)
    db.session.flush()
    if sms:
        grant_sms_consent(contact=contact)
    if scope:
        db.session.add(
            DisclosureConsent(
                practice_id=client.practice_id,
                client_id=client.id,
                contact_id=contact.id,
                version=1,
                scope=scope,
                granted_on=date(2026, 11, 1),
                recorded_at=T0,
            )
        )
        db.session.flush()
    return contact


def grant_sms_consent(
    *, client: Client | None = None, contact: SupportContact | None = None
) -> SmsConsent:
    """Record SMS consent version 1 for a client or a contact."""
    subject = client or contact
    assert subject is not None
    kind = "client" if client is not None else "contact"
    consent = SmsConsent(
        practice_id=subject.practice_id,
        subject_key=f"{kind}:{subject.id}",
        client_id=client.id if client else None,
        contact_id=contact.id if contact else None,
        phone=subject.phone,
        version=1,
        granted=True,
        method="written",
        recorded_at=T0,
    )
    db.session.add(consent)
    db.session.flush()
    return consent


def make_meeting(practice_id: str, **fields: Any) -> Meeting:
    """Create a weekly meeting (Thursday 19:00 New York by default)."""
    values: dict[str, Any] = {
        "name": "Thursday Night Big Book",
        "fellowship": "aa",
        "day": 4,
        "time": "19:00",
        "end_time": "20:00",
        "timezone": "America/New_York",
        "location": "St. Mark's Hall",
        "address": "12 Main St, Springfield",
        "types": ["O", "B"],
        "attendance": "in_person",
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(fields)
    meeting = Meeting(practice_id=practice_id, **values)
    db.session.add(meeting)
    db.session.flush()
    return meeting


def make_plan(client: Client, meeting: Meeting, **fields: Any) -> MeetingPlan:
    """Put `meeting` on the client's plan, verified by the client, from 2026-12-01."""
    values: dict[str, Any] = {"starts_on": date(2026, 12, 1), "created_at": T0, "updated_at": T0}
    values.update(fields)
    plan = MeetingPlan(
        practice_id=client.practice_id, client_id=client.id, meeting_id=meeting.id, **values
    )
    db.session.add(plan)
    db.session.flush()
    return plan


def make_commitment(client: Client, **fields: Any) -> Commitment:
    """Create a daily 20:00 sponsor-call commitment from 2026-12-01."""
    values: dict[str, Any] = {
        "kind": "sponsor_call",
        "title": "Call Dave",
        "rrule": "FREQ=DAILY",
        "time": "20:00",
        "starts_on": date(2026, 12, 1),
        "created_at": T0,
        "updated_at": T0,
    }
    values.update(fields)
    commitment = Commitment(practice_id=client.practice_id, client_id=client.id, **values)
    db.session.add(commitment)
    db.session.flush()
    return commitment


def make_people() -> People:
    """Create alice, bob, carol and dave and commit them."""
    alice = make_therapist()
    bob = make_therapist(
        email="bob@harbor.example", name="Bob Chen", practice="Harbor Health", phone="+15005550009"
    )
    carol = make_client(alice.therapist)
    dave = make_contact(carol)
    db.session.commit()
    return People(
        alice=alice,
        bob=bob,
        carol=carol,
        dave=dave,
        riverside=alice.therapist.practice,
        harbor=bob.therapist.practice,
    )
