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
    """Answer 200 when the database is reachable and migrated to the latest revision.

    While the database is down or restarting this answers 503 within the engine's connect
    timeout (service.db.PG_CONNECT_TIMEOUT), never hangs, and turns 200 again by itself:
    the pool pings its connections, so the dead ones of a restarted server are replaced.
    """
    checks = {"database": False, "migrations": False}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = True
        checks["migrations"] = at_head()
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        logger.warning("readiness check failed: %s", type(exc).__name__)
        try:
            db.session.rollback()
        except Exception:  # noqa: BLE001 - the connection may already be gone
            logger.debug("rollback after a failed readiness check failed", exc_info=True)
    ready = all(checks.values())
    headers = {"Cache-Control": "no-store"}
    if not ready:
        headers["Retry-After"] = "5"
    body = jsonify(status="ready" if ready else "unavailable", checks=checks)
    return body, (200 if ready else 503), headers


def init_app(app: Flask) -> None:
    """Register the health endpoints."""
    app.register_blueprint(bp)
