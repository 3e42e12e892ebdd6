"""API test helpers: a JSON client per person, a recorder for re-planning, row counts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select

from service.db import db
from tests.factories import Person, make_commitment, make_meeting, make_plan, make_therapist

PREFIX = "/api/v1"


@dataclass
class Api:
    """Calls /api/v1 as one person."""

    client: Any
    person: Person | None

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(self.person.headers) if self.person else {}
        headers.update(extra or {})
        return headers

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(PREFIX + path, headers=self._headers(kw.pop("headers", None)), **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.post(
            PREFIX + path, json=json, headers=self._headers(kw.pop("headers", None)), **kw
        )

    def patch(self, path: str, json: Any = None, **kw: Any) -> Any:
        return self.client.patch(
            PREFIX + path, json=json, headers=self._headers(kw.pop("headers", None)), **kw
        )

    def delete(self, path: str, **kw: Any) -> Any:
        return self.client.delete(
            PREFIX + path, headers=self._headers(kw.pop("headers", None)), **kw
        )


@pytest.fixture
def api(client, alice) -> Api:
    """Alice (a therapist at Riverside) calling the API."""
    return Api(client, alice)


@pytest.fixture
def bob_api(client, bob) -> Api:
    """Bob (another practice) calling the API."""
    return Api(client, bob)


@pytest.fixture
def admin(people) -> Person:
    """An admin of Riverside, Alice's practice."""
    person = make_therapist(
        email="rhea@riverside.example", name="Rhea Admin", role="admin", phone="+15005550003"
    )
    db.session.commit()
    return person


@pytest.fixture
def admin_api(client, admin) -> Api:
    """Riverside's admin calling the API."""
    return Api(client, admin)


@dataclass
class Replans:
    """What the core asked the check-in engine to re-plan."""

    sources: list[tuple[str, str]] = field(default_factory=list)
    clients: list[str] = field(default_factory=list)


@pytest.fixture
def replans(monkeypatch) -> Iterator[Replans]:
    """Record checkins.replan_source / replan_client calls instead of planning."""
    seen = Replans()
    monkeypatch.setattr(
        "service.checkins.replan_source",
        lambda source_type, source_id, *, now: seen.sources.append((source_type, source_id)),
    )
    monkeypatch.setattr(
        "service.checkins.replan_client", lambda client_id, *, now: seen.clients.append(client_id)
    )
    yield seen


@dataclass
class World:
    """Carol's plan: a Riverside meeting, a meeting plan verified by Dave, a commitment."""

    people: Any
    meeting: Any
    plan: Any
    commitment: Any
    activity_id: str


@pytest.fixture
def world(people, replans) -> World:
    """Give Carol a meeting plan, a commitment and a therapy session."""
    from datetime import UTC, datetime

    from service.models import Activity

    meeting = make_meeting(people.riverside.id)
    plan = make_plan(people.carol, meeting, verifier_contact_id=people.dave.id)
    commitment = make_commitment(people.carol, verifier_contact_id=people.dave.id)
    t0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    activity = Activity(
        practice_id=people.carol.practice_id, client_id=people.carol.id,
        therapist_id=people.alice.id, kind="therapy_session", title="Session",
        starts_at=datetime(2026, 12, 3, 20, 0, tzinfo=UTC), duration_minutes=50,
        created_at=t0, updated_at=t0,
    )  # fmt: skip
    db.session.add(activity)
    db.session.commit()
    return World(people, meeting, plan, commitment, activity.id)


def count(model: Any) -> int:
    """Return how many rows `model` has."""
    return db.session.scalar(select(func.count()).select_from(model)) or 0


def assert_problem(response: Any, status: int, field: str | None = None) -> dict[str, Any]:
    """Check a problem+json answer (and that `field` is named in its errors)."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status
    assert body["title"] and body["detail"]
    if field is not None:
        assert field in body.get("errors", {}), body
    return body
