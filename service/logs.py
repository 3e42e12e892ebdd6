"""Logging setup shared by the web app, the CLI and the scheduler process."""

from __future__ import annotations

import logging
import re


def configure_logging(level: str = "INFO") -> None:
    """Send log records to stderr with a compact format, once."""
    root = logging.getLogger()
    if any(getattr(h, "_steadfast", False) for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler._steadfast = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    # Alembic announces every plugin at INFO on each readiness check.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    mask_request_logs()


# Paths whose last segment is a credential: a calendar feed token, a set-password link.
_SECRET_PATHS = re.compile(r"(/feeds/|/set-password/)[^\s/?\"']+")


def mask_secrets(text: str) -> str:
    """Replace the credential in feed and set-password paths with `***` (keeps the suffix)."""
    return _SECRET_PATHS.sub(
        lambda m: m.group(1) + ("***.ics" if m.group(0).endswith(".ics") else "***"), text
    )


class SecretPathFilter(logging.Filter):
    """Mask credentials in the request lines the development server logs."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def mask_request_logs() -> None:
    """Install the mask on werkzeug's request log, once."""
    logger = logging.getLogger("werkzeug")
    if not any(isinstance(f, SecretPathFilter) for f in logger.filters):
        logger.addFilter(SecretPathFilter())
