"""A database that is down: the web answers 503 (never 500, never a hang), sweeps back off.

The real restart of a PostgreSQL server mid-run is tests/soak/test_pg_restart.py; here the
database is a closed port on 127.0.0.1 (bound, never listening: connecting is refused).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from service import create_app, crypto
from service.db import PG_CONNECT_TIMEOUT, db, engine_options, is_database_outage
from service.jobs import scheduler as sched
from service.jobs.sweeps import plan_ahead
from tests.conftest import BASE_OVERRIDES
from tests.pg_sessions import terminate_backend

# Not a latency assertion: a request against a dead database must not hang. Connecting to a
# refused port fails at once; PG_CONNECT_TIMEOUT bounds the cases where it would not.
HANG_GUARD_SECONDS = 15


@pytest.fixture
def down_app() -> Iterator:
    """An app whose PostgreSQL URL points at a port on 127.0.0.1 that refuses connections."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))  # bound, not listening: nothing else can take the port
    port = holder.getsockname()[1]
    app = create_app(
        {**BASE_OVERRIDES, "DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{port}/gone"}
    )

    @app.get("/probe/dashboard-query")
    def _probe_query():  # a dashboard-side view that needs the database
        db.session.execute(text("SELECT 1"))
        return "unreachable"

    @app.get("/api/v1/probe-integrity")
    def _probe_integrity():  # a constraint error is a bug or a conflict, not an outage
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))

    try:
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()
        holder.close()


def _timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def test_postgresql_engine_bounds_connecting():
    options = engine_options("postgresql+psycopg://postgres@127.0.0.1:5432/x")
    assert options["connect_args"]["connect_timeout"] == PG_CONNECT_TIMEOUT
    assert options["pool_recycle"] > 0 and options["pool_timeout"] > 0
    # Dead pooled connections are found by the checkout listener, without a ping per checkout.
    assert not options.get("pool_pre_ping")
    assert "pool_pre_ping" not in engine_options("sqlite:///x.db")


def _backend_pid(connection) -> int:
    return connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()


def test_a_pooled_connection_the_server_dropped_is_replaced_at_checkout(app):
    """What pool_pre_ping did (a restart's dead connections are never handed out), unpinged."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    db.session.remove()
    db.engine.dispose()  # one connection in the pool from here on
    with db.engine.connect() as conn:
        dropped = _backend_pid(conn)
    terminate_backend(dropped)  # the connection waits in the pool, its server session gone
    with db.engine.connect() as conn:
        assert _backend_pid(conn) != dropped
    with db.engine.connect() as conn:  # a live pooled connection is kept: no reconnect
        kept = _backend_pid(conn)
    with db.engine.connect() as conn:
        assert _backend_pid(conn) == kept


def test_a_feed_poll_retries_once_when_the_server_drops_it_mid_query(app, monkeypatch):
    """The connection dies after checkout: the read is repeated on a new one, not a 503."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    import service.db
    from service import feeds
    from service.feed_validators import TOKEN_STATE, _autocommit, standalone_first
    from tests.factories import make_people

    carol = make_people().carol
    url = feeds.rotate_client_feed(carol, now=datetime(2026, 12, 1, 17, tzinfo=UTC))
    db.session.commit()
    carol_id = carol.id
    digest = crypto.digest(url.rsplit("/", 1)[1].removesuffix(".ics"))
    db.session.remove()
    db.engine.dispose()  # one connection in the pool from here on
    with _autocommit(db.engine).connect() as conn:
        dropped = _backend_pid(conn)
    terminate_backend(dropped)
    # As if the server went away just after the checkout's check.
    monkeypatch.setattr(service.db, "_server_hung_up", lambda _connection: False)
    values = standalone_first(TOKEN_STATE, digest=digest)
    assert values is not None and values[4] == carol_id
    with _autocommit(db.engine).connect() as conn:
        assert _backend_pid(conn) != dropped


def test_api_answers_503_problem_json_with_retry_after_when_the_database_is_down(down_app):
    client = down_app.test_client()
    response, seconds = _timed(
        lambda: client.get("/api/v1/clients", headers={"Authorization": "Bearer st_nothing"})
    )
    assert response.status_code == 503
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"] == "5"
    body = response.get_json()
    assert body["status"] == 503 and "database" in body["detail"]
    assert seconds < HANG_GUARD_SECONDS


def test_readyz_answers_503_when_the_database_is_down(down_app):
    client = down_app.test_client()
    response, seconds = _timed(lambda: client.get("/readyz"))
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": False, "migrations": False}
    assert response.headers["Retry-After"]
    assert seconds < HANG_GUARD_SECONDS
    assert client.get("/healthz").status_code == 200  # alive, just not ready


def test_dashboard_answers_a_503_page_not_a_500_when_the_database_is_down(down_app):
    response = down_app.test_client().get("/probe/dashboard-query")
    assert response.status_code == 503
    assert response.mimetype == "text/html"
    assert response.headers["Retry-After"] == "5"
    assert b"Temporarily unavailable" in response.data


def test_a_constraint_error_is_a_409_conflict_not_an_outage(down_app):
    # A unique constraint that no validation caught means a concurrent write won: the caller
    # can reload and retry; it is neither "the database is down" (503) nor a crash (500).
    response = down_app.test_client().get("/api/v1/probe-integrity")
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"
    assert "Retry-After" not in response.headers


def test_outage_classification():
    assert is_database_outage(OperationalError("SELECT 1", {}, Exception("refused")))
    assert not is_database_outage(IntegrityError("INSERT", {}, Exception("duplicate")))
    assert not is_database_outage(ValueError("not a database error"))


# ---- the scheduler's back-off ----------------------------------------------------------


def test_backoff_schedule_doubles_from_the_base_up_to_the_cap():
    assert sched.backoff_delay(0) == 0
    assert [sched.backoff_delay(n, base=2, cap=60) for n in range(1, 8)] == [
        2, 4, 8, 16, 32, 60, 60,
    ]  # fmt: skip
    assert sched.backoff_delay(10_000, base=2, cap=120) == 120


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_failures_during_one_hold_count_once_and_a_success_ends_the_backoff():
    clock = FakeClock()
    backoff = sched.DatabaseBackoff(base=2, cap=10, clock=clock)
    assert backoff.remaining() == 0
    assert backoff.failed() == 2
    clock.now += 0.5
    assert backoff.failed() == 1.5  # another sweep failing in the same hold: not a new failure
    assert backoff.failures == 1
    clock.now += 1.5
    assert backoff.remaining() == 0
    assert backoff.failed() == 4
    clock.now += 4
    assert backoff.failed() == 8
    clock.now += 8
    assert backoff.failed() == 10  # capped
    assert backoff.failures == 4
    assert backoff.succeeded() == 4
    assert backoff.failures == 0
    assert backoff.succeeded() == 0
    clock.now += 10
    assert backoff.failed() == 2  # a new outage starts from the base again


def test_a_sweep_hitting_a_dead_database_backs_off_instead_of_dying(down_app, caplog):
    clock = FakeClock()
    backoff = sched.DatabaseBackoff(base=2, cap=60, clock=clock)
    holds: list[float] = []
    job = sched._job(down_app, "plan_ahead", plan_ahead, backoff, holds.append)
    with caplog.at_level(logging.WARNING, logger="service.jobs.scheduler"):
        job()  # the real sweep, against the refused port: must not raise
    assert holds == [2]
    assert backoff.failures == 1
    assert "database unavailable" in caplog.text and "back off" in caplog.text
    caplog.clear()
    job()  # still inside the hold: not even attempted
    assert holds == [2] and backoff.failures == 1 and not caplog.text
    clock.now += 2
    job()
    assert holds == [2, 4] and backoff.failures == 2


def test_sweeps_resume_and_say_so_once_the_database_answers(app, caplog):
    clock = FakeClock()
    backoff = sched.DatabaseBackoff(base=2, cap=60, clock=clock)
    holds: list[float] = []
    outage = {"on": True}

    def sweep(now):
        if outage["on"]:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        return 3

    job = sched._job(app, "dispatch", sweep, backoff, holds.append)
    job()
    assert holds == [2]
    outage["on"] = False
    clock.now += 2
    with caplog.at_level(logging.WARNING, logger="service.jobs.scheduler"):
        job()
    assert backoff.failures == 0 and holds == [2]
    assert "sweeps resume" in caplog.text


def test_other_sweep_errors_are_logged_without_holding_the_others(app, caplog):
    backoff = sched.DatabaseBackoff(clock=FakeClock())
    holds: list[float] = []

    def sweep(now):
        raise RuntimeError("a bug in one sweep")

    with caplog.at_level(logging.ERROR, logger="service.jobs.scheduler"):
        sched._job(app, "send_digests", sweep, backoff, holds.append)()
    assert holds == [] and backoff.failures == 0
    assert "sweep send_digests failed" in caplog.text


def test_hold_moves_every_due_job_to_the_end_of_the_backoff(make_app):
    app = make_app(SCHEDULER_INTERVAL_SCALE=0.1)
    scheduler = sched.build_scheduler(app)
    intervals = {job.id: job.trigger.interval.total_seconds() for job in scheduler.get_jobs()}
    assert intervals["dispatch"] == pytest.approx(sched.INTERVALS["dispatch"] * 0.1)
    before = min(job.next_run_time for job in scheduler.get_jobs())
    sched._hold_jobs(scheduler)(30)
    after = [job.next_run_time for job in scheduler.get_jobs()]
    assert all((t - before).total_seconds() >= 29 for t in after)


def test_interval_scale_must_be_positive(tmp_path):
    from service.config import ConfigError, load_settings

    scaled = load_settings({"SCHEDULER_INTERVAL_SCALE": "0.25"}, instance_path=tmp_path)
    assert scaled.SCHEDULER_INTERVAL_SCALE == 0.25
    with pytest.raises(ConfigError, match="SCHEDULER_INTERVAL_SCALE"):
        load_settings({"SCHEDULER_INTERVAL_SCALE": "0"}, instance_path=tmp_path)
