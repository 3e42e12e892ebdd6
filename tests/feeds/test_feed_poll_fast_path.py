"""The poll fast path (api.feeds.PollFastPath): every answer it gives is get_feed's, byte for byte.

Each case is asked of the whole app (fast path in front) and of the Flask app behind it alone;
the two answers must be identical, and the fast path must have answered exactly the cases it
is meant to (an unchanged live client feed polled with a matching If-None-Match, no pause on
record, no poll to record): a fast path that never answers, or answers more, fails here.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from werkzeug.test import Client as WsgiClient

from service import crypto, feeds
from service.api.feeds import PollFastPath
from service.db import db
from service.feed_validators import POLL_STATE, TOKEN_STATE, standalone_first
from service.models import CheckIn, Meeting
from tests.factories import make_commitment
from tests.feeds.helpers import (
    T0,
    feed_path,
    issue,
    make_activity,
    make_checkin,
    move_clock,
    token_from,
    token_row,
)


@pytest.fixture
def fast(app) -> PollFastPath:
    wrapper = app.wsgi_app
    assert isinstance(wrapper, PollFastPath), "the feeds blueprint installs the fast path"
    return wrapper


class Served:
    """Counts the requests the fast path passed on to the Flask app."""

    def __init__(self, fast: PollFastPath) -> None:
        self.passed_on = 0
        inner = fast.wsgi_app

        def counting(environ, start_response):
            self.passed_on += 1
            return inner(environ, start_response)

        fast.wsgi_app = counting
        self.inner = inner


@pytest.fixture
def served(fast) -> Served:
    counter = Served(fast)
    yield counter
    fast.wsgi_app = counter.inner


def _answer(wsgi, path: str, method: str = "GET", **headers: str):
    response = WsgiClient(wsgi).open(path, method=method, headers=headers)
    return response.status, sorted(response.headers.items()), response.get_data()


def _same_answer(app, fast, served, path, *, by_fast_path: bool, method="GET", **headers):
    """Ask the whole app, then the Flask app alone; both answers must be identical."""
    before = served.passed_on
    whole = _answer(app, path, method, **headers)
    assert (served.passed_on == before) == by_fast_path, (path, headers, whole[0])
    alone = _answer(served.inner, path, method, **headers)
    assert whole == alone, headers
    return whole


def test_an_unchanged_feed_is_answered_by_the_fast_path_exactly_as_by_the_route(
    app, fast, served, carol, plan
) -> None:
    path = issue(carol)
    first = app.test_client().get(path)  # records the poll: the next ones have nothing to record
    etag = first.headers["ETag"]
    for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        status, headers, body = _same_answer(
            app, fast, served, path, by_fast_path=True, **{"If-None-Match": header}
        )
        assert status == "304 NOT MODIFIED" and body == b""
        assert dict(headers)["ETag"] == etag and "Last-Modified" not in dict(headers)
    # Not for the fast path: another ETag, If-Modified-Since alone, HEAD, no condition.
    _same_answer(app, fast, served, path, by_fast_path=False, **{"If-None-Match": '"other"'})
    _same_answer(app, fast, served, path, by_fast_path=False,
                 **{"If-Modified-Since": first.headers["Last-Modified"]})  # fmt: skip
    _same_answer(app, fast, served, path, by_fast_path=False, method="HEAD",
                 **{"If-None-Match": etag})  # fmt: skip
    _same_answer(app, fast, served, path, by_fast_path=False)


def test_misses_and_other_feeds_go_to_the_route(app, fast, served, alice, carol, plan) -> None:
    path = issue(carol)
    etag = app.test_client().get(path).headers["ETag"]
    unknown = "/feeds/" + "A" * 43 + ".ics"
    for miss in (unknown, "/feeds/short.ics", "/feeds/" + "A" * 44 + ".ics"):
        status, _, _ = _same_answer(app, fast, served, miss, by_fast_path=False,
                                    **{"If-None-Match": "*"})  # fmt: skip
        assert status.startswith("404")
    # A therapist's feed: the route answers (its validator is another query).
    mine = feed_path(feeds.rotate_therapist_feed(alice.therapist, now=T0))
    db.session.commit()
    theirs = app.test_client().get(mine).headers["ETag"]
    status, _, _ = _same_answer(app, fast, served, mine, by_fast_path=False,
                                **{"If-None-Match": theirs})  # fmt: skip
    assert status.startswith("304")
    # Revoked, then discharged: 404 from the route, never a 304 from the fast path.
    feeds.revoke_client_feed(carol, now=T0)
    db.session.commit()
    status, _, _ = _same_answer(app, fast, served, path, by_fast_path=False,
                                **{"If-None-Match": etag})  # fmt: skip
    assert status.startswith("404")
    path = issue(carol)
    etag = app.test_client().get(path).headers["ETag"]
    carol.status = "discharged"
    db.session.commit()
    status, _, _ = _same_answer(app, fast, served, path, by_fast_path=False,
                                **{"If-None-Match": etag})  # fmt: skip
    assert status.startswith("404")


def test_a_poll_to_record_goes_to_the_route_which_records_it(
    app, fast, served, clock, carol, plan
) -> None:
    path = issue(carol)
    etag = app.test_client().get(path).headers["ETag"]
    assert token_row(carol).poll_count == 1
    move_clock(clock, T0 + feeds.POLL_RECORD_INTERVAL - timedelta(seconds=1))
    _same_answer(app, fast, served, path, by_fast_path=True, **{"If-None-Match": etag})
    move_clock(clock, T0 + feeds.POLL_RECORD_INTERVAL)
    before = served.passed_on
    assert app.test_client().get(path, headers={"If-None-Match": etag}).status_code == 304
    assert served.passed_on == before + 1  # the route answered, and recorded the poll
    db.session.expire_all()
    row = token_row(carol)
    assert row.poll_count == 2 and row.last_seen_at == clock.now
    _same_answer(app, fast, served, path, by_fast_path=True, **{"If-None-Match": etag})


def test_a_pause_on_record_goes_to_the_route(app, fast, served, carol, plan) -> None:
    plan.paused_until = date(2026, 12, 18)
    plan.updated_at = T0
    db.session.commit()
    path = issue(carol)
    etag = app.test_client().get(path).headers["ETag"]
    status, _, _ = _same_answer(app, fast, served, path, by_fast_path=False,
                                **{"If-None-Match": etag})  # fmt: skip
    assert status.startswith("304")


def _edits(carol, plan):
    """Edits that change the feed, each committed in turn (as the API and the sweeps do)."""

    def excuse():
        make_checkin(carol, "meeting_plan", plan.id, datetime(2026, 12, 3, 19), "excused",
                     updated_at=T0 + timedelta(hours=1))  # fmt: skip

    def correct_the_excuse():
        checkin = db.session.scalars(select(CheckIn).where(CheckIn.status == "excused")).one()
        checkin.status, checkin.updated_at = "confirmed", T0 + timedelta(hours=2)

    def move_the_meeting():
        meeting = db.session.get(Meeting, plan.meeting_id)
        meeting.time, meeting.updated_at = "19:30", T0 + timedelta(hours=3)
        meeting.revision = (meeting.revision or 0) + 1

    def add_a_commitment():
        make_commitment(carol, created_at=T0 + timedelta(hours=4))

    def add_a_session():
        make_activity(carol, updated_at=T0 + timedelta(hours=5))

    def change_the_zone():
        carol.timezone, carol.updated_at = "Europe/Paris", T0 + timedelta(hours=6)

    def set_a_sobriety_date():
        carol.sobriety_date = date(2025, 12, 24)

    def edit_the_plan():
        plan.revision, plan.updated_at = (plan.revision or 0) + 1, T0 + timedelta(hours=7)

    return [excuse, correct_the_excuse, move_the_meeting, add_a_commitment, add_a_session,
            change_the_zone, set_a_sobriety_date, edit_the_plan]  # fmt: skip


def test_every_edit_ends_the_fast_paths_304_and_its_etag_is_the_routes(
    app, fast, served, carol, plan
) -> None:
    path = issue(carol)
    token = token_from(path)
    etag = app.test_client().get(path).headers["ETag"]
    for edit in _edits(carol, plan):
        edit()
        db.session.commit()
        # The old ETag is stale: both answer 200 with the new one, never a 304.
        status, headers, _ = _same_answer(app, fast, served, path, by_fast_path=False,
                                          **{"If-None-Match": etag})  # fmt: skip
        assert status == "200 OK", edit.__name__
        new = dict(headers)["ETag"]
        assert new != etag, edit.__name__
        etag = new
        # The fast path's ETag (from POLL_STATE) is live_feed's (from TOKEN_STATE).
        found = feeds.poll_etag(token, engine=db.engine, now=T0)
        live = feeds.live_feed(token, now=T0)
        assert found is not None and live is not None
        assert found[0] == live.validator.etag == etag, edit.__name__
        _same_answer(app, fast, served, path, by_fast_path=True, **{"If-None-Match": etag})


def test_a_new_year_changes_the_fast_paths_etag_too(app, fast, served, clock, carol, plan) -> None:
    path = issue(carol)
    etag = app.test_client().get(path).headers["ETag"]
    move_clock(clock, datetime(2027, 1, 1, 0, 0, 30, tzinfo=UTC))
    app.test_client().get(path)  # records the poll of the new year
    status, _, _ = _same_answer(app, fast, served, path, by_fast_path=False,
                                **{"If-None-Match": etag})  # fmt: skip
    assert status == "200 OK"


def test_poll_state_is_token_state_without_last_modifieds_aggregate(app, carol, plan) -> None:
    path = issue(carol)
    digest = crypto.digest(token_from(path))
    poll = standalone_first(POLL_STATE, digest=digest)
    full = standalone_first(TOKEN_STATE, digest=digest)
    assert poll is not None and full is not None
    assert len(poll) == len(full) - 1 and tuple(full[:-1]) == tuple(poll)


def test_an_error_in_the_fast_path_is_left_to_the_route(
    app, fast, served, carol, plan, monkeypatch
) -> None:
    path = issue(carol)
    etag = app.test_client().get(path).headers["ETag"]

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(feeds, "poll_etag", broken)
    status, _, _ = _same_answer(app, fast, served, path, by_fast_path=False,
                                **{"If-None-Match": etag})  # fmt: skip
    assert status.startswith("304")
