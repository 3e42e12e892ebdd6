"""Outbox dispatch on the fake provider: claims, send-time re-checks, retries, permanent errors."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from service.consent import record_sms_consent, revoke_disclosure_consent
from service.db import db
from service.models import Message, OptOut
from service.notifications.dispatch import dispatch_outbox
from service.notifications.policy import MAX_ATTEMPTS
from service.notifications.providers import DeliveryError, FakeProvider
from tests.notifications.sms_support import (
    T0,
    alerts_of,
    event_types,
    later,
    outbound,
    queue,
    reload,
)

NIGHT = later(T0, hours=10)  # 22:00 in New York
MORNING = later(T0, hours=20)  # 08:00 in New York the next day


@pytest.fixture
def sms(clock) -> FakeProvider:
    return FakeProvider(seed=3, clock=clock)


@pytest.fixture
def settings(app):
    return app.extensions["settings"]


def run(sms, settings, now=T0, **kwargs):
    return dispatch_outbox(now=now, provider=sms, settings=settings, **kwargs)


def prompt_for(carol, **fields):
    values = {"practice_id": carol.practice_id, "purpose": "prompt",
              "template": "prompt_meeting_self", "client_id": carol.id,
              "expires_at": later(T0, hours=2)}  # fmt: skip
    values.update(fields)
    return queue(carol.phone, **values)


def contact_prompt(people, **fields):
    values = {"practice_id": people.carol.practice_id, "purpose": "prompt",
              "template": "prompt_contact", "client_id": people.carol.id,
              "contact_id": people.dave.id, "expires_at": later(T0, hours=2)}  # fmt: skip
    values.update(fields)
    return queue(people.dave.phone, **values)


def crisis_text(people):
    return queue(people.alice.therapist.phone, practice_id=people.alice.practice_id,
                 purpose="alert", template="crisis_therapist",
                 therapist_id=people.alice.id)  # fmt: skip


def test_a_due_text_is_sent_once_and_recorded(people, sms, settings):
    message = prompt_for(people.carol)
    db.session.commit()
    assert run(sms, settings) == 1
    message = reload(message)
    (sent,) = sms.sent
    assert (message.status, message.provider_sid, message.sent_at, message.attempts) == (
        "sent", sent.sid, T0, 1,
    )  # fmt: skip
    assert message.segments == sent.segments == 1
    assert sent.status_callback == "https://steadfast.example.org/twilio/status"
    assert sent.validity_seconds == 7200
    assert sent.idempotency_key == message.idempotency_key
    assert "message.sent" in event_types()
    assert run(sms, settings, later(T0, minutes=5)) == 0
    assert len(sms.attempts) == 1


def test_a_text_waits_for_its_send_after(people, sms, settings):
    message = prompt_for(people.carol, send_after=later(T0, minutes=10))
    db.session.commit()
    assert run(sms, settings) == 0
    assert reload(message).status == "queued"
    assert run(sms, settings, later(T0, minutes=10)) == 1


def test_the_practice_number_is_the_sender_when_it_has_one(people, sms, settings):
    people.riverside.sms_from_number = "+15005550077"
    prompt_for(people.carol)
    queue("+15005550123")  # no practice: the account's default sender
    db.session.commit()
    run(sms, settings)
    assert sorted(a["sender"] or "-" for a in sms.attempts) == ["+15005550077", "-"]


def test_two_dispatchers_over_the_same_rows_never_double_send(app, people, settings):
    ids = [queue(f"+1500555{n:04d}", body=f"Steadfast: n{n}").id for n in range(2000, 2030)]
    db.session.commit()
    base = FakeProvider(seed=9)

    class Slow:
        name = "fake"

        def send(self, **kwargs):
            time.sleep(0.002)  # widen the window between claim and record
            return base.send(**kwargs)

        def lookup(self, **kwargs):
            return base.lookup(**kwargs)

    counts, errors = [], []

    def worker():
        try:
            with app.app_context():
                counts.append(dispatch_outbox(now=T0, provider=Slow(), settings=settings))
                db.session.remove()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sum(counts) == 30
    keys = [a["idempotency_key"] for a in base.attempts]
    assert len(keys) == len(set(keys)) == 30
    rows = db.session.scalars(select(Message).where(Message.id.in_(ids))).all()
    assert {m.status for m in rows} == {"sent"}
    assert all(m.attempts == 1 for m in rows)


# ---- re-checked at send time --------------------------------------------------------------


def test_an_opt_out_after_queueing_stops_the_text(people, sms, settings):
    message = prompt_for(people.carol)
    db.session.add(OptOut(phone=people.carol.phone, reason="opt_out", created_at=T0))
    db.session.commit()
    assert run(sms, settings) == 0
    message = reload(message)
    assert (message.status, message.error_message) == ("skipped", "opted out")
    assert sms.attempts == []


def test_revoked_sms_consent_stops_the_text(people, sms, settings):
    message = prompt_for(people.carol)
    record_sms_consent(practice_id=people.carol.practice_id, subject=people.carol, granted=False,
                       method="verbal", recorded_by="test", now=T0)  # fmt: skip
    db.session.commit()
    run(sms, settings)
    assert (reload(message).status, reload(message).error_message) == ("skipped", "no sms consent")
    assert sms.attempts == []


def test_a_new_number_needs_new_consent(people, sms, settings):
    message = prompt_for(people.carol)
    people.carol.phone = "+15005550199"
    db.session.commit()
    run(sms, settings)
    assert reload(message).error_message == "no sms consent"


def test_a_revoked_disclosure_stops_the_very_next_contact_text(people, sms, settings):
    first = contact_prompt(people)
    db.session.commit()
    assert run(sms, settings) == 1
    second = contact_prompt(people, idempotency_key="second")
    revoke_disclosure_consent(contact=people.dave, recorded_by="test", now=T0)
    db.session.commit()
    assert run(sms, settings) == 0
    assert reload(first).status == "sent"
    assert (reload(second).status, reload(second).error_message) == (
        "skipped", "no disclosure consent",
    )  # fmt: skip
    assert len(sms.attempts) == 1


def test_an_expired_disclosure_or_a_missing_scope_stops_the_contact_text(people, sms, settings):
    from service.consent import latest_disclosure

    consent = latest_disclosure(people.dave)
    consent.expires_on = date(2026, 11, 30)
    prompt = contact_prompt(people)
    db.session.commit()
    run(sms, settings)
    assert reload(prompt).error_message == "no disclosure consent"
    consent.expires_on, consent.scope = None, ["checkins"]
    urge = queue(people.dave.phone, practice_id=people.carol.practice_id, purpose="urge_request",
                 template="urge_sponsor_request", client_id=people.carol.id,
                 contact_id=people.dave.id)  # fmt: skip
    db.session.commit()
    run(sms, settings)
    assert reload(urge).error_message == "no disclosure consent"
    assert sms.attempts == []


@pytest.mark.parametrize(("status", "reason"), [("discharged", "client discharged"),
                                                 ("paused", "client paused")])  # fmt: skip
def test_a_discharged_or_paused_client_gets_nothing_but_crises_still_go(
    people, sms, settings, status, reason
):
    people.carol.status = status
    prompt = prompt_for(people.carol)
    to_dave = contact_prompt(people)
    crisis = crisis_text(people)
    db.session.commit()
    assert run(sms, settings) == 1
    assert reload(prompt).error_message == reason
    assert reload(to_dave).error_message == reason
    assert reload(crisis).status == "sent"


def test_an_expired_or_stale_text_is_dropped_not_sent_late(people, sms, settings):
    expired = prompt_for(people.carol, expires_at=later(T0, minutes=-1))
    stale = queue(people.carol.phone, practice_id=people.carol.practice_id, purpose="reminder",
                  client_id=people.carol.id, now=later(T0, minutes=-31))  # fmt: skip
    db.session.commit()
    assert run(sms, settings) == 0
    assert reload(expired).error_message == "expired"
    assert reload(stale).error_message == "stale"


def test_quiet_hours_defer_a_question_drop_a_reminder_and_never_hold_a_crisis(
    people, sms, settings
):
    prompt = prompt_for(people.carol, now=NIGHT, expires_at=later(MORNING, hours=3))
    reminder = queue(people.carol.phone, now=NIGHT, practice_id=people.carol.practice_id,
                     purpose="reminder", client_id=people.carol.id,
                     expires_at=later(NIGHT, minutes=30))  # fmt: skip
    crisis = crisis_text(people)
    db.session.commit()
    assert run(sms, settings, NIGHT) == 1
    assert reload(crisis).status == "sent"
    assert (reload(reminder).status, reload(reminder).error_message) == ("skipped", "quiet hours")
    prompt = reload(prompt)
    assert (prompt.status, prompt.send_after, prompt.attempts) == ("queued", MORNING, 0)
    assert run(sms, settings, later(NIGHT, hours=2)) == 0
    assert run(sms, settings, MORNING) == 1
    assert reload(prompt).status == "sent"


def test_a_contact_in_another_zone_has_their_own_quiet_hours(people, sms, settings):
    people.dave.timezone = "Europe/London"  # 17:00 UTC is 17:00 there, 22:00 UTC is quiet
    prompt = contact_prompt(people, now=later(T0, hours=4), expires_at=later(T0, hours=30))
    db.session.commit()
    run(sms, settings, later(T0, hours=4))
    assert reload(prompt).send_after == later(T0, hours=15)  # 08:00 in London


def test_the_daily_cap_drops_the_seventh_text_but_never_a_reply_or_a_crisis(people, sms, settings):
    carol = people.carol
    for n in range(6):
        prompt_for(carol, idempotency_key=f"p{n}", now=later(T0, minutes=n))
    db.session.commit()
    assert run(sms, settings, later(T0, minutes=10)) == 6
    seventh = prompt_for(carol, idempotency_key="p7", now=later(T0, minutes=20))
    crisis = crisis_text(people)
    db.session.commit()
    assert run(sms, settings, later(T0, minutes=20)) == 1
    assert (reload(seventh).status, reload(seventh).error_message) == ("skipped", "daily cap")
    assert reload(crisis).status == "sent"
    # The cap is per local day: the next day in New York starts afresh.
    tomorrow = prompt_for(carol, idempotency_key="p8", now=later(T0, hours=24),
                          expires_at=later(T0, hours=26))  # fmt: skip
    db.session.commit()
    assert run(sms, settings, later(T0, hours=24)) == 1
    assert reload(tomorrow).status == "sent"


def test_the_cap_counts_from_the_first_instant_of_the_local_day(people, sms, settings):
    # New York midnight on T0's day is 05:00 UTC: a text sent then counts, one sent a
    # microsecond before it (yesterday, local) does not.
    midnight = T0.replace(hour=5)
    for n, at in enumerate([midnight - timedelta(microseconds=1)] + [midnight] * 5):
        message = prompt_for(people.carol, idempotency_key=f"s{n}")
        message.status, message.sent_at = "sent", at
    sixth = prompt_for(people.carol, idempotency_key="sixth")
    db.session.commit()
    assert run(sms, settings) == 1
    assert reload(sixth).status == "sent"
    seventh = prompt_for(people.carol, idempotency_key="seventh", now=later(T0, minutes=1))
    db.session.commit()
    assert run(sms, settings, later(T0, minutes=1)) == 0
    assert (reload(seventh).status, reload(seventh).error_message) == ("skipped", "daily cap")


def test_replies_do_not_count_toward_the_cap(people, sms, settings):
    for n in range(8):
        message = queue(people.carol.phone, purpose="reply", client_id=people.carol.id,
                        idempotency_key=f"r{n}")  # fmt: skip
        message.status, message.sent_at = "sent", T0
    prompt = prompt_for(people.carol)
    db.session.commit()
    run(sms, settings)
    assert reload(prompt).status == "sent"


# ---- failures ------------------------------------------------------------------------------


def test_transient_failures_back_off_exponentially_then_fail_with_an_alert(people, sms, settings):
    message = prompt_for(people.carol, expires_at=later(T0, days=2))
    db.session.commit()
    sms.fail_next(status=503, times=MAX_ATTEMPTS)
    now, waits = T0, []
    for attempt in range(1, MAX_ATTEMPTS + 1):
        run(sms, settings, now)
        message = reload(message)
        assert len(sms.attempts) == attempt  # one try per run: no retry storm
        assert message.attempts == attempt
        if attempt == MAX_ATTEMPTS:
            break
        assert message.status == "queued"
        waits.append((message.send_after - now).total_seconds())
        run(sms, settings, message.send_after - timedelta(seconds=1))  # not yet due
        assert len(sms.attempts) == attempt
        now = message.send_after
    for n, wait in enumerate(waits, start=1):
        assert 15 * 2**n * 0.8 <= wait <= 15 * 2**n * 1.2
    assert (message.status, message.error_message) == ("failed", "HTTP 503")
    (alert,) = alerts_of("delivery_failed")
    assert (alert.client_id, alert.source_id) == (people.carol.id, message.id)
    assert "message.failed" in event_types()
    run(sms, settings, later(now, days=1))
    assert len(sms.attempts) == MAX_ATTEMPTS


def test_retry_after_is_respected(people, sms, settings):
    message = prompt_for(people.carol)
    db.session.commit()
    sms.fail_next(code=20429, retry_after=600)
    run(sms, settings)
    assert reload(message).send_after >= later(T0, seconds=600)


@pytest.mark.parametrize(
    ("code", "reason", "kind"),
    [
        (21610, "opt_out", "opted_out"),
        (21211, "invalid_number", "delivery_failed"),
        (21614, "not_mobile", "delivery_failed"),
    ],  # fmt: skip
)
def test_permanent_errors_are_never_retried_and_suppress_the_number(
    people, sms, settings, code, reason, kind
):
    message = prompt_for(people.carol)
    db.session.commit()
    sms.fail_next(code=code)
    run(sms, settings)
    message = reload(message)
    assert (message.status, message.error_code) == ("failed", code)
    assert db.session.get(OptOut, people.carol.phone).reason == reason
    (alert,) = alerts_of(kind)
    assert alert.client_id == people.carol.id
    assert "sms.opted_out" in event_types() and "message.failed" in event_types()
    later_text = prompt_for(people.carol, idempotency_key="again")
    db.session.commit()
    run(sms, settings, later(T0, hours=1))
    assert reload(later_text).error_message == "opted out"
    assert len(sms.attempts) == 1


def test_a_failing_provider_stops_the_run_after_three_failures(people, sms, settings):
    for n in range(6):
        queue(f"+1500555{3000 + n}")
    db.session.commit()
    sms.fail_next(status=500, times=6)
    assert run(sms, settings) == 0
    assert len(sms.attempts) == 3
    assert len(outbound(status="queued")) == 6


@pytest.mark.parametrize("workers", [0, 4])
def test_near_the_limit_a_text_waits_for_its_number_rather_than_losing_its_turn(
    people, sms, settings, workers
):
    # Two texts to one number are never in flight together; with room for two texts left,
    # the run sends both of them (one after the other), not the first and a later text.
    first = queue("+15005557001", now=T0)
    second = queue("+15005557001", now=later(T0, seconds=1))
    third = queue("+15005557002", now=later(T0, seconds=2))
    db.session.commit()
    assert run(sms, settings, later(T0, seconds=3), limit=2, workers=workers) == 2
    assert [reload(m).status for m in (first, second, third)] == ["sent", "sent", "queued"]


def test_sends_queued_behind_a_failing_provider_are_taken_back_untried(people, settings):
    # After 16 successes the pool holds sends queued behind the running ones; once the
    # provider fails they are taken back, so the run stops after a few tries, not a pool-full.
    ids = [queue(f"+1500555{6000 + n}").id for n in range(60)]
    db.session.commit()
    base = FakeProvider(seed=5)
    lock = threading.Lock()
    calls = []

    class FailsAfter16:
        name = "fake"

        def send(self, **kwargs):
            with lock:
                calls.append(kwargs["to"])
                n = len(calls)
            time.sleep(0.005)
            if n > 16:
                raise DeliveryError("HTTP 500", permanent=False, status=500)
            return base.send(**kwargs)

        def lookup(self, **kwargs):
            return base.lookup(**kwargs)

    assert run(FailsAfter16(), settings) == 16
    failed = len(calls) - 16
    assert 3 <= failed <= 3 + 3  # the breaker's three, plus sends already running beside them
    rows = db.session.scalars(select(Message).where(Message.id.in_(ids))).all()
    assert Counter(m.status for m in rows) == {"sent": 16, "queued": 44}
    tried = set(calls)
    assert all(m.attempts == (1 if m.to_number in tried else 0)
               for m in rows if m.status == "queued")  # fmt: skip


def test_a_lost_response_is_reconciled_not_resent(people, sms, settings):
    message = prompt_for(people.carol)
    db.session.commit()
    sms.lose_response_next()
    assert run(sms, settings) == 0
    message = reload(message)
    assert (message.status, message.provider_sid) == ("sending", None)
    assert run(sms, settings, later(T0, minutes=1)) == 0  # within the lease: hands off
    assert run(sms, settings, later(T0, minutes=3)) == 1
    message = reload(message)
    (accepted,) = sms.sent
    assert (message.status, message.provider_sid, message.attempts) == ("sent", accepted.sid, 1)
    assert len(sms.attempts) == 1


def test_an_abandoned_send_the_provider_never_got_is_sent_again(people, sms, settings):
    message = prompt_for(people.carol)
    message.status, message.claimed_at, message.attempts = "sending", later(T0, minutes=-5), 1
    db.session.commit()
    assert run(sms, settings) == 1
    assert (reload(message).status, reload(message).attempts) == ("sent", 2)
    assert len(sms.sent) == 1


def test_without_an_answer_from_the_provider_nothing_is_resent(people, sms, settings, monkeypatch):
    message = prompt_for(people.carol)
    message.status, message.claimed_at = "sending", later(T0, minutes=-5)
    db.session.commit()

    def down(**kwargs):
        raise DeliveryError("lookup failed", permanent=False, status=503)

    monkeypatch.setattr(sms, "lookup", down)
    assert run(sms, settings) == 0
    assert reload(message).status == "sending"
    assert sms.attempts == []


def test_a_message_that_cannot_be_checked_fails_alone(people, sms, settings, monkeypatch):
    from service.notifications import gate

    broken = prompt_for(people.carol)
    fine = queue("+15005550177", now=later(T0, seconds=1))
    db.session.commit()
    real = gate.decide

    def decide(message, now, settings):
        if message.id == broken.id:
            raise LookupError("unreadable")
        return real(message, now, settings)

    monkeypatch.setattr(gate, "decide", decide)
    assert run(sms, settings, later(T0, seconds=1)) == 1
    assert (reload(broken).status, reload(fine).status) == ("failed", "sent")
    assert "LookupError" in reload(broken).error_message


def test_a_change_made_while_the_run_goes_on_is_seen_by_its_later_texts(people, sms, settings):
    # Two texts to one number never share a batch: the second is checked after the first
    # was sent, and must see what another process changed in between (here, a discharge).
    from sqlalchemy import update

    from service.models import Client

    first = prompt_for(people.carol, idempotency_key="first")
    second = prompt_for(people.carol, idempotency_key="second", now=later(T0, seconds=1))
    db.session.commit()
    real_send = sms.send

    def send(**kwargs):
        result = real_send(**kwargs)
        with db.engine.begin() as conn:  # another writer, outside the dispatcher's session
            conn.execute(update(Client).where(Client.id == people.carol.id)
                         .values(status="discharged"))  # fmt: skip
        return result

    sms.send = send
    assert run(sms, settings, later(T0, seconds=1), workers=0) == 1
    assert reload(first).status == "sent"
    assert (reload(second).status, reload(second).error_message) == ("skipped", "client discharged")
