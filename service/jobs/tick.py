"""One tick: every sweep once, in the documented order, for one instant."""

from __future__ import annotations

import logging
from datetime import datetime

from service.jobs.sweeps import SWEEPS

logger = logging.getLogger(__name__)


class TickFailed(RuntimeError):
    """One or more sweeps raised; the others still ran and committed."""

    def __init__(self, counts: dict[str, int], failures: dict[str, BaseException]) -> None:
        super().__init__(f"sweeps failed: {', '.join(failures)}")
        self.counts = counts
        self.failures = failures


def tick(now: datetime) -> dict[str, int]:
    """Run every sweep once for `now` (aware UTC) and return each one's count.

    Idempotent: a second tick at the same instant finds nothing left to do. A failing
    sweep is logged and the rest still run (each is its own unit of work); TickFailed is
    raised at the end naming the failures.
    """
    if now.tzinfo is None:
        raise ValueError("tick needs an aware UTC instant")
    counts: dict[str, int] = {}
    failures: dict[str, BaseException] = {}
    for name, sweep in SWEEPS:
        try:
            counts[name] = sweep(now)
        except Exception as exc:  # noqa: BLE001 - one sweep's failure must not stop the rest
            logger.exception("sweep %s failed", name)
            failures[name] = exc
            counts[name] = -1
    if failures:
        raise TickFailed(counts, failures)
    return counts
