"""The poll fast path: one prepared query per poll, and rendered bodies reused per (token, ETag)."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from service import crypto, feeds
from service.db import db
from service.feed_validators import (
    CLIENT_STATE,
    TOKEN_STATE,
    TOKEN_WIDTH,
    client_validator,
    sources_of,
)
from service.feeds import FeedBodyCache
from tests.factories import make_commitment
from tests.feeds.helpers import T0, issue, make_activity, make_checkin, token_from, vevents


@pytest.fixture
def counted_renders(monkeypatch) -> list[str]:
    """Count the renders of feed bodies (a cached body is served without one)."""
    renders: list[str] = []
    real = feeds.feed_body

    def counting(owner, *, now):
        renders.append(owner.id)
        return real(owner, now=now)

    monkeypatch.setattr(feeds, "feed_body", counting)
    return renders


def test_prepared_queries_return_what_core_returns(carol, plan) -> None:
    # Every kind of source, a paused commitment and an off check-in, so no column is empty.
    make_commitment(carol, paused_until=date(2026, 12, 20))
    make_activity(carol)
    make_checkin(carol, "meeting_plan", plan.id, datetime(2026, 12, 3, 19), "excused")
    token = token_from(feeds.rotate_client_feed(carol, now=T0))
    db.session.commit()
    digest = crypto.digest(token)
    core = tuple(db.session.execute(TOKEN_STATE.statement, {"digest": digest}).one())
    prepared = TOKEN_STATE.first(digest=digest)
    assert prepared == core
    assert [type(v) for v in prepared] == [type(v) for v in core]
    sources = sources_of(prepared[TOKEN_WIDTH:])
    assert sources[7] == date(2026, 12, 20)  # the commitment's pause, a date again
    assert sources[16] == T0 and sources[16].tzinfo is not None  # the excused check-in's stamp
    assert sources[15] == 1 and None not in sources[:3]
    own = tuple(db.session.execute(CLIENT_STATE.statement, {"client_id": carol.id}).one())
    assert CLIENT_STATE.first(client_id=carol.id) == own
    assert TOKEN_STATE.first(digest=crypto.digest(feeds.new_token())) is None


def test_route_and_validator_agree(client, carol, plan) -> None:
    path = issue(carol)
    response = client.get(path)
    assert response.headers["ETag"] == client_validator(carol, now=T0).etag


def test_a_refetch_reuses_the_rendered_body(client, carol, plan, counted_renders) -> None:
    path = issue(carol)
    first, second = client.get(path), client.get(path)
    assert first.status_code == second.status_code == 200
    assert first.data == second.data and first.headers["ETag"] == second.headers["ETag"]
    assert counted_renders == [carol.id]


def test_a_change_renders_again(client, carol, plan, counted_renders) -> None:
    path = issue(carol)
    first = client.get(path)
    assert "EXDATE" not in vevents(first.data)[f"{plan.id}@steadfast"]
    make_checkin(carol, "meeting_plan", plan.id, datetime(2026, 12, 3, 19), "excused",
                 updated_at=T0 + timedelta(hours=1))  # fmt: skip
    db.session.commit()
    second = client.get(path)
    assert second.headers["ETag"] != first.headers["ETag"]
    assert "EXDATE" in vevents(second.data)[f"{plan.id}@steadfast"]
    assert counted_renders == [carol.id, carol.id]


def test_revoked_rotated_or_discharged_never_reach_a_cached_body(client, carol, plan) -> None:
    path = issue(carol)
    body = client.get(path).data
    newer = issue(carol)  # rotation revokes the old link
    assert client.get(path).status_code == 404
    assert client.get(newer).data == body
    feeds.revoke_client_feed(carol, now=T0)
    db.session.commit()
    assert client.get(newer).status_code == 404
    latest = issue(carol)
    assert client.get(latest).status_code == 200
    carol.status, carol.discharged_at = "discharged", T0
    db.session.commit()
    gone = client.get(latest)
    assert gone.status_code == 404 and gone.data == b""


def test_a_paused_commitment_counts_the_checkins_it_keeps(client, carol, counted_renders) -> None:
    # With a pause on record the validator runs its second query (check-ins in the pause).
    commitment = make_commitment(carol, paused_until=date(2026, 12, 20))
    db.session.commit()
    path = issue(carol)
    first = client.get(path)
    # Confirmed, so only the pause window (not the off statuses) brings it into the count.
    make_checkin(carol, "commitment", commitment.id, datetime(2026, 12, 10, 20), "confirmed")
    db.session.commit()
    second = client.get(path, headers={"If-None-Match": first.headers["ETag"]})
    assert second.status_code == 200 and second.headers["ETag"] != first.headers["ETag"]
    assert second.data != first.data  # that occurrence is no longer an EXDATE
    assert len(counted_renders) == 2


def test_the_body_cache_is_bounded_and_least_recently_used_goes_first() -> None:
    cache = FeedBodyCache(max_entries=2, max_bytes=10)
    cache.put(("a", "1"), b"aaaa")
    cache.put(("b", "1"), b"bbbb")
    assert cache.get(("a", "1")) == b"aaaa"  # now b is the least recently used
    cache.put(("c", "1"), b"cc")
    assert cache.get(("b", "1")) is None and len(cache) == 2
    cache.put(("d", "1"), b"dddddddd")  # 4 + 2 + 8 bytes > 10: the oldest goes, 2 + 8 fit
    assert cache.get(("a", "1")) is None
    assert cache.get(("c", "1")) == b"cc" and cache.get(("d", "1")) == b"dddddddd"
    cache.put(("e", "1"), b"x" * 11)  # larger than the whole cache: not kept
    assert cache.get(("e", "1")) is None and len(cache) == 2
    cache.clear()
    assert len(cache) == 0
