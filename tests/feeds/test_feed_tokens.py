"""Feed tokens: entropy, digest lookup, encryption at rest, rotation and revocation."""

from __future__ import annotations

import math
from datetime import timedelta

from sqlalchemy import text

from service import crypto, feeds
from service.db import db
from service.models import FeedToken
from tests.factories import make_client
from tests.feeds.helpers import T0, token_from, token_row


def test_tokens_carry_at_least_128_bits() -> None:
    tokens = {feeds.new_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert feeds.TOKEN_SHAPE.fullmatch(token)
        assert len(token) * math.log2(64) >= 128  # URL-safe base64: 6 bits a character


def test_rotate_returns_https_link_and_finds_by_digest(carol) -> None:
    url = feeds.rotate_client_feed(carol, now=T0)
    db.session.commit()
    assert url.startswith("https://steadfast.example.org/feeds/") and url.endswith(".ics")
    token = token_from(url)
    row = token_row(carol)
    assert row.digest == crypto.digest(token)
    assert feeds.find_feed(token) == row
    assert feeds.client_feed_url(carol) == url
    assert row.practice_id == carol.practice_id and row.therapist_id is None


def test_webcal_link(carol) -> None:
    url = feeds.rotate_client_feed(carol, now=T0)
    token = token_from(url)
    assert feeds.webcal_url(token) == f"webcal://steadfast.example.org/feeds/{token}.ics"


def test_plaintext_token_is_nowhere_in_the_row(carol) -> None:
    token = token_from(feeds.rotate_client_feed(carol, now=T0))
    db.session.commit()
    raw = db.session.execute(text("SELECT * FROM feed_tokens")).one()
    assert all(token not in str(value) for value in raw)
    row = token_row(carol)
    assert (
        crypto.decrypt("test-secret-key-0123456789abcdef", "feed-token", row.token_encrypted)
        == token
    )
    # Another purpose's key cannot read it.
    assert crypto.decrypt("test-secret-key-0123456789abcdef", "totp", row.token_encrypted) is None


def test_rotation_revokes_the_old_token(carol) -> None:
    old = token_from(feeds.rotate_client_feed(carol, now=T0))
    new_url = feeds.rotate_client_feed(carol, now=T0 + timedelta(minutes=1))
    db.session.commit()
    assert feeds.find_feed(old) is None
    assert feeds.find_feed(token_from(new_url)) is not None
    assert feeds.client_feed_url(carol) == new_url
    rows = db.session.query(FeedToken).filter_by(client_id=carol.id).all()
    assert sorted(r.revoked_at is None for r in rows) == [False, True]


def test_revoke(carol) -> None:
    assert feeds.revoke_client_feed(carol, now=T0) is False
    token = token_from(feeds.rotate_client_feed(carol, now=T0))
    assert feeds.revoke_client_feed(carol, now=T0) is True
    db.session.commit()
    assert feeds.find_feed(token) is None
    assert feeds.client_feed_url(carol) is None
    assert token_row(carol).revoked_at == T0


def test_malformed_and_unknown_tokens_find_nothing(carol) -> None:
    feeds.rotate_client_feed(carol, now=T0)
    for token in ("", "short", "x" * 43, "a/b" + "c" * 40, "é" * 43, feeds.new_token()):
        assert feeds.find_feed(token) is None


def test_each_client_gets_their_own_token(alice, carol) -> None:
    other = make_client(alice.therapist, display_name="Erin T.", phone="+15005550111")
    a = feeds.rotate_client_feed(carol, now=T0)
    b = feeds.rotate_client_feed(other, now=T0)
    assert a != b
    assert feeds.find_feed(token_from(b)).client_id == other.id


def test_therapist_feed_links(alice) -> None:
    therapist = alice.therapist
    url = feeds.rotate_therapist_feed(therapist, now=T0)
    db.session.commit()
    row = feeds.find_feed(token_from(url))
    assert row is not None and row.therapist_id == therapist.id and row.client_id is None
    assert feeds.therapist_feed_url(therapist) == url
    assert feeds.revoke_therapist_feed(therapist, now=T0) is True
    assert feeds.therapist_feed_url(therapist) is None


def test_changed_secret_key_hides_the_link_but_keeps_lookup(app, carol, monkeypatch) -> None:
    url = feeds.rotate_client_feed(carol, now=T0)
    db.session.commit()
    monkeypatch.setattr(app.extensions["settings"], "SECRET_KEY", "another-secret-key-0123456789")
    assert feeds.client_feed_url(carol) is None  # cannot show it again
    assert feeds.find_feed(token_from(url)) is not None  # but it still works
