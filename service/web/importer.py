"""The meeting import form: check its fields, then hand the feed to service.meeting_import."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from werkzeug.datastructures import FileStorage

from service.meeting_import import ImportFailed, import_feed
from service.models.vocab import RECOVERY_PATHS
from service.schedule import ScheduleError, get_zone

logger = logging.getLogger(__name__)

Errors = dict[str, list[str]]
COUNTS = ("created", "updated", "unchanged", "deactivated", "skipped")


def available() -> bool:
    """Return whether meeting import is offered (it always is once the core is installed)."""
    return True


def check_form(url: str, upload: FileStorage | None, timezone: str, fellowship: str) -> Errors:
    """Return the errors of the import form's fields, by field name."""
    errors: Errors = {}
    has_file = upload is not None and bool(upload.filename)
    if bool(url) == has_file:
        errors["url"] = ["give a feed URL or choose a file (one of the two)"]
    elif url and not url.lower().startswith(("https://", "http://")):
        errors["url"] = ["must be an http(s) URL"]
    try:
        get_zone(timezone)
    except ScheduleError as exc:
        errors["timezone"] = [exc.message]
    if fellowship not in RECOVERY_PATHS:
        errors["fellowship"] = [f"choose one of {', '.join(RECOVERY_PATHS)}"]
    return errors


def run(
    *,
    practice_id: str,
    url: str,
    upload: FileStorage | None,
    timezone: str,
    fellowship: str,
    now: datetime,
) -> tuple[Errors, Any]:
    """Validate the form and import the feed; return (errors, report)."""
    errors = check_form(url, upload, timezone, fellowship)
    if errors:
        return errors, None
    body = upload.read() if upload is not None and upload.filename else None
    try:
        report = import_feed(
            practice_id=practice_id,
            url=url or None,
            body=body,
            filename=upload.filename if body is not None and upload is not None else None,
            default_timezone=timezone,
            fellowship=fellowship,
            now=now,
        )
    except ImportFailed as exc:
        logger.info("meeting import failed: %s", exc.reason)
        field = exc.field if exc.field in ("timezone", "fellowship") else "url" if url else "file"
        return {field: [exc.message]}, None
    return {}, report


def _get(report: Any, name: str) -> Any:
    if isinstance(report, dict):
        return report.get(name)
    return getattr(report, name, None)


def summary(report: Any) -> dict[str, int]:
    """Return the report's counts (created, updated, unchanged, deactivated, skipped)."""
    out = {}
    for name in COUNTS:
        value = _get(report, name)
        out[name] = len(value) if isinstance(value, list | tuple) else int(value or 0)
    return out


def skipped(report: Any) -> list[str]:
    """Return a readable line per skipped record (what and why)."""
    lines = []
    for item in _get(report, "skipped") or _get(report, "skipped_records") or []:
        if isinstance(item, dict):
            lines.append(f"{item.get('slug') or '(no id)'}: {item.get('reason')}")
        else:
            what = getattr(item, "slug", None) or "(no id)"
            lines.append(f"{what}: {getattr(item, 'reason', item)}")
    return lines
