"""The therapist dashboard: server-rendered pages."""

from __future__ import annotations

import importlib

from flask import Flask

from service.web.base import bp
from service.web.security import init_security

VIEW_MODULES = (
    "filters", "auth", "today", "clients", "client_page", "client_actions", "plan_actions",
    "checkin_actions", "meetings", "admin", "account",
)  # fmt: skip


def init_app(app: Flask) -> None:
    """Register the dashboard blueprint, sign-in, CSRF and cookie settings."""
    for name in VIEW_MODULES:
        importlib.import_module(f"service.web.{name}")
    init_security(app)
    app.register_blueprint(bp)
