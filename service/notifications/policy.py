"""Pure outbox rules: may this text go now, should a failure be retried, and when."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from service.notifications.providers import MAX_VALIDITY_SECONDS, DeliveryError

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
BACKOFF_BASE = timedelta(seconds=15)
BACKOFF_CAP = timedelta(hours=1)
JITTER = 0.2  # ± this share of the delay, so retries of a burst do not line up again
# A message in `sending` for longer than this was abandoned by a dead dispatcher.
LEASE = timedelta(minutes=2)
# Twilio stamps messages with its clock; look a little before our claim for them.
LOOKUP_SKEW = timedelta(minutes=2)

# Permanent error codes that also put the number on the suppression list.
OPT_OUT_CODES: dict[int, tuple[str, str]] = {
    21610: ("opt_out", "opted_out"),
    21211: ("invalid_number", "delivery_failed"),
    21614: ("not_mobile", "delivery_failed"),
}
CRISIS_TEMPLATES = frozenset({"crisis_therapist", "crisis_oncall"})
# Purposes a person asked for just now, or must get for compliance: no cap, no quiet hours.
_UNBLOCKABLE = frozenset({"reply", "optin_confirmation", "test"})
# Texts that say something about the client to a contact, and the disclosure scope each needs.
_SCOPE_BY_TEMPLATE = {
    "prompt_contact": "checkins",
    "miss_notice_contact": "missed",
    "urge_sponsor_request": "urge",
}
_SCOPE_BY_PURPOSE = {
    "prompt": "checkins",
    "reminder": "checkins",
    "urge_request": "urge",
    "alert": "missed",
    "milestone": "checkins",
}

SEND, SKIP, DEFER = "send", "skip", "defer"


@dataclass(frozen=True)
class SendFacts:
    """What dispatch knows about one claimed message at send time."""

    purpose: str
    template: str | None
    recipient: str  # "client", "contact", "staff" (a therapist or on-call) or "other"
    opted_out: bool
    sms_consent: bool
    disclosure_ok: bool  # True when no disclosure is needed or the consent covers it
    client_block: str | None  # "client_discharged", "client_paused" or None
    expires_at: datetime | None
    created_at: datetime
    quiet_until: datetime | None  # end of the recipient's quiet hours when quiet now
    sent_today: int


@dataclass(frozen=True)
class Decision:
    """What to do with a claimed message: send, skip (final) or defer to `until`."""

    action: str
    reason: str | None = None
    until: datetime | None = None


def is_crisis(purpose: str, template: str | None) -> bool:
    """Return True for a crisis text to staff, which nothing may hold back."""
    return purpose == "alert" and template in CRISIS_TEMPLATES


def disclosure_scope(purpose: str, template: str | None) -> str | None:
    """Return the disclosure scope a text to a contact needs, or None when it reveals nothing."""
    if template in _SCOPE_BY_TEMPLATE:
        return _SCOPE_BY_TEMPLATE[template]
    if purpose in _UNBLOCKABLE:
        return None
    return _SCOPE_BY_PURPOSE.get(purpose)


def send_decision(facts: SendFacts, *, now: datetime, daily_cap: int, stale: timedelta) -> Decision:
    """Decide at send time whether a claimed message goes now, is dropped, or waits."""
    exempt = facts.purpose in _UNBLOCKABLE or is_crisis(facts.purpose, facts.template)
    person = facts.recipient in ("client", "contact")
    if facts.opted_out:
        return Decision(SKIP, "opted out")
    if facts.expires_at is not None and facts.expires_at <= now:
        return Decision(SKIP, "expired")
    if person and not facts.sms_consent:
        return Decision(SKIP, "no sms consent")
    if facts.recipient == "contact" and not facts.disclosure_ok:
        return Decision(SKIP, "no disclosure consent")
    if facts.client_block and not exempt:
        return Decision(SKIP, facts.client_block.replace("_", " "))
    timely = facts.purpose in ("prompt", "reminder")
    if timely and facts.expires_at is None and now - facts.created_at > stale:
        return Decision(SKIP, "stale")
    if person and not exempt and facts.quiet_until is not None:
        # A reminder or a call-me-now request is worthless in the morning; a question keeps.
        if facts.purpose in ("reminder", "urge_request"):
            return Decision(SKIP, "quiet hours")
        if facts.expires_at is not None and facts.expires_at <= facts.quiet_until:
            return Decision(SKIP, "expired")
        return Decision(DEFER, "quiet hours", facts.quiet_until)
    if person and not exempt and facts.sent_today >= daily_cap:
        return Decision(SKIP, "daily cap")
    return Decision(SEND)


def should_retry(error: DeliveryError, attempts: int, max_attempts: int = MAX_ATTEMPTS) -> bool:
    """Return True when a failed send should be tried again (never for a permanent error)."""
    return not error.permanent and attempts < max_attempts


def backoff(
    attempts: int,
    rng: random.Random,
    retry_after: float | None = None,
    *,
    base: timedelta = BACKOFF_BASE,
    cap: timedelta = BACKOFF_CAP,
) -> timedelta:
    """Return the wait before the next try: base·2^attempts ± jitter, capped, never under Retry-After."""
    delay = min(cap.total_seconds(), base.total_seconds() * 2 ** max(attempts, 0))
    delay *= 1 + rng.uniform(-JITTER, JITTER)
    if retry_after is not None:
        delay = max(delay, float(retry_after))
    return timedelta(seconds=delay)


def validity_seconds(
    expires_at: datetime | None, now: datetime, purpose: str, stale: timedelta
) -> int | None:
    """Return Twilio's ValidityPeriod: until the text expires, capped; None for Twilio's default."""
    if expires_at is not None:
        left = int((expires_at - now).total_seconds())
    elif purpose in ("prompt", "reminder", "urge_request"):
        left = int(stale.total_seconds())
    else:
        return None
    return max(1, min(left, MAX_VALIDITY_SECONDS))


def provider_wide(error: DeliveryError) -> bool:
    """Return True when a failure says the provider (not this message) is in trouble."""
    if error.permanent:
        return False
    return error.status is None or error.status in (401, 403, 429) or error.status >= 500
