"""Bench-only WSGI app: the service plus two floor routes (a constant, a pre-rendered feed file)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from flask import Flask, Response

from service import create_app


def create_bench_app(overrides: dict[str, Any] | None = None) -> Flask:
    """Build the real app (settings from BENCH_APP_OVERRIDES) and add the floor routes.

    The floors live in the same app and server so they pay the same WSGI, Flask and
    before/after-request costs; only the work of the route under test is missing.
    """
    if overrides is None:
        overrides = json.loads(os.environ.get("BENCH_APP_OVERRIDES", "{}"))
    app = create_app(overrides)
    prerendered = os.environ.get("BENCH_PRERENDERED_FEED")

    @app.get("/bench/constant")
    def bench_constant() -> Response:
        return Response("ok", content_type="text/plain")

    @app.post("/bench/constant")
    def bench_constant_post() -> Response:
        # The webhook's floor: a POST that answers the same empty TwiML the webhook does.
        return Response("<Response></Response>", content_type="text/xml")

    @app.get("/bench/prerendered.ics")
    def bench_prerendered() -> Response:
        # Read on every request, as a file server would: the floor of serving a feed.
        body = Path(prerendered).read_bytes() if prerendered else b""
        return Response(body, content_type="text/calendar; charset=utf-8")

    return app


app = create_bench_app() if os.environ.get("BENCH_APP_OVERRIDES") else None
