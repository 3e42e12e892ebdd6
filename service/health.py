"""Liveness and readiness endpoints."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, jsonify
from sqlalchemy import text

from service.db import db
from service.migrate import at_head

logger = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():  # noqa: ANN201
    """Answer 200 while the process is alive."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():  # noqa: ANN201
    """Answer 200 when the database is reachable and migrated to the latest revision."""
    checks = {"database": False, "migrations": False}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = True
        checks["migrations"] = at_head()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        logger.warning("readiness check failed: %s", type(exc).__name__)
        db.session.rollback()
    ready = all(checks.values())
    return jsonify(status="ready" if ready else "unavailable", checks=checks), (
        200 if ready else 503
    )


def init_app(app: Flask) -> None:
    """Register the health endpoints."""
    app.register_blueprint(bp)
