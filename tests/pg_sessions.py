"""PostgreSQL server sessions for the tests that drop a connection under the app."""

from __future__ import annotations

import time

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from service.db import db


def terminate_backend(pid: int) -> None:
    """End one server session from outside the app's pool, and wait until it is gone."""
    admin = create_engine(db.engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar()
            gone = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p")
            deadline = time.monotonic() + 10
            while conn.execute(gone, {"p": pid}).scalar():
                assert time.monotonic() < deadline
                time.sleep(0.05)
    finally:
        admin.dispose()
