"""GET /feeds/<token>.ics and the link API: headers, conditional GET, 404s, guess limits, audit."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import icalendar
import pytest
from werkzeug.http import http_date

from service import feeds
from service.db import db
from service.models import AuditEntry, FeedToken, RateLimitBucket
from service.plans import update_commitment, update_plan
from tests.factories import make_client, make_commitment
from tests.feeds.helpers import (
    T0,
    feed_path,
    issue,
    make_alert,
    make_checkin,
    move_clock,
    token_from,
    token_row,
    vevents,
)

GOOGLE = {"REMOTE_ADDR": "66.249.66.1"}
GUESSER = {"REMOTE_ADDR": "203.0.113.9"}


@pytest.fixture
def commitment(carol):
    row = make_commitment(carol)
    db.session.commit()
    return row


def test_feed_answers_calendar_with_validators(client, carol, plan) -> None:
    response = client.get(issue(carol), environ_base=GOOGLE)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/calendar; charset=utf-8"
    assert response.headers["Cache-Control"].startswith("private, max-age=")
    assert response.headers["ETag"].startswith('"') and response.headers["ETag"].endswith('"')
    assert response.headers["Last-Modified"] == http_date(T0)
    calendar = icalendar.Calendar.from_ical(response.data)
    assert str(calendar["X-WR-CALNAME"]) == str(calendar["NAME"]) == "Steadfast"
    assert f"{plan.id}@steadfast" in vevents(response.data)


def test_same_rows_same_bytes_and_etag(client, carol, plan) -> None:
    path = issue(carol)
    first, second = client.get(path), client.get(path)
    assert first.data == second.data
    assert first.headers["ETag"] == second.headers["ETag"]
    body, etag, last_modified = feeds.render_client_feed(carol, now=T0)
    assert body == first.data and etag == first.headers["ETag"]
    assert last_modified == T0


def test_if_none_match_gets_304_without_body(client, carol, plan) -> None:
    path = issue(carol)
    etag = client.get(path).headers["ETag"]
    for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
        response = client.get(path, headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.data == b""
        assert response.headers["ETag"] == etag
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200


def test_if_modified_since_gets_304_without_body(client, carol, plan) -> None:
    path = issue(carol)
    stamp = client.get(path).headers["Last-Modified"]
    response = client.get(path, headers={"If-Modified-Since": stamp})
    assert response.status_code == 304 and response.data == b""
    earlier = http_date(T0 - timedelta(seconds=1))
    assert client.get(path, headers={"If-Modified-Since": earlier}).status_code == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2).
    both = {"If-Modified-Since": stamp, "If-None-Match": '"other"'}
    assert client.get(path, headers=both).status_code == 200


def _sequence(body: bytes, uid: str) -> int:
    return int(vevents(body)[uid]["SEQUENCE"])


def test_commitment_time_change_changes_etag_and_sequence(client, clock, carol, commitment) -> None:
    path = issue(carol)
    before = client.get(path)
    uid = f"{commitment.id}@steadfast"
    move_clock(clock, T0 + timedelta(hours=2))
    update_commitment(commitment, carol, values={"time": "21:00"}, now=clock.now)
    db.session.commit()
    stale = client.get(path, headers={"If-None-Match": before.headers["ETag"]})
    assert stale.status_code == 200
    assert stale.headers["ETag"] != before.headers["ETag"]
    assert _sequence(stale.data, uid) == _sequence(before.data, uid) + 1
    assert vevents(stale.data)[uid]["DTSTART"].dt.hour == 21
    assert stale.headers["Last-Modified"] == http_date(clock.now)
    # Nothing changed since: back to 304.
    again = client.get(path, headers={"If-None-Match": stale.headers["ETag"]})
    assert again.status_code == 304


def test_plan_pause_changes_etag_sequence_and_exdates(client, clock, carol, plan) -> None:
    path = issue(carol)
    before = client.get(path)
    uid = f"{plan.id}@steadfast"
    assert "EXDATE" not in vevents(before.data)[uid]
    values = {"meeting_id": plan.meeting_id, "paused_until": date(2026, 12, 18)}
    update_plan(plan, carol, values=values, now=T0)
    db.session.commit()
    after = client.get(path, headers={"If-None-Match": before.headers["ETag"]})
    assert after.status_code == 200 and after.headers["ETag"] != before.headers["ETag"]
    assert _sequence(after.data, uid) == _sequence(before.data, uid) + 1
    assert b"EXDATE;TZID=America/New_York:20261203T190000,20261210T190000,20261217T190000" in (
        after.data.replace(b"\r\n ", b"")
    )


def test_new_day_keeps_the_etag_new_year_changes_it(client, clock, carol, plan) -> None:
    path = issue(carol)
    etag = client.get(path).headers["ETag"]
    move_clock(clock, "2026-12-09T17:00:00Z")
    assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
    move_clock(clock, "2027-01-01T05:00:00Z")
    response = client.get(path, headers={"If-None-Match": etag})
    assert response.status_code == 200
    assert response.headers["Last-Modified"] == http_date(clock.now.replace(hour=0))


@pytest.mark.parametrize(
    "path",
    [
        "/feeds/" + "A" * 43 + ".ics",  # well-formed, unknown
        "/feeds/short.ics",
        "/feeds/" + "A" * 42 + "!.ics",
        "/feeds/" + "A" * 44 + ".ics",
        "/feeds/nothing-here",
        "/feeds/a/b/c.ics",
        "/feeds/.ics",
    ],
)
def test_unknown_and_malformed_tokens_get_an_empty_404(client, carol, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.data == b""
    assert "Content-Type" not in response.headers


def test_revoked_token_gets_the_same_empty_404(client, carol, plan) -> None:
    path = issue(carol)
    feeds.revoke_client_feed(carol, now=T0)
    db.session.commit()
    revoked = client.get(path)
    unknown = client.get("/feeds/" + "A" * 43 + ".ics")
    assert revoked.status_code == unknown.status_code == 404
    assert revoked.data == unknown.data == b""
    assert sorted(revoked.headers.items()) == sorted(unknown.headers.items())


def test_discharged_clients_feed_ends(client, carol, plan) -> None:
    path = issue(carol)
    carol.status = "discharged"
    carol.discharged_at = T0
    db.session.commit()
    response = client.get(path)
    assert response.status_code == 404 and response.data == b""


def test_guessing_is_limited_per_address_but_valid_polls_never_are(client, clock, alice) -> None:
    # Google's servers poll many feeds from one address, hourly, for days.
    people = [make_client(alice.therapist, display_name=f"Client {n}", phone=f"+1500555020{n}")
              for n in range(5)]  # fmt: skip
    paths = [issue(person) for person in people]
    etags = {path: client.get(path, environ_base=GOOGLE).headers["ETag"] for path in paths}
    for hour in range(1, 13):  # 60 polls from one address: three times the miss limit
        move_clock(clock, T0 + timedelta(hours=hour))
        for path in paths:
            seen = {"If-None-Match": etags[path]}
            assert client.get(path, environ_base=GOOGLE, headers=seen).status_code == 304
    assert db.session.get(RateLimitBucket, "feed-miss:66.249.66.1") is None
    # A guesser gets 20 misses per 10 minutes, then 429 with Retry-After and no body.
    move_clock(clock, "2026-12-05T12:00:00Z")
    guesses = ["/feeds/" + feeds.new_token() + ".ics" for _ in range(25)]
    answers = [client.get(path, environ_base=GUESSER) for path in guesses]
    assert [a.status_code for a in answers] == [404] * 20 + [429] * 5
    assert answers[-1].data == b""
    assert 0 < int(answers[-1].headers["Retry-After"]) <= 600
    # The same address still gets every valid feed (a shared poller is never refused) ...
    for path in paths:
        assert client.get(path, environ_base=GUESSER).status_code == 200
    # ... other addresses are unaffected, and the window ends.
    assert client.get(guesses[0], environ_base=GOOGLE).status_code == 404
    move_clock(clock, "2026-12-05T12:10:01Z")
    assert client.get(guesses[0], environ_base=GUESSER).status_code == 404


def test_polls_count_and_stamp_last_seen(client, clock, carol, plan) -> None:
    path = issue(carol)
    etag = client.get(path).headers["ETag"]
    move_clock(clock, T0 + timedelta(hours=1))
    client.get(path, headers={"If-None-Match": etag})  # a 304 is a poll too
    db.session.expire_all()
    row = token_row(carol)
    assert row.poll_count == 2 and row.last_seen_at == clock.now
    assert db.session.query(AuditEntry).count() == 0  # polls are not people


def test_link_api_rotates_and_revokes(client, alice, carol, plan) -> None:
    first = client.post(f"/api/v1/clients/{carol.id}/feed", headers=alice.headers)
    assert first.status_code == 201
    body = first.get_json()
    token = token_from(body["url"])
    assert body == {
        "url": f"https://steadfast.example.org/feeds/{token}.ics",
        "webcal_url": f"webcal://steadfast.example.org/feeds/{token}.ics",
    }
    assert first.headers["Location"] == body["url"]
    assert client.get(feed_path(body["url"])).status_code == 200
    second = client.post(f"/api/v1/clients/{carol.id}/feed", headers=alice.headers).get_json()
    assert second["url"] != body["url"]
    assert client.get(feed_path(body["url"])).status_code == 404  # rotated away
    gone = client.delete(f"/api/v1/clients/{carol.id}/feed", headers=alice.headers)
    assert gone.status_code == 204 and gone.data == b""
    assert client.get(feed_path(second["url"])).status_code == 404
    actions = db.session.query(AuditEntry).order_by(AuditEntry.at, AuditEntry.id).all()
    assert [(a.action, a.actor_id, a.client_id) for a in actions] == [
        ("feed.rotate", alice.id, carol.id),
        ("feed.rotate", alice.id, carol.id),
        ("feed.revoke", alice.id, carol.id),
    ]
    assert all(token not in str(a.detail) for a in actions)


def test_another_practice_cannot_touch_the_link(client, bob, alice, carol) -> None:
    url = feeds.rotate_client_feed(carol, now=T0)
    db.session.commit()
    for method in ("post", "delete"):
        response = getattr(client, method)(f"/api/v1/clients/{carol.id}/feed", headers=bob.headers)
        assert response.status_code == 404
    assert client.get(feed_path(url)).status_code == 200  # untouched
    assert db.session.query(FeedToken).count() == 1
    assert client.post(f"/api/v1/clients/{carol.id}/feed").status_code == 401


def test_no_link_for_a_discharged_client(client, alice, carol) -> None:
    carol.status = "discharged"
    db.session.commit()
    response = client.post(f"/api/v1/clients/{carol.id}/feed", headers=alice.headers)
    assert response.status_code == 409


def test_therapist_link_api(client, alice, carol) -> None:
    made = client.post("/api/v1/therapists/me/feed", headers=alice.headers)
    assert made.status_code == 201
    path = feed_path(made.get_json()["url"])
    response = client.get(path)
    assert response.status_code == 200 and b"Carol" not in response.data
    assert client.delete("/api/v1/therapists/me/feed", headers=alice.headers).status_code == 204
    assert client.get(path).status_code == 404
    audit = [(a.action, a.subject_type, a.subject_id) for a in db.session.query(AuditEntry)]
    assert sorted(audit) == [
        ("feed.revoke", "therapist", alice.id),
        ("feed.rotate", "therapist", alice.id),
    ]


def test_a_failing_feed_never_logs_its_token(client, carol, plan, monkeypatch, caplog) -> None:
    path = issue(carol)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(feeds, "feed_body", broken)
    response = client.get(path)
    assert response.status_code == 500 and response.data == b""
    token = path.removeprefix("/feeds/").removesuffix(".ics")
    assert "boom" in caplog.text and token not in caplog.text


def test_closing_a_follow_up_is_seen_by_if_modified_since(client, clock, alice, carol) -> None:
    alert = make_alert(carol)
    path = feed_path(feeds.rotate_therapist_feed(alice.therapist, now=T0))
    db.session.commit()
    first = client.get(path)
    stamp = first.headers["Last-Modified"]
    assert client.get(path, headers={"If-Modified-Since": stamp}).status_code == 304
    alert.status, alert.resolved_at = "resolved", T0 + timedelta(hours=3)
    db.session.commit()
    later = client.get(path, headers={"If-Modified-Since": stamp})
    assert later.status_code == 200 and later.headers["ETag"] != first.headers["ETag"]
    assert f"{alert.id}@steadfast" not in vevents(later.data)


def test_a_corrected_excuse_is_seen_by_both_validators(client, carol, plan) -> None:
    excused = make_checkin(carol, "meeting_plan", plan.id, datetime(2026, 12, 3, 19), "excused")
    path = issue(carol)
    first = client.get(path)
    assert "EXDATE" in vevents(first.data)[f"{plan.id}@steadfast"]
    excused.status, excused.updated_at = "confirmed", T0 + timedelta(hours=5)
    db.session.commit()
    for header in ("If-None-Match", "If-Modified-Since"):
        value = first.headers["ETag" if header == "If-None-Match" else "Last-Modified"]
        again = client.get(path, headers={header: value})
        assert again.status_code == 200, header
        assert "EXDATE" not in vevents(again.data)[f"{plan.id}@steadfast"]


def test_a_200_commits_only_when_it_recorded_a_poll(
    client, clock, carol, plan, monkeypatch
) -> None:
    path = issue(carol)
    commits = []
    session_class = type(db.session())
    real_commit = session_class.commit
    monkeypatch.setattr(
        session_class, "commit", lambda self: commits.append(1) or real_commit(self)
    )
    first = client.get(path)  # the first poll is recorded: one commit
    assert (first.status_code, len(commits)) == (200, 1)
    second = client.get(path)  # within the record interval, from the cache: nothing to commit
    assert (second.status_code, second.data, len(commits)) == (200, first.data, 1)
    move_clock(clock, T0 + timedelta(hours=1))
    assert client.get(path).status_code == 200 and len(commits) == 2  # due again: recorded
    db.session.expire_all()
    assert token_row(carol).poll_count == 2
