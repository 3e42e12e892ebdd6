"""Logging setup shared by the web app, the CLI and the scheduler process."""

from __future__ import annotations

import logging


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
