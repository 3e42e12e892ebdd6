"""Hundreds of texts through a fake Twilio failing at random: right final states, backoff kept, no retry storm."""

from __future__ import annotations

import random
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from service.db import db
from service.models import Message
from service.models.consent import OptOut
from service.notifications import policy
from service.notifications.dispatch import dispatch_outbox
from service.notifications.providers import TwilioProvider
from tests import fake_twilio as fake_module
from tests.notifications.sms_support import (
    ACCOUNT_SID,
    OUR_NUMBER,
    T0,
    TOKEN,
    fake_server_fixture,  # noqa: F401 - the fake_server fixture
    queue,
)

pytestmark = pytest.mark.slow

MESSAGES = 300
UNSUBSCRIBED_SHARE = 0.05
INVALID_SHARE = 0.05


def test_random_provider_faults_end_in_the_right_states(app, people, fake_server, clock):
    settings = app.extensions["settings"]
    rng = random.Random(7)
    numbers = [f"+1201555{n:04d}" for n in range(MESSAGES)]
    unsubscribed = set(rng.sample(numbers, int(MESSAGES * UNSUBSCRIBED_SHARE)))
    invalid = set(rng.sample(sorted(set(numbers) - unsubscribed), int(MESSAGES * INVALID_SHARE)))
    original = fake_server._create

    def create(form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        # Permanent errors belong to a number, as at Twilio; transients are random below.
        if form.get("To") in unsubscribed:
            return fake_module._error(400, 21610, form["To"])
        if form.get("To") in invalid:
            return fake_module._error(400, 21211, form["To"])
        return original(form)

    fake_server._create = create  # type: ignore[method-assign]
    fake_server.failure_rate = 0.15  # 500s at random
    rows = [queue(number, now=T0) for number in numbers]
    db.session.commit()
    ids = [row.id for row in rows]

    injected = Counter()
    attempt_times: dict[str, list[Any]] = {i: [] for i in ids}
    now = T0
    passes = 0
    provider = TwilioProvider.from_settings(ACCOUNT_SID, TOKEN, from_number=OUR_NUMBER,
                                            base_url=fake_server.base_url, timeout=0.5)  # fmt: skip
    with provider:
        while passes < 400:
            passes += 1
            # Bursts of 429 (with Retry-After) and stalls longer than our timeout.
            if rng.random() < 0.3:
                n = rng.randint(1, 5)
                fake_server.fail_next(n, status=429, retry_after=rng.choice([None, 20, 60]))
                injected["429"] += n
            if rng.random() < 0.1:
                fake_server.timeout_next(1, seconds=1.0)
                injected["timeout"] += 1
            clock.set(now)
            before = {m.id: m.attempts for m in db.session.scalars(select(Message))}
            dispatch_outbox(now=now, provider=provider, settings=settings, limit=100,
                            sleep=lambda s: None, rng=rng)  # fmt: skip
            db.session.expire_all()
            pending = []
            for m in db.session.scalars(select(Message)):
                if m.attempts > before.get(m.id, 0):
                    attempt_times[m.id].append(now)
                if m.status in ("queued", "sending"):
                    pending.append(m)
            if not pending:
                break
            due = [m.send_after for m in pending if m.send_after and m.send_after > now]
            # Step to the next due retry (or a lease's end), at least 5 s, as a scheduler would.
            now = max(now + timedelta(seconds=5), min(due) if due else now + policy.LEASE)
    final = {m.id: m for m in db.session.scalars(select(Message))}
    statuses = Counter(m.status for m in final.values())
    wrong = []
    for m in final.values():
        if m.to_number in unsubscribed:
            ok = m.status == "failed" and db.session.get(OptOut, m.to_number) is not None
        elif m.to_number in invalid:
            ok = m.status == "failed" and m.error_code == 21211
        else:
            ok = m.status == "sent"
        if not ok:
            wrong.append((m.to_number, m.status, m.error_code, m.attempts))
    assert not wrong, wrong[:20]
    assert db.session.get(OptOut, next(iter(unsubscribed))).reason == "opt_out"
    assert db.session.get(OptOut, next(iter(invalid))).reason == "invalid_number"

    posts = len(fake_server.posts())
    created = len(fake_server.messages)
    assert created == statuses["sent"]  # nothing was created twice
    assert posts <= MESSAGES * policy.MAX_ATTEMPTS
    # Backoff: the waits between one text's attempts never shrink below the policy's floor.
    floor = policy.BACKOFF_BASE.total_seconds() * (1 - policy.JITTER)
    short = []
    for message_id, times in attempt_times.items():
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
        if any(g < floor for g in gaps):
            short.append((message_id, gaps))
    assert not short, short[:5]
    retried = [len(t) for t in attempt_times.values() if len(t) > 1]
    print(
        f"\nprovider faults: {MESSAGES} texts, {posts} POSTs ({posts / MESSAGES:.2f} per text, "
        f"cap {policy.MAX_ATTEMPTS}), {len(unsubscribed)} x 21610, {len(invalid)} x 21211, "
        f"injected {dict(injected)} + 15% random 500s; {len(retried)} texts retried "
        f"(max {max(retried, default=0)} attempts); {passes} dispatch passes; "
        f"final {dict(statuses)}"
    )
