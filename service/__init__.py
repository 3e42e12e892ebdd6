"""Steadfast: the application factory, which reads like a table of contents."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask

from service.config import load_settings
from service.logs import configure_logging


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the web application; never starts the scheduler (that is `flask jobs run`)."""
    app = Flask(__name__, instance_relative_config=True)
    settings = load_settings(overrides=overrides, instance_path=app.instance_path)
    app.extensions["settings"] = settings
    app.config.update(
        SECRET_KEY=settings.SECRET_KEY,
        SQLALCHEMY_DATABASE_URI=settings.DATABASE_URL,
        SQLALCHEMY_ENGINE_OPTIONS=_engine_options(settings.DATABASE_URL),
        MAX_CONTENT_LENGTH=1024 * 1024,
        JSON_SORT_KEYS=False,
        TESTING=settings.STEADFAST_ENV == "test",
    )
    configure_logging(settings.LOG_LEVEL)

    from service import db as database
    from service import health, migrate
    from service.api import init_app as init_api
    from service.api.problems import init_app as init_problems
    from service.cli import init_app as init_cli
    from service.notifications import init_app as init_notifications
    from service.web import init_app as init_web

    database.db.init_app(app)
    migrate.init_app(app)
    init_problems(app)
    init_notifications(app)
    health.init_app(app)
    init_api(app)
    init_web(app)
    init_cli(app)
    # Mapper configuration runs once per process, here rather than inside the first request
    # or sweep that touches an ORM attribute (60-80 ms, measured in a sweep's first batch).
    from sqlalchemy.orm import configure_mappers

    import service.models  # noqa: F401 - every mapper, so all are configured together

    configure_mappers()
    return app


def _engine_options(url: str) -> dict[str, Any]:
    from service.db import engine_options

    return engine_options(url)
