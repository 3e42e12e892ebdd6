"""Dispatch's fast paths write exactly what the general paths write, and leave no trace."""

from __future__ import annotations

import gc

import pytest
from sqlalchemy import select, update

from service.db import db
from service.models import Event, Message
from service.notifications import gate
from service.notifications.dispatch import dispatch_outbox
from service.notifications.outcomes import settle
from service.notifications.providers import FakeProvider
from tests.notifications.sms_support import T0, later, queue, reload


@pytest.fixture
def sms(clock) -> FakeProvider:
    return FakeProvider(seed=11, clock=clock)


@pytest.fixture
def settings(app):
    return app.extensions["settings"]


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


def row(message):
    """What a skip writes (claimed_at is the claim's own clock, not the skip's)."""
    m = reload(message)
    return (m.status, m.error_message, m.error_code, m.updated_at, m.attempts, m.provider_sid,
            m.sent_at, m.send_after, m.expires_at)  # fmt: skip


def test_skips_recorded_together_equal_settle_one_by_one(people, sms, settings):
    # The batch's skips go in one executemany; each row must be what settle() writes.
    people.carol.status = "discharged"
    batched = [prompt_for(people.carol), contact_prompt(people)]
    db.session.commit()
    assert dispatch_outbox(now=T0, provider=sms, settings=settings) == 0
    assert sms.attempts == []

    alone = [prompt_for(people.carol, idempotency_key="again-1"),
             contact_prompt(people, idempotency_key="again-2")]  # fmt: skip
    db.session.commit()
    for message in alone:  # the general path: claimed, then settle() per text
        db.session.execute(update(Message).where(Message.id == message.id)
                           .values(status="sending", claimed_at=T0, attempts=1, updated_at=T0))  # fmt: skip
        settle(message, T0, status="skipped", error_message="client discharged")
    db.session.commit()
    for fast, general in zip(batched, alone, strict=True):
        assert row(fast) == row(general)
        assert row(fast)[:2] == ("skipped", "client discharged")


def test_a_skip_whose_row_changed_under_the_run_is_left_alone(people, sms, settings, monkeypatch):
    # Between the claim and the skip's record another writer settles one of the rows: the
    # batched UPDATE moves only rows still `sending`, as settle() does, and the rest skip.
    people.carol.status = "discharged"
    taken = prompt_for(people.carol)
    other = contact_prompt(people)
    db.session.commit()
    real = gate.decide

    def decide(message, now, settings):
        if message.id == taken.id:
            with db.engine.begin() as conn:  # another dispatcher, outside this session
                conn.execute(update(Message).where(Message.id == taken.id)
                             .values(status="sent", provider_sid="SMelsewhere"))  # fmt: skip
        return real(message, now, settings)

    monkeypatch.setattr(gate, "decide", decide)
    assert dispatch_outbox(now=T0, provider=sms, settings=settings) == 0
    assert (reload(taken).status, reload(taken).provider_sid) == ("sent", "SMelsewhere")
    assert (reload(other).status, reload(other).error_message) == (
        "skipped", "client discharged",
    )  # fmt: skip


def test_the_prebuilt_facts_query_reads_only_the_ids_bound(people, settings):
    texts = [prompt_for(people.carol), contact_prompt(people), prompt_for(people.carol)]
    db.session.commit()
    stmt = gate.facts_statement([texts[0].id, texts[1].id]).params(**gate.send_window(T0))
    assert sorted(r[0] for r in db.session.execute(stmt)) == sorted([texts[0].id, texts[1].id])
    pre = gate.prefetch([texts[2]], T0)
    assert list(pre.facts) == [texts[2].id]
    assert pre.facts[texts[2].id] == gate.prefetch(texts, T0).facts[texts[2].id]


@pytest.mark.parametrize("workers", [0, 4])
def test_a_run_restricted_to_message_ids_claims_only_those(people, sms, settings, workers):
    # The claim statement is built once per dialect with the ids bound per run.
    wanted = [queue(f"+1500555{7100 + n}") for n in range(3)]
    others = [queue(f"+1500555{7200 + n}") for n in range(3)]
    db.session.commit()
    ids = [m.id for m in wanted[:2]]
    assert dispatch_outbox(now=T0, provider=sms, settings=settings, message_ids=ids,
                           workers=workers) == 2  # fmt: skip
    assert [reload(m).status for m in wanted] == ["sent", "sent", "queued"]
    assert {reload(m).status for m in others} == {"queued"}
    assert dispatch_outbox(now=T0, provider=sms, settings=settings, workers=workers) == 4


@pytest.mark.parametrize("workers", [0, 4])
def test_a_run_makes_no_full_collection_and_leaves_the_collector_as_it_found_it(
    people, clock, settings, workers
):
    # During a run the oldest generation's threshold is out of reach (no full pass over
    # the process's heap), young collections go on, and afterwards the thresholds and the
    # frozen heap are as they were.
    seen: list[tuple[int, int, int]] = []
    full: list[int] = []

    class Watching(FakeProvider):
        def send(self, **kwargs):
            seen.append(gc.get_threshold())
            gc.collect(1)  # a young collection still runs
            return super().send(**kwargs)

    def watch(phase, info):
        if phase == "start" and info["generation"] == 2:
            full.append(1)

    before = gc.get_threshold()
    queue("+15005557301")
    queue("+15005557302")
    db.session.commit()
    gc.freeze()  # a process that froze its own heap (a preloading server, say)
    frozen = gc.get_freeze_count()
    gc.callbacks.append(watch)
    try:
        sent = dispatch_outbox(now=T0, provider=Watching(seed=11, clock=clock),
                               settings=settings, workers=workers)  # fmt: skip
    finally:
        gc.callbacks.remove(watch)
        after_freeze = gc.get_freeze_count()
        gc.unfreeze()
    assert sent == 2
    assert seen and all(t[:2] == before[:2] and t[2] > 10**6 for t in seen)
    assert not full
    assert gc.get_threshold() == before
    assert after_freeze > frozen - 1000  # left frozen (less a few freed meanwhile), not thawed


def test_a_threshold_set_during_a_run_is_kept(people, clock, settings):
    before = gc.get_threshold()

    class Setting(FakeProvider):
        def send(self, **kwargs):
            gc.set_threshold(before[0], before[1], 77)  # someone else's choice, mid-run
            return super().send(**kwargs)

    queue("+15005557303")
    db.session.commit()
    try:
        dispatch_outbox(now=T0, provider=Setting(seed=11, clock=clock), settings=settings)
        assert gc.get_threshold() == (before[0], before[1], 77)
    finally:
        gc.set_threshold(*before)


@pytest.mark.parametrize("workers", [0, 4])
def test_sends_recorded_together_leave_a_row_changed_under_them(people, sms, settings, workers):
    # The batch's sent outcomes go in one statement (an unnest on PostgreSQL, an
    # executemany on SQLite); a row another writer settled meanwhile keeps that writer's
    # values and gets no event, and every other row is recorded as sent, with its event.
    texts = [queue(f"+1500555{7400 + n}") for n in range(3)]
    db.session.commit()
    taken = texts[1]
    real_send = sms.send
    engine = db.engine  # sender threads have no app context
    taken_id, taken_to = taken.id, taken.to_number

    def send(**kwargs):
        result = real_send(**kwargs)
        if kwargs["to"] == taken_to:
            with engine.begin() as conn:  # another writer, outside the dispatcher's session
                conn.execute(update(Message).where(Message.id == taken_id)
                             .values(status="failed", error_message="elsewhere"))  # fmt: skip
        return result

    sms.send = send
    assert dispatch_outbox(now=T0, provider=sms, settings=settings, workers=workers) == 3
    assert (reload(taken).status, reload(taken).provider_sid) == ("failed", None)
    by_to = {m.to: m for m in sms.sent}
    for message in (texts[0], texts[2]):
        m = reload(message)
        assert (m.status, m.provider_sid, m.segments, m.sent_at, m.updated_at, m.error_code,
                m.error_message) == ("sent", by_to[m.to_number].sid, 1, T0, T0, None, None)  # fmt: skip
    events = db.session.scalars(
        select(Event).where(Event.type == "message.sent").order_by(Event.id)
    ).all()
    assert sorted(e.subject_id for e in events) == sorted([texts[0].id, texts[2].id])
    for event in events:
        assert (event.subject_type, event.occurred_at, event.payload) == (
            "message", T0, {"purpose": "test", "attempts": 1, "segments": 1},
        )  # fmt: skip
