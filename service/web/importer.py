"""The meeting import form: check its fields, then hand the feed to service.meeting_import."""

from __future__ import annotations

import importlib
import logging
from datetime import datetime
from typing import Any

from werkzeug.datastructures import FileStorage

from service.models.vocab import RECOVERY_PATHS
from service.schedule import ScheduleError, get_zone

logger = logging.getLogger(__name__)

Errors = dict[str, list[str]]
COUNTS = ("created", "updated", "unchanged", "deactivated", "skipped")


def _import_feed() -> Any:
    module = importlib.import_module("service.meeting_import")
    return getattr(module, "import_feed", None)


def available() -> bool:
    """Return whether the import core (service.meeting_import.import_feed) is present."""
    return _import_feed() is not None


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
    import_feed = _import_feed()
    if import_feed is None:
        return {"body": ["Meeting import is not available on this server yet."]}, None
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
    except Exception as exc:  # noqa: BLE001 - any feed failure is shown to the person importing
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        logger.info("meeting import failed: %s", type(exc).__name__)
        return {"body": [f"The feed could not be imported: {message}"]}, None
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
            lines.append(f"{item.get('name') or item.get('key') or '?'}: {item.get('reason')}")
        else:
            what = getattr(item, "name", None) or getattr(item, "key", None) or "?"
            lines.append(f"{what}: {getattr(item, 'reason', item)}")
    return lines
