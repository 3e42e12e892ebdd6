"""A thread-safe token bucket for pacing outbound SMS to the provider's rate limit.

Each token is a slot on an absolute timeline: `reserve()` hands out the instant (on the
bucket's clock) at which the caller may send, one 1/rate after the previous slot once the
burst is spent, and `wait_until()` sleeps until it. A caller that reserves ahead (the
dispatcher reserves when it hands a text to a sender thread) keeps the rate however long its
own work between sends takes; only a caller that comes back after its slot has passed loses
the time in between, as a bucket must (the idle time earns at most `burst` tokens).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class TokenBucket:
    """Hand out tokens at `rate` per second with up to `burst` saved up; rate <= 0 is unlimited."""

    def __init__(
        self,
        rate: float,
        burst: float = 1,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate > 0 and burst < 1:
            raise ValueError("burst must be at least 1 token")
        self.rate = float(rate)
        self.burst = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tokens = self.burst
        self._stamp = clock()

    @property
    def unlimited(self) -> bool:
        """Return True when the bucket never waits."""
        return self.rate <= 0

    def _refill(self, now: float) -> None:
        """Add the tokens earned since the last look, capped at burst."""
        elapsed = max(0.0, now - self._stamp)
        self._tokens = min(self.burst, self._tokens + elapsed * self.rate)
        self._stamp = now

    def try_acquire(self) -> bool:
        """Take a token if one is available now; never wait."""
        if self.unlimited:
            return True
        with self._lock:
            self._refill(self._clock())
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False

    def reserve(self) -> float:
        """Take a token now and return the instant (on the bucket's clock) it may be used."""
        if self.unlimited:
            return self._clock()
        with self._lock:
            now = self._clock()
            self._refill(now)
            # The balance may go negative: the debt is what spaces the slots, in the
            # order they were reserved, whoever waits for them and however late.
            self._tokens -= 1
            return now + (-self._tokens / self.rate if self._tokens < 0 else 0.0)

    def wait_until(self, deadline: float) -> float:
        """Sleep until the bucket's clock reaches deadline; return the seconds slept."""
        wait = deadline - self._clock()
        if wait > 0:
            self._sleep(wait)
            return wait
        return 0.0

    def acquire(self) -> float:
        """Take a token, blocking until its slot; return the seconds waited."""
        if self.unlimited:
            return 0.0
        # Oversleeping does not accumulate: the next reservation reads the clock.
        return self.wait_until(self.reserve())
