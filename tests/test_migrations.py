"""Migrations: one head, upgrade an empty database, match the models, downgrade the latest."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from service.db import db
from service.migrate import head_revisions


def test_there_is_exactly_one_head():
    assert len(head_revisions()) == 1


@pytest.fixture
def empty_database(make_app, database_url, tmp_path):
    """An app bound to a brand-new, empty database of the same engine as the test run."""
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        name = f"{url.database}_mig"
        admin = create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        target = url.set(database=name).render_as_string(hide_password=False)
    else:
        admin, name = None, None
        target = f"sqlite:///{tmp_path / 'migrations.db'}"
    app = make_app(DATABASE_URL=target)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_upgrade_builds_a_schema_that_matches_the_models(empty_database):
    with empty_database.app_context():
        upgrade()
        with db.engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "render_as_batch": True}
            )
            diff = compare_metadata(context, db.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        tables = set(inspect(db.engine).get_table_names())
        assert {"clients", "checkins", "messages", "events", "alembic_version"} <= tables


def test_latest_revision_downgrades_and_upgrades_again(empty_database):
    with empty_database.app_context():
        upgrade()
        head = next(iter(head_revisions()))
        downgrade(revision="-1")
        with db.engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_heads()
        assert head not in current
        upgrade()
        with db.engine.connect() as conn:
            assert set(MigrationContext.configure(conn).get_current_heads()) == {head}


def test_readyz_is_red_until_migrated_then_green(empty_database):
    client = empty_database.test_client()
    with empty_database.app_context():
        assert client.get("/readyz").status_code == 503
        upgrade()
        response = client.get("/readyz")
        assert response.status_code == 200
        assert response.json["checks"] == {"database": True, "migrations": True}
