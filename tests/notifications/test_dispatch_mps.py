"""SMS_MPS through dispatch, on a fake clock: one slot per text, 1/rate apart, none lost to our work."""

from __future__ import annotations

import threading

import pytest

from service.db import db
from service.notifications.dispatch import dispatch_outbox
from service.notifications.providers import FakeProvider
from service.notifications.throttle import TokenBucket
from tests.notifications.sms_support import T0, queue

RATE = 50.0


class FakeClock:
    """A monotonic clock that moves only when told to (sleep, or a send taking time)."""

    def __init__(self, moves_on_sleep: bool = True) -> None:
        self.now = 1000.0
        self.moves_on_sleep = moves_on_sleep
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        if self.moves_on_sleep:
            with self.lock:
                self.now += seconds


class SlowProvider:
    """The fake provider behind a 'twilio' name, each send taking `latency` on the fake clock."""

    name = "twilio"

    def __init__(self, clock: FakeClock, latency: float) -> None:
        self.base = FakeProvider(seed=5)
        self.clock, self.latency = clock, latency
        self.starts: list[float] = []

    def send(self, **kwargs):
        self.starts.append(self.clock())
        self.clock.now += self.latency
        return self.base.send(**kwargs)

    def lookup(self, **kwargs):
        return self.base.lookup(**kwargs)


class RecordingBucket(TokenBucket):
    """A token bucket that remembers every slot it handed out."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.slots: list[float] = []

    def reserve(self) -> float:
        slot = super().reserve()
        self.slots.append(slot)
        return slot


def queue_texts(count: int) -> None:
    for n in range(count):
        queue(f"+1500555{6000 + n}")
    db.session.commit()


@pytest.fixture
def settings(app):
    return app.extensions["settings"]


@pytest.mark.parametrize("latency", [0.0, 0.005, 0.015, 0.0199])
def test_sends_on_one_thread_start_exactly_one_interval_apart(app, settings, latency):
    # Each send takes `latency` of the 20 ms interval: the next one still starts on its
    # slot, not `latency` later (the wait is measured to the slot, not from the send's end).
    queue_texts(40)
    clock = FakeClock()
    provider = SlowProvider(clock, latency)
    bucket = TokenBucket(RATE, 1, clock=clock, sleep=clock.sleep)
    assert dispatch_outbox(now=T0, provider=provider, settings=settings, bucket=bucket,
                           workers=0) == 40  # fmt: skip
    gaps = [b - a for a, b in zip(provider.starts, provider.starts[1:], strict=False)]
    assert gaps == pytest.approx([1 / RATE] * 39, abs=1e-9)
    assert clock.now - 1000.0 == pytest.approx(39 / RATE + latency, abs=1e-9)


def test_sender_threads_get_one_slot_each_back_to_back(app, settings):
    # With sender threads the slots are reserved on the dispatcher's thread as texts are
    # handed over: whatever that thread's own work takes (real time here, the fake clock
    # never moves), the slots come exactly 1/rate apart, one per text, none skipped.
    queue_texts(60)
    clock = FakeClock(moves_on_sleep=False)
    provider = SlowProvider(clock, 0.0)
    bucket = RecordingBucket(RATE, 1, clock=clock, sleep=clock.sleep)
    assert dispatch_outbox(now=T0, provider=provider, settings=settings, bucket=bucket) == 60
    assert len(bucket.slots) == 60
    assert bucket.slots == pytest.approx([1000.0 + k / RATE for k in range(60)], abs=1e-9)


def test_a_late_dispatcher_loses_only_the_time_it_was_late(app, settings):
    # A send that overruns its interval (60 ms at 50/s) pushes the next slot back by the
    # overrun only; the ones after it keep the rate.
    queue_texts(5)
    clock = FakeClock()
    provider = SlowProvider(clock, 0.0)
    real_send = provider.send
    calls = []

    def send(**kwargs):
        calls.append(1)
        result = real_send(**kwargs)
        if len(calls) == 2:
            clock.now += 0.06
        return result

    provider.send = send
    bucket = TokenBucket(RATE, 1, clock=clock, sleep=clock.sleep)
    dispatch_outbox(now=T0, provider=provider, settings=settings, bucket=bucket, workers=0)
    gaps = [round(b - a, 9) for a, b in zip(provider.starts, provider.starts[1:], strict=False)]
    assert gaps == [0.02, 0.06, 0.02, 0.02]
