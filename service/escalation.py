"""Pure escalation rules: consecutive misses, when to alert, dedup keys, retry backoff."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

# Statuses that say nothing about the client's follow-through: a question never asked, a
# check-in excused or cancelled by the therapist, or one whose window is still open.
_TRANSPARENT = frozenset({"skipped", "excused", "cancelled", "scheduled", "prompted"})


def consecutive_misses(statuses_newest_first: Iterable[str]) -> int:
    """Count the run of `missed` at the head of a source's history; a confirmation ends it.

    Declines do not end the run: they were alerted on their own, and treating them as a
    reset would let "miss, decline, miss" stay below a threshold of two.
    """
    count = 0
    for status in statuses_newest_first:
        if status == "missed":
            count += 1
        elif status == "confirmed":
            break
        elif status in _TRANSPARENT or status == "declined":
            continue
    return count


def should_alert(consecutive: int, threshold: int) -> bool:
    """Report whether a miss that makes `consecutive` misses in a row raises an alert."""
    if threshold < 1:
        raise ValueError("threshold must be at least 1")
    return consecutive >= threshold


def occurrence_label(occurrence: datetime) -> str:
    """Format a naive local occurrence as the "YYYY-MM-DDTHH:MM" label alerts and the API use."""
    return occurrence.strftime("%Y-%m-%dT%H:%M")


def iso_week_label(monday: date) -> str:
    """Format the local week starting `monday` as an ISO week label such as "2026-W49"."""
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def dedup_key(
    kind: str,
    client_id: str | None,
    source_type: str | None,
    source_id: str | None,
    occurrence: str | None,
) -> str:
    """Return the key that makes raising the same alert twice a no-op."""
    return ":".join(
        (kind, client_id or "-", source_type or "-", source_id or "-", occurrence or "-")
    )


def webhook_backoff(
    attempts: int, *, base_seconds: int = 30, cap_seconds: int = 6 * 3600
) -> timedelta:
    """Return the wait before retry number `attempts` + 1: exponential, capped."""
    if attempts < 1:
        return timedelta(0)
    return timedelta(seconds=min(cap_seconds, base_seconds * 2 ** (attempts - 1)))


def close_outcome(
    *,
    message_status: str | None,
    sent_at: datetime | None,
    window: timedelta,
    closes_at: datetime,
    now: datetime,
) -> tuple[str, datetime | None]:
    """Decide what a prompted check-in whose close time came becomes, from its prompt's fate.

    Returns ("extend", new close) when the prompt went out later than planned (the window
    runs from the moment it was actually sent); ("not_sent", None) or ("undelivered", None)
    when it never reached anyone (nobody can miss a question they were never asked; the
    check-in ends skipped); else ("missed", None). A prompt caught mid-send counts as sent.
    """
    if sent_at is not None:
        actual_close = sent_at + window
        if actual_close > closes_at and actual_close > now:
            return "extend", actual_close
    if message_status in ("undelivered", "failed"):
        return "undelivered", None
    if message_status in (None, "queued", "skipped") and sent_at is None:
        return "not_sent", None
    return "missed", None
