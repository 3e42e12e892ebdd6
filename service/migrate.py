"""Alembic through Flask-Migrate, and the check that the database is at the latest revision."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Flask
from flask_migrate import Migrate

from service.db import db

MIGRATIONS_DIR = str(Path(__file__).resolve().parent.parent / "migrations")
migrate = Migrate(render_as_batch=True, compare_type=True)


def init_app(app: Flask) -> None:
    """Attach Flask-Migrate with the project's migrations folder."""
    import service.models  # noqa: F401 - models must be registered for autogenerate

    migrate.init_app(app, db, directory=MIGRATIONS_DIR)


def head_revisions() -> set[str]:
    """Return the head revision ids of the migration scripts."""
    config = AlembicConfig()
    config.set_main_option("script_location", MIGRATIONS_DIR)
    return set(ScriptDirectory.from_config(config).get_heads())


def at_head() -> bool:
    """Return whether the connected database is at the latest migration."""
    with db.engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return current == head_revisions()
