"""TokenBucket: exact pacing on a fake clock, and honest pacing on the real one."""

from __future__ import annotations

import threading
import time

import pytest

from service.notifications.throttle import TokenBucket


class FakeClock:
    """A monotonic clock that only moves when something sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


def bucket(rate: float, burst: float = 1) -> tuple[TokenBucket, FakeClock]:
    clock = FakeClock()
    return TokenBucket(rate, burst, clock=clock, sleep=clock.sleep), clock


def test_first_token_is_free_then_one_per_interval() -> None:
    tb, clock = bucket(rate=10)
    tb.acquire()
    assert clock.sleeps == []
    for _ in range(3):
        tb.acquire()
    assert clock.sleeps == pytest.approx([0.1, 0.1, 0.1])


@pytest.mark.parametrize(("rate", "n"), [(50, 1000), (1, 10), (0.5, 5), (1000, 5000), (7.3, 200)])
def test_n_tokens_take_n_minus_burst_over_rate(rate: float, n: int) -> None:
    tb, clock = bucket(rate=rate)
    start = clock.now
    for _ in range(n):
        tb.acquire()
    assert clock.now - start == pytest.approx((n - 1) / rate, rel=1e-9)


def test_burst_is_spent_at_once_then_paced() -> None:
    tb, clock = bucket(rate=5, burst=4)
    for _ in range(4):
        assert tb.acquire() == 0.0
    assert clock.now == 1000.0
    assert tb.acquire() == pytest.approx(0.2)


def test_idle_time_refills_only_up_to_burst() -> None:
    tb, clock = bucket(rate=10, burst=3)
    for _ in range(3):
        tb.acquire()
    clock.now += 3600  # an hour idle earns 36,000 tokens, capped at 3
    for _ in range(3):
        assert tb.acquire() == 0.0
    assert tb.acquire() == pytest.approx(0.1)


def test_partial_refill_waits_only_for_the_remainder() -> None:
    tb, clock = bucket(rate=10)
    tb.acquire()
    clock.now += 0.07
    assert tb.acquire() == pytest.approx(0.03)


def test_try_acquire_never_waits() -> None:
    tb, clock = bucket(rate=2, burst=2)
    assert tb.try_acquire() and tb.try_acquire()
    assert not tb.try_acquire()
    clock.now += 0.5
    assert tb.try_acquire()
    assert clock.sleeps == []


@pytest.mark.parametrize("rate", [0, -1, 0.0])
def test_non_positive_rate_is_unlimited(rate: float) -> None:
    tb, clock = bucket(rate=rate)
    assert tb.unlimited
    for _ in range(10_000):
        assert tb.acquire() == 0.0
    assert tb.try_acquire()
    assert clock.sleeps == []


def test_burst_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        TokenBucket(10, burst=0.5)


def test_clock_going_backwards_does_not_mint_tokens() -> None:
    tb, clock = bucket(rate=10)
    tb.acquire()
    clock.now -= 50
    assert tb.acquire() == pytest.approx(0.1)


# ---- the real clock (kept short; best of three runs against scheduler noise) --------


def _timed(work) -> float:
    start = time.monotonic()
    work()
    return time.monotonic() - start


def _assert_close(expected: float, measure, tolerance: float = 0.05) -> None:
    """Never faster than expected; within tolerance of it in at least one of three runs."""
    runs = []
    for _ in range(3):
        elapsed = measure()
        assert elapsed >= expected * (1 - tolerance), f"{elapsed:.3f}s beat the rate limit"
        runs.append(elapsed)
        if elapsed <= expected * (1 + tolerance):
            return
    pytest.fail(f"expected ~{expected:.3f}s, got {[round(r, 3) for r in runs]}")


def test_real_clock_30_tokens_at_50_per_second() -> None:
    def measure() -> float:
        tb = TokenBucket(50)
        return _timed(lambda: [tb.acquire() for _ in range(30)])

    _assert_close(29 / 50, measure)  # 0.58 s


def test_real_clock_with_burst() -> None:
    def measure() -> float:
        tb = TokenBucket(100, burst=10)
        return _timed(lambda: [tb.acquire() for _ in range(40)])

    _assert_close(30 / 100, measure)  # 10 free, then 30 at 10 ms


def test_real_clock_threads_share_the_rate() -> None:
    def measure() -> float:
        tb = TokenBucket(100)
        stamps: list[float] = []
        lock = threading.Lock()

        def worker() -> None:
            for _ in range(8):
                tb.acquire()
                with lock:
                    stamps.append(time.monotonic())

        threads = [threading.Thread(target=worker) for _ in range(4)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(stamps) == 32
        return max(stamps) - start

    _assert_close(31 / 100, measure)  # 0.31 s for 32 tokens across 4 threads
