"""The therapist dashboard: server-rendered pages."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the dashboard (filled in by the dashboard work)."""
    return None
