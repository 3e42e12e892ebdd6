"""Schemathesis against /api/v1/openapi.json: every operation, as Alice, never a 5xx, always as documented."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from service import create_app
from service.db import db
from tests.conftest import BASE_OVERRIDES
from tests.factories import make_commitment, make_contact, make_meeting, make_plan


def _refuse(host: str, port: int) -> list[str]:
    # Meeting import by URL must never leave 127.0.0.1 during fuzzing: no name resolves.
    raise OSError(f"name resolution is disabled in tests ({host})")


# The document is static (built from service/api/spec.py), so it is read once at collection from
# an app on a throwaway in-memory database; every example is then sent to the test's own app
# (app=...), which runs on the suite's SQLite or PostgreSQL database. schemathesis' lazy
# from_fixture loader does not work with this pytest (it sets Function._nodeid).
_DOC_APP = create_app({**BASE_OVERRIDES, "DATABASE_URL": "sqlite://", "SMS_BACKEND": "fake"})
# The coverage phase (hundreds of boundary cases per operation) would alone take minutes over
# 58 operations; `make test` keeps the bounded fuzzing and the documented examples.
_CONFIG = SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}})
schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", _DOC_APP, config=_CONFIG)


@pytest.fixture
def seeded(app, people, monkeypatch):
    """Carol's plan in the database and name resolution refused."""
    monkeypatch.setattr("service.fetch.resolve_host", _refuse)
    meeting = make_meeting(people.riverside.id)
    make_plan(people.carol, meeting, verifier_contact_id=people.dave.id)
    make_commitment(people.carol, verifier_contact_id=people.dave.id)
    make_contact(people.carol, display_name="Pat P.", role="peer", phone="+15005550109")
    db.session.commit()
    return app


# The checks we hold every response to. Left out on purpose:
# - positive_data_acceptance: the document describes phones and time zones as strings with a
#   pattern, but the service also checks that a number is dialable (phonenumbers) and that a
#   zone exists in tzdata; a schema-valid "+10000000" or "Aaa/Bbb" is correctly answered 422.
# - negative_data_rejection and the stateful/ignored-auth checks: the bearer-token matrix lives
#   in test_access_matrix.py and tests/api/test_tenancy.py, where the expectations are explicit.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
assert positive_data_acceptance not in CHECKS
FEED = "/feeds/{token}.ics"


@schema.parametrize()
@settings(
    max_examples=15,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_document(case: Any, seeded, alice) -> None:
    case.call_and_validate(app=seeded, headers=alice.headers, checks=CHECKS)
    # A failed example must not leave the session in a broken transaction for the next one.
    db.session.rollback()


def test_feed_miss_matches_its_document(client) -> None:
    doc = client.get("/api/v1/openapi.json").get_json()
    documented = doc["paths"][FEED]["get"]["responses"]["404"].get("content", {})
    response = client.get("/feeds/" + "0" * 43 + ".ics")
    assert response.status_code == 404
    assert response.data == b""
    # Either the document says "no body" or the answer carries a documented type.
    assert not documented or response.mimetype in documented
