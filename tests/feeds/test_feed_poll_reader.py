"""The poll's own connections on PostgreSQL (feeds.PollReader): same answer as the pooled read,
always the database's current state, and a dropped, stale, forked or disposed connection is
never used again.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import literal_column, select

from service import crypto, feeds
from service.api.feeds import PollFastPath
from service.db import db
from service.feed_validators import (
    POLL_STATE,
    POLL_STATE_LATERAL,
    TOKEN_STATE,
    Prepared,
    standalone_first,
)
from service.models import FeedToken
from tests.factories import make_client, make_commitment, make_meeting, make_plan
from tests.feeds.helpers import T0, issue, make_activity, make_checkin, token_from
from tests.feeds.test_feed_poll_fast_path import _edits
from tests.pg_sessions import terminate_backend


@pytest.fixture
def reader(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only")
    made = feeds.PollReader(db.engine)
    yield made
    made.close()


@pytest.fixture
def polled(carol, plan):
    token = token_from(issue(carol))
    return token, crypto.digest(token)


def _pid(reader: feeds.PollReader) -> int:
    return reader._connection().connection.info.backend_pid


def test_the_fast_path_reads_through_a_reader_on_postgresql_only(app, polled) -> None:
    token, _ = polled
    path = f"/feeds/{token}.ics"
    etag = app.test_client().get(path).headers["ETag"]  # records the poll: a 304 comes next
    fast = app.wsgi_app
    assert isinstance(fast, PollFastPath)
    answered = fast.wsgi_app
    passed_on = []
    fast.wsgi_app = lambda environ, start: passed_on.append(1) or answered(environ, start)
    try:
        response = app.test_client().get(path, headers={"If-None-Match": etag})
    finally:
        fast.wsgi_app = answered
    assert response.status_code == 304 and not passed_on  # the fast path answered
    if db.engine.dialect.name == "postgresql":
        assert isinstance(fast._reader, feeds.PollReader) and fast._reader.engine is db.engine
        assert fast._reader._local.held.connection is not None  # this thread's, kept
    else:
        assert fast._reader is None  # SQLite: the pool's connection, as before


def test_the_reader_gives_the_pooled_reads_values_and_sees_every_commit(
    reader, carol, plan, polled
) -> None:
    token, digest = polled
    pooled = standalone_first(POLL_STATE, db.engine, digest=digest)
    assert pooled is not None
    assert reader.first(POLL_STATE, digest=digest) == pooled
    assert reader.first(TOKEN_STATE, digest=digest) == standalone_first(TOKEN_STATE, digest=digest)
    assert reader.first(POLL_STATE, digest="0" * 64) is None
    kept = _pid(reader)
    before = feeds.poll_etag(token, engine=db.engine, now=T0, reader=reader)
    assert before == feeds.poll_etag(token, engine=db.engine, now=T0)
    # A commit elsewhere is seen by the next poll on the same kept connection (no snapshot
    # outlives a statement): the ETag changes at once, and equals the pooled read's.
    make_checkin(carol, "meeting_plan", plan.id, datetime(2026, 12, 3, 19), "excused",
                 updated_at=T0 + timedelta(hours=1))  # fmt: skip
    db.session.commit()
    after = feeds.poll_etag(token, engine=db.engine, now=T0, reader=reader)
    assert after is not None and before is not None and after[0] != before[0]
    assert after == feeds.poll_etag(token, engine=db.engine, now=T0)
    assert _pid(reader) == kept  # one connection, kept between polls
    # In autocommit: no transaction (no snapshot, no lock) is left open between polls.
    assert reader._local.held.connection.info.transaction_status == TransactionStatus.IDLE
    live = feeds.live_feed(token, now=T0)
    assert live is not None and live.validator.etag == after[0]


def test_the_readers_lateral_form_gives_poll_states_values_in_every_state(
    reader, alice, carol, plan, polled
) -> None:
    # The poll's fast path on PostgreSQL reads POLL_STATE_LATERAL; POLL_STATE (the general
    # form, as SQLite and the route read it) is what it must equal, value for value.
    token, digest = polled

    def same(digest: str) -> tuple[Any, ...] | None:
        general = standalone_first(POLL_STATE, db.engine, digest=digest)
        assert reader.first(POLL_STATE_LATERAL, digest=digest) == general
        assert standalone_first(POLL_STATE_LATERAL, db.engine, digest=digest) == general
        return general

    def state(step: str) -> None:
        db.session.commit()
        values = same(digest)
        assert values is not None, step
        assert feeds.poll_etag(token, engine=db.engine, now=T0, reader=reader) == (
            feeds.poll_etag(token, engine=db.engine, now=T0)
        ), step

    before = same(digest)
    for edit in _edits(carol, plan):
        edit()
        state(edit.__name__)
        after = same(digest)
        assert after != before, edit.__name__  # each edit changed the values
        before = after
    # Two plans of one meeting and one of another; check-ins of every status; a pause on
    # record (the fast path leaves those to the route, but the values must still agree).
    other = make_meeting(carol.practice_id, updated_at=T0 + timedelta(hours=9), revision=4)
    make_plan(carol, db.session.get(type(other), plan.meeting_id), updated_at=T0, revision=2)
    make_plan(carol, other, updated_at=T0 + timedelta(hours=8))
    state("more plans")
    for k, status in enumerate(("cancelled", "skipped", "excused", "confirmed", "missed")):
        make_checkin(carol, "meeting_plan", plan.id, datetime(2026, 12, 10 + k, 19), status,
                     updated_at=T0 + timedelta(hours=10 + k))  # fmt: skip
        state(status)
    make_activity(carol, updated_at=T0 + timedelta(hours=20), revision=3)
    make_commitment(carol, paused_until=datetime(2026, 12, 20).date())
    state("a pause")
    plan.paused_until = datetime(2026, 12, 24).date()
    state("a paused plan")
    # A client with no rows of any kind, a therapist's feed, a revoked link, no such link.
    dan = make_client(alice)
    db.session.commit()
    bare = crypto.digest(token_from(issue(dan)))
    db.session.commit()
    assert same(bare) is not None
    theirs = crypto.digest(token_from(feeds.rotate_therapist_feed(alice, now=T0)))
    db.session.commit()
    therapist_values = same(theirs)
    assert therapist_values is not None and therapist_values[4] is None
    db.session.get(FeedToken, same(digest)[0]).revoked_at = T0
    db.session.commit()
    assert same(digest)[2] is not None
    assert same("0" * 64) is None


def test_each_thread_has_its_own_connection(reader, polled) -> None:
    _, digest = polled

    def poll() -> int:
        assert reader.first(POLL_STATE, digest=digest) is not None
        return _pid(reader)

    with ThreadPoolExecutor(1) as one, ThreadPoolExecutor(1) as other:
        pids = {one.submit(poll).result(), other.submit(poll).result(), poll()}
        assert len(pids) == 3
        assert one.submit(poll).result() in pids  # kept by its thread


def test_a_connection_the_server_dropped_is_replaced_and_the_read_repeated(reader, polled) -> None:
    _, digest = polled
    expected = reader.first(POLL_STATE, digest=digest)
    dropped = _pid(reader)
    terminate_backend(dropped)  # as a restart does to every connection
    assert reader.first(POLL_STATE, digest=digest) == expected
    assert _pid(reader) != dropped


def test_another_error_closes_the_connection_and_is_raised(reader, polled) -> None:
    _, digest = polled
    assert reader.first(POLL_STATE, digest=digest) is not None
    connection = reader._local.held.connection
    with pytest.raises(psycopg.DatabaseError, match="division by zero"):
        reader.first(Prepared(lambda: select(literal_column("1/0"))))
    assert connection.closed and reader._local.held is None
    assert reader.first(POLL_STATE, digest=digest) is not None  # on a new connection
    assert reader._local.held.connection is not connection


def test_a_stale_or_forked_connection_is_not_used(reader, polled, monkeypatch) -> None:
    _, digest = polled
    first = _pid(reader)
    monkeypatch.setattr(reader, "_recycle", 0)
    time.sleep(0.01)
    assert reader.first(POLL_STATE, digest=digest) is not None
    second = _pid(reader)
    assert second != first
    monkeypatch.setattr(reader, "_recycle", 3600)
    # Made in another process (before a fork): left alone, never closed or used here.
    inherited = reader._local.held.connection
    reader._local.held.pid = os.getpid() + 1
    assert reader.first(POLL_STATE, digest=digest) is not None
    assert _pid(reader) != second and not inherited.closed
    assert feeds._INHERITED[-1] is inherited  # kept, never finalized in this process
    feeds._INHERITED.remove(inherited)
    inherited.close()


def test_disposing_the_engine_closes_the_readers_connections(reader, polled) -> None:
    _, digest = polled

    def poll() -> Any:
        assert reader.first(POLL_STATE, digest=digest) is not None
        return reader._local.held.connection

    with ThreadPoolExecutor(1) as other:
        mine, theirs = poll(), other.submit(poll).result()
        db.engine.dispose()
        assert mine.closed  # this thread's at once
        assert poll() is not mine  # a new one, made when needed
        # Another thread's is closed by that thread, at its next poll, and replaced.
        assert other.submit(poll).result() is not theirs and theirs.closed


@pytest.mark.slow
def test_polls_survive_a_postgresql_restart(clock) -> None:
    """A private cluster (never the shared server) restarted under kept connections: during the
    outage the read fails fast (the route then answers 503); afterwards it is answered again."""
    from service import create_app
    from tests.conftest import BASE_OVERRIDES
    from tests.factories import make_people
    from tests.soak._cluster import private_cluster

    with contextmanager(private_cluster)() as cluster:
        cluster.psql("CREATE DATABASE feeds")
        app = create_app({**BASE_OVERRIDES, "DATABASE_URL": cluster.database_url("feeds")})
        app.extensions["clock"] = clock
        with app.app_context():
            import service.models  # noqa: F401

            db.create_all()
            carol = make_people().carol
            make_plan(carol, make_meeting(carol.practice_id))
            token = token_from(issue(carol))
            path = f"/feeds/{token}.ics"
            etag = app.test_client().get(path).headers["ETag"]  # records the poll
            db.session.remove()
        fast = app.wsgi_app

        def poll() -> int:
            return app.test_client().get(path, headers={"If-None-Match": etag}).status_code

        assert poll() == 304 and fast._reader is not None
        before = fast._reader._local.held.connection
        cluster.stop("fast")  # ends every session (with synchronous_commit off, "immediate"
        # could lose the last commits, which is no part of this test)
        started = time.monotonic()
        assert poll() == 503  # the fast path's read failed; the route answered the outage
        assert time.monotonic() - started < 10
        cluster.start()
        assert poll() == 304  # a new connection, made when needed
        assert fast._reader._local.held.connection is not before and before.closed
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
