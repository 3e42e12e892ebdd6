"""Shared fixtures: the app on SQLite or PostgreSQL, a pinned clock, and named test people.

TEST_DATABASE_URL selects PostgreSQL (a private database is created for the run and dropped
afterwards, so parallel runs never collide); without it every run gets a fresh SQLite file.
With TEST_DB_ONLY=1 (the PostgreSQL pass of .ci/run) tests that touch no database are skipped
from collection: they already ran on the SQLite pass.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service import create_app
from service.db import db
from service.notifications.providers import build_provider

DB_FIXTURES = {
    "app",
    "db_session",
    "client",
    "runner",
    "alice",
    "bob",
    "carol",
    "people",
    "make_app",
}


class Clock:
    """A settable clock the app reads through app.extensions["clock"]."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def set(self, value: datetime | str) -> datetime:
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        self.now = value.astimezone(UTC)
        return self.now


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("TEST_DB_ONLY") != "1":
        return
    keep, drop = [], []
    for item in items:
        (keep if DB_FIXTURES & set(getattr(item, "fixturenames", ())) else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Yield the URL of a database private to this test run."""
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        path: Path = tmp_path_factory.mktemp("db") / "steadfast-test.db"
        yield f"sqlite:///{path}"
        return
    url = make_url(base)
    name = f"steadfast_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - an unreachable server must fail the run, never skip
        pytest.exit(f"PostgreSQL at {url.render_as_string()} is unreachable: {exc}", returncode=3)
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def clock() -> Clock:
    """The app's clock, pinned; tests move it with clock.set(...)."""
    return Clock(datetime(2026, 12, 1, 17, 0, tzinfo=UTC))


BASE_OVERRIDES = {
    "STEADFAST_ENV": "test",
    "SECRET_KEY": "test-secret-key-0123456789abcdef",
    "PUBLIC_BASE_URL": "https://steadfast.example.org",
    "SMS_BACKEND": "fake",
    "TWILIO_AUTH_TOKEN": "test-twilio-auth-token",
    "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "SMS_MPS": 0,
}


@pytest.fixture(scope="session")
def _app(database_url: str, clock: Clock, tmp_path_factory: pytest.TempPathFactory):
    app = create_app({**BASE_OVERRIDES, "DATABASE_URL": database_url})
    app.extensions["clock"] = clock
    with app.app_context():
        import service.models  # noqa: F401

        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def make_app(database_url: str, clock: Clock):
    """Build another app on the same database with extra settings."""
    made = []

    def _make(**overrides):
        app = create_app({**BASE_OVERRIDES, "DATABASE_URL": database_url, **overrides})
        app.extensions["clock"] = clock
        made.append(app)
        return app

    yield _make
    for app in made:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


def _wipe() -> None:
    """Empty every table (children first) so each test starts from nothing."""
    db.session.remove()
    engine = db.engine
    tables = list(reversed(db.metadata.sorted_tables))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                conn.execute(table.delete())
            if _has_sqlite_sequence(conn):
                conn.execute(text("DELETE FROM sqlite_sequence"))


def _has_sqlite_sequence(conn) -> bool:
    return bool(
        conn.execute(text("SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'")).first()
    )


@pytest.fixture
def app(_app, clock: Clock):
    """The app inside an app context, on an empty database, with the clock reset."""
    clock.set("2026-12-01T17:00:00Z")
    with _app.app_context():
        _wipe()
        # A fresh fake provider per test, so one test's sends never leak into the next.
        _app.extensions["sms"] = build_provider("fake", vars(_app.extensions["settings"]))
        yield _app
        db.session.remove()


@pytest.fixture
def db_session(app):
    """The SQLAlchemy session of the app context."""
    return db.session


@pytest.fixture
def client(app):
    """A Flask test client."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A Flask CLI runner."""
    return app.test_cli_runner()


@pytest.fixture
def people(app):
    """The named test people (see tests/factories.py)."""
    from tests.factories import make_people

    return make_people()


@pytest.fixture
def alice(people):
    """Alice, a therapist at Riverside Counseling, with an API token."""
    return people.alice


@pytest.fixture
def bob(people):
    """Bob, a therapist at another practice, who must see nothing of Alice's."""
    return people.bob


@pytest.fixture
def carol(people):
    """Carol, Alice's client, with sponsor Dave."""
    return people.carol
