"""The JSON API under /api/v1 and the webhook and feed endpoints."""

from __future__ import annotations

from flask import Flask, Response

BLUEPRINT_MODULES: tuple[str, ...] = (
    "clients",
    "contacts",
    "meetings",
    "meeting_import",
    "plans",
    "messages",
    "therapists",
    "docs",
    "checkins",
    "alerts",
    "events",
    "webhooks",
    "feeds",
    "twilio_hooks",
)


def init_app(app: Flask) -> None:
    """Register every API blueprint."""
    import importlib

    for name in BLUEPRINT_MODULES:
        module = importlib.import_module(f"service.api.{name}")
        app.register_blueprint(module.bp)

    @app.after_request
    def _nosniff(response: Response) -> Response:
        # Every answer (JSON, problem+json, calendars, TwiML) is exactly the type it declares.
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response
