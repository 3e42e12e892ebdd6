"""SMS: providers, outbox dispatch, the inbound reply grammar and templates."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Build the configured SMS provider into app.extensions["sms"]."""
    from service.notifications.providers import build_provider

    settings = app.extensions["settings"]
    app.extensions["sms"] = build_provider(settings.SMS_BACKEND, vars(settings))
