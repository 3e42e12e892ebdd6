"""The pure outbox rules, table-driven: send decisions, retries, backoff, validity, status order."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from service.notifications.policy import (
    DEFER,
    MAX_ATTEMPTS,
    SEND,
    SKIP,
    SendFacts,
    backoff,
    disclosure_scope,
    provider_wide,
    send_decision,
    should_retry,
    validity_seconds,
)
from service.notifications.providers import MAX_VALIDITY_SECONDS, DeliveryError
from service.notifications.replies import pick_checkin
from service.notifications.status import moves_forward

NOW = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
MORNING = datetime(2026, 12, 2, 13, 0, tzinfo=UTC)
STALE = timedelta(minutes=30)

OK = SendFacts(
    purpose="prompt",
    template="prompt_meeting_self",
    recipient="client",
    opted_out=False,
    sms_consent=True,
    disclosure_ok=True,
    client_block=None,
    expires_at=NOW + timedelta(hours=2),
    created_at=NOW,
    quiet_until=None,
    sent_today=0,
)
CRISIS = replace(OK, purpose="alert", template="crisis_therapist", recipient="staff",
                 sms_consent=False, expires_at=None)  # fmt: skip


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        (OK, (SEND, None, None)),
        (replace(OK, opted_out=True), (SKIP, "opted out", None)),
        (replace(OK, purpose="reply", opted_out=True), (SKIP, "opted out", None)),
        (replace(OK, expires_at=NOW), (SKIP, "expired", None)),
        (replace(OK, expires_at=NOW - timedelta(seconds=1)), (SKIP, "expired", None)),
        (replace(OK, sms_consent=False), (SKIP, "no sms consent", None)),
        (
            replace(OK, recipient="contact", disclosure_ok=False),
            (SKIP, "no disclosure consent", None),
        ),
        # A client's own texts never need a disclosure consent.
        (replace(OK, disclosure_ok=False), (SEND, None, None)),
        (replace(OK, client_block="client_discharged"), (SKIP, "client discharged", None)),
        (replace(OK, client_block="client_paused"), (SKIP, "client paused", None)),
        (replace(OK, purpose="reply", client_block="client_paused"), (SEND, None, None)),
        (replace(CRISIS, client_block="client_discharged"), (SEND, None, None)),
        (
            replace(OK, expires_at=None, created_at=NOW - timedelta(minutes=31)),
            (SKIP, "stale", None),
        ),
        (replace(OK, expires_at=None, created_at=NOW - timedelta(minutes=29)), (SEND, None, None)),
        # Quiet hours: a question waits for the morning, a reminder is dropped.
        (
            replace(OK, quiet_until=MORNING, expires_at=MORNING + timedelta(hours=1)),
            (DEFER, "quiet hours", MORNING),
        ),  # fmt: skip
        (replace(OK, quiet_until=MORNING), (SKIP, "expired", None)),
        (replace(OK, purpose="reminder", quiet_until=MORNING), (SKIP, "quiet hours", None)),
        (
            replace(OK, purpose="urge_request", recipient="contact", quiet_until=MORNING),
            (SKIP, "quiet hours", None),
        ),  # fmt: skip
        (replace(OK, purpose="reply", quiet_until=MORNING), (SEND, None, None)),
        (replace(CRISIS, quiet_until=MORNING), (SEND, None, None)),
        # The daily cap: the 7th text is dropped, replies and crises never are.
        (replace(OK, sent_today=5), (SEND, None, None)),
        (replace(OK, sent_today=6), (SKIP, "daily cap", None)),
        (replace(OK, purpose="reply", sent_today=60), (SEND, None, None)),
        (replace(OK, purpose="optin_confirmation", sent_today=6), (SEND, None, None)),
        (replace(CRISIS, sent_today=60), (SEND, None, None)),
        # Staff texts have no SMS consent of their own and no cap.
        (
            replace(
                OK,
                purpose="alert",
                template="alert_batch_therapist",
                recipient="staff",
                sms_consent=False,
                sent_today=50,
            ),
            (SEND, None, None),
        ),  # fmt: skip
    ],
)
def test_send_decision_table(facts, expected):
    decision = send_decision(facts, now=NOW, daily_cap=6, stale=STALE)
    assert (decision.action, decision.reason, decision.until) == expected


@pytest.mark.parametrize(
    ("purpose", "template", "scope"),
    [
        ("prompt", "prompt_contact", "checkins"),
        ("alert", "miss_notice_contact", "missed"),
        ("urge_request", "urge_sponsor_request", "urge"),
        ("reminder", None, "checkins"),
        ("reply", "help_contact", None),
        ("optin_confirmation", "optin_confirmation", None),
        ("test", "test_message", None),
    ],
)
def test_each_text_to_a_contact_needs_its_own_disclosure_scope(purpose, template, scope):
    assert disclosure_scope(purpose, template) == scope


def _error(permanent=False, status=503, code=None, **kw):
    return DeliveryError("x", permanent=permanent, status=status, code=code, **kw)


@pytest.mark.parametrize(
    ("error", "attempts", "retry"),
    [
        (_error(), 1, True),
        (_error(), MAX_ATTEMPTS - 1, True),
        (_error(), MAX_ATTEMPTS, False),
        (_error(status=429, code=20429), 2, True),
        (_error(status=None, maybe_sent=True), 3, True),
        (_error(permanent=True, status=400, code=21610), 1, False),
        (_error(permanent=True, status=400, code=21211), 1, False),
        (_error(permanent=True, status=400, code=21614), 1, False),
    ],
)
def test_should_retry_table(error, attempts, retry):
    assert should_retry(error, attempts) is retry


def test_backoff_doubles_with_jitter_and_a_cap():
    rng = random.Random(4)
    for attempts, middle in ((1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (6, 960)):
        seconds = backoff(attempts, rng).total_seconds()
        assert middle * 0.8 <= seconds <= middle * 1.2
    assert backoff(20, rng) <= timedelta(hours=1.2)
    # Jitter spreads a burst: ten messages failing together do not retry together.
    spread = {round(backoff(1, rng).total_seconds(), 3) for _ in range(10)}
    assert len(spread) == 10


def test_backoff_never_comes_before_retry_after():
    rng = random.Random(1)
    assert backoff(1, rng, retry_after=600).total_seconds() >= 600
    assert backoff(1, rng, retry_after=2 * 3600).total_seconds() >= 2 * 3600
    assert 24 <= backoff(1, rng, retry_after=1).total_seconds() <= 36


@pytest.mark.parametrize(
    ("expires_in", "purpose", "seconds"),
    [
        (timedelta(minutes=90), "prompt", 5400),
        (timedelta(days=3), "prompt", MAX_VALIDITY_SECONDS),
        (timedelta(milliseconds=10), "prompt", 1),
        (None, "prompt", 1800),
        (None, "reminder", 1800),
        (None, "alert", None),
        (None, "optin_confirmation", None),
    ],
)
def test_validity_period_follows_expiry_capped_at_twilios_maximum(expires_in, purpose, seconds):
    expires = NOW + expires_in if expires_in is not None else None
    assert validity_seconds(expires, NOW, purpose, STALE) == seconds


@pytest.mark.parametrize(
    ("error", "wide"),
    [
        (_error(status=500), True),
        (_error(status=None), True),
        (_error(status=429), True),
        (_error(status=401), True),
        (_error(status=400, code=21611), False),
        (_error(permanent=True, status=400, code=21610), False),
    ],
)
def test_provider_wide_failures_are_told_from_message_failures(error, wide):
    assert provider_wide(error) is wide


@pytest.mark.parametrize(
    ("current", "new", "moves"),
    [
        ("sending", "sent", True),
        ("sent", "delivered", True),
        ("sent", "undelivered", True),
        ("sent", "failed", True),
        ("queued", "delivered", True),
        ("delivered", "sent", False),
        ("delivered", "undelivered", False),
        ("failed", "delivered", False),
        ("sent", "sent", False),
        ("sent", "queued", False),
        ("received", "delivered", False),
        ("skipped", "sent", False),
    ],
)
def test_statuses_only_move_forward(current, new, moves):
    assert moves_forward(current, new) is moves


def _row(code):
    return SimpleNamespace(prompt_code=code)


K7, M2, A1 = _row("K7"), _row("M2"), _row("A1")


@pytest.mark.parametrize(
    ("open_", "late", "code", "picked", "codes"),
    [
        ([K7], [], None, K7, []),
        ([K7, M2], [], None, None, ["K7", "M2"]),
        ([K7, M2], [], "M2", M2, []),
        ([K7, M2], [], "m2", M2, []),
        ([K7, M2], [], "Z9", None, ["K7", "M2"]),
        ([], [A1], None, A1, []),
        ([], [A1, K7], None, None, []),
        ([], [A1], "A1", A1, []),
        ([M2], [A1], "A1", A1, []),
        ([], [], None, None, []),
        ([_row(None)], [], "K7", None, []),
    ],
)
def test_an_answer_never_lands_on_the_wrong_checkin(open_, late, code, picked, codes):
    assert pick_checkin(open_, late, code) == (picked, codes)
