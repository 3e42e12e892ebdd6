"""SQLite "database is locked": a request that meets another process's write lock waits, then succeeds."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy.engine import make_url

from service.db import db
from service.models import Client

HOLD_SECONDS = 1.5


def _hold_lock(path: str, mode: str, held: threading.Event, seconds: float) -> None:
    # Another connection (as another worker or the scheduler would be) holds the lock.
    conn = sqlite3.connect(path, timeout=5, isolation_level=None)
    try:
        conn.execute(f"BEGIN {mode}")
        conn.execute("UPDATE practices SET name = name")
        held.set()
        time.sleep(seconds)
        conn.execute("COMMIT")
    finally:
        conn.close()


@pytest.fixture
def sqlite_path(database_url: str) -> str:
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        pytest.skip("SQLite-only: PostgreSQL has row locks, not a database-wide write lock")
    return str(url.database)


@pytest.mark.parametrize("mode", ["IMMEDIATE", "EXCLUSIVE"])
def test_a_write_waits_for_the_lock_and_succeeds(app, client, alice, sqlite_path, mode):
    held = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(sqlite_path, mode, held, HOLD_SECONDS))
    db.session.remove()  # the request must use its own connection, not one opened before
    holder.start()
    assert held.wait(5)
    started = time.monotonic()
    response = client.post(
        "/api/v1/clients",
        json={"display_name": "Lock W.", "phone": "+12015550177", "timezone": "UTC"},
        headers=alice.headers,
    )
    waited = time.monotonic() - started
    holder.join()
    assert response.status_code == 201, response.get_data(as_text=True)
    assert b"locked" not in response.data
    # It really waited for the lock (not a lucky ordering), within the 30 s busy timeout.
    assert HOLD_SECONDS * 0.5 <= waited < 30, waited
    assert db.session.get(Client, response.get_json()["id"]) is not None


def test_a_read_waits_for_an_exclusive_lock(app, client, alice, carol, sqlite_path):
    db.session.commit()
    held = threading.Event()
    holder = threading.Thread(target=_hold_lock, args=(sqlite_path, "EXCLUSIVE", held, 1.0))
    db.session.remove()
    holder.start()
    assert held.wait(5)
    response = client.get("/api/v1/clients", headers=alice.headers)
    holder.join()
    assert response.status_code == 200, response.get_data(as_text=True)
    assert len(response.get_json()["items"]) == 1
