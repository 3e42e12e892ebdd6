"""Crash safety: a dispatcher killed between the provider call and its commit, in a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import select

from service.db import db
from service.models import Message
from service.notifications.dispatch import CRASH_AFTER_SEND_ENV, dispatch_outbox
from service.notifications.providers import TwilioProvider
from tests.conftest import BASE_OVERRIDES
from tests.notifications.sms_support import (
    ACCOUNT_SID,
    OUR_NUMBER,
    T0,
    TOKEN,
    created_by_server,
    fake_server_fixture,  # noqa: F401 - the fake_server fixture
    later,
    queue,
    twilio_overrides,
)

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import json, sys
from datetime import datetime
from service import create_app
from service.notifications.dispatch import dispatch_outbox
app = create_app(json.loads(sys.argv[1]))
with app.app_context():
    sent = dispatch_outbox(now=datetime.fromisoformat(sys.argv[2]), provider=app.extensions["sms"])
print("sent", sent)
"""


def dispatcher(database_url, server, now, crash_after=None):
    """Run one dispatcher in its own process against the shared database and fake server."""
    overrides = {**BASE_OVERRIDES, "DATABASE_URL": database_url, **twilio_overrides(server)}
    env = {k: v for k, v in os.environ.items() if k != CRASH_AFTER_SEND_ENV}
    if crash_after is not None:
        env[CRASH_AFTER_SEND_ENV] = str(crash_after)
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(overrides), now.isoformat()],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def statuses(ids):
    db.session.expire_all()
    rows = db.session.scalars(select(Message).where(Message.id.in_(ids))).all()
    return Counter(m.status for m in rows)


def assert_each_sent_exactly_once(ids, server):
    """Every message sent, each matched to one text the server created, none created twice."""
    db.session.expire_all()
    rows = db.session.scalars(select(Message).where(Message.id.in_(ids))).all()
    created = {m["sid"]: m for m in created_by_server(server)}
    assert {m.status for m in rows} == {"sent"}
    sids = [m.provider_sid for m in rows]
    assert len(set(sids)) == len(rows)  # no two rows claim the same text
    for m in rows:
        assert (created[m.provider_sid]["to"], created[m.provider_sid]["body"]) == (
            m.to_number, m.body,
        )  # fmt: skip
    assert len(created) == len(rows)  # nothing created twice, nothing lost


def test_a_dispatcher_killed_after_sending_neither_duplicates_nor_loses(
    app, database_url, fake_server, clock
):
    # Two identical texts to one number: matching by body alone must not mix them up.
    ids = [
        queue("+15005555001", body="Steadfast: same words").id,
        queue("+15005555001", body="Steadfast: same words").id,
        *(queue(f"+1500555{5002 + n}").id for n in range(4)),
    ]
    db.session.commit()
    died = dispatcher(database_url, fake_server, T0, crash_after=3)
    assert died.returncode == 9, died.stderr[-2000:]
    # The third text back from Twilio killed the process before its outcome was committed;
    # sends overlap, so others may have reached Twilio too. Every text Twilio has that is
    # not recorded as sent is left `sending`, and so is any text claimed but not sent yet.
    after_crash = statuses(ids)
    in_flight, recorded, waiting = (
        after_crash["sending"],
        after_crash["sent"],
        after_crash["queued"],
    )
    posted = len(fake_server.posts())
    assert posted >= 3 and recorded <= 2
    assert in_flight >= posted - recorded
    assert recorded + in_flight + waiting == 6

    # Within the lease a second dispatcher leaves the ones in flight alone.
    clock.set(later(T0, seconds=30))
    ok = dispatcher(database_url, fake_server, later(T0, seconds=30))
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert statuses(ids) == Counter({"sent": 6 - in_flight, "sending": in_flight})
    assert len(fake_server.posts()) == posted + waiting

    # After it, the texts Twilio has are found and recorded, not sent again; the claimed
    # ones it never got are sent now.
    clock.set(later(T0, minutes=3))
    ok = dispatcher(database_url, fake_server, later(T0, minutes=3))
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert f"sent {in_flight}" in ok.stdout
    assert len(fake_server.posts()) == 6
    assert_each_sent_exactly_once(ids, fake_server)


def test_a_timeout_that_twilio_acted_on_is_reconciled_by_a_fresh_process(
    app, database_url, fake_server, clock, settings_for_crash
):
    ids = [queue(f"+1500555{5100 + n}").id for n in range(3)]
    db.session.commit()
    fake_server.timeout_next(1, seconds=0.6)
    with TwilioProvider.from_settings(ACCOUNT_SID, TOKEN, from_number=OUR_NUMBER,
                                      base_url=fake_server.base_url, timeout=0.2) as provider:  # fmt: skip
        dispatch_outbox(now=T0, provider=provider, settings=settings_for_crash)
    assert statuses(ids) == Counter({"sent": 2, "sending": 1})
    deadline = time.monotonic() + 5
    while len(fake_server.messages) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)  # Twilio finishes the stalled request after we gave up on it
    clock.set(later(T0, minutes=3))
    ok = dispatcher(database_url, fake_server, later(T0, minutes=3))
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert len(fake_server.posts()) == 3
    assert_each_sent_exactly_once(ids, fake_server)


@pytest.fixture
def settings_for_crash(app):
    return app.extensions["settings"]


def test_a_text_still_queued_at_twilio_after_a_crash_is_found_not_resent(
    app, database_url, fake_server, clock
):
    # Twilio's queue is backed up: what it accepted has no DateSent yet when we reconcile.
    fake_server.hold_queued = True
    ids = [queue(f"+1500555{5200 + n}").id for n in range(3)]
    db.session.commit()
    died = dispatcher(database_url, fake_server, T0, crash_after=1)
    assert died.returncode == 9, died.stderr[-2000:]
    posts_at_crash = len(fake_server.posts())
    assert posts_at_crash >= 1
    clock.set(later(T0, minutes=3))
    ok = dispatcher(database_url, fake_server, later(T0, minutes=3))
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert all(m["date_sent"] is None for m in fake_server.messages.values())
    assert len(fake_server.posts()) == 3  # the queued ones were found, only the rest sent
    assert_each_sent_exactly_once(ids, fake_server)
