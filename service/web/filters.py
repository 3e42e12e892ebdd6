"""Template filters: humane labels, local times, relative ages, percentages."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from service.web.base import bp, now

LABELS = {
    "aa": "AA",
    "na": "NA",
    "ca": "CA",
    "smart": "SMART Recovery",
    "refuge": "Refuge Recovery",
    "recovery_dharma": "Recovery Dharma",
    "lifering": "LifeRing",
    "celebrate": "Celebrate Recovery",
    "quota_unmet": "Quota unmet",
    "delivery_failed": "Delivery failed",
    "opted_out": "Opted out",
    "meeting_inactive": "Meeting inactive",
    "in_person": "In person",
    "sponsor_call": "Sponsor call",
    "meeting_quota": "Meeting quota",
    "step_work": "Step work",
    "therapy_session": "Therapy session",
    "meeting_plan": "Meeting",
    "commitment": "Commitment",
    "en": "English",
    "es": "Spanish",
}
DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


@bp.app_template_filter("humanize")
def humanize(value: object) -> str:
    """Return a readable label for a vocabulary value ("quota_unmet" → "Quota unmet")."""
    if value is None:
        return "—"
    text = str(value)
    return LABELS.get(text, text.replace("_", " ").capitalize())


@bp.app_template_filter("local")
def local(value: datetime | None, zone: str | None = None, fmt: str = "%a %d %b, %H:%M") -> str:
    """Format an instant in a time zone (UTC when none is known)."""
    if value is None:
        return "—"
    return value.astimezone(ZoneInfo(zone or "UTC")).strftime(fmt)


@bp.app_template_filter("ago")
def ago(value: datetime | None) -> str:
    """Return how long ago an instant was, roughly ("3 h ago")."""
    if value is None:
        return "never"
    seconds = int((now() - value).total_seconds())
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return "just now"


@bp.app_template_filter("isodate")
def isodate(value: date | datetime | None) -> str:
    """Format a date as YYYY-MM-DD (empty for none), for date inputs."""
    return value.isoformat()[:10] if value else ""


@bp.app_template_filter("percent")
def percent(value: float | None) -> str:
    """Format a ratio as a whole percentage ("—" when there is nothing to measure)."""
    return "—" if value is None else f"{round(value * 100)}%"


@bp.app_template_filter("dayname")
def dayname(value: int | None) -> str:
    """Return the weekday name of a TSML day number (0 = Sunday)."""
    return DAYS[value] if value is not None and 0 <= value <= 6 else "Unscheduled"


@bp.app_template_filter("meeting_options")
def meeting_options(meetings: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    """Return (id, "Thu 19:00 · name") choices for a meeting select."""
    return [(m.id, f"{dayname(m.day)[:3]} {m.time or '--:--'} · {m.name}") for m in meetings]


@bp.app_template_filter("field_label")
def field_label(path: str) -> str:
    """Return a readable name for a field path ("quiet_hours.start" → "Quiet hours start")."""
    return path.replace(".", " ").replace("_", " ").capitalize()
