"""A thread-safe token bucket for pacing outbound SMS to the provider's rate limit."""

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

    def acquire(self) -> float:
        """Take a token, blocking until one is available; return the seconds waited."""
        if self.unlimited:
            return 0.0
        with self._lock:
            self._refill(self._clock())
            # Reserve the token now (the balance may go negative) and sleep outside the
            # lock: callers are served in arrival order and the debt is what paces them.
            # Oversleeping does not accumulate because the next refill reads the clock.
            self._tokens -= 1
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait
