"""Run one meeting-feed import (or the json.loads floor) in a fresh process; print time and memory."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _rss_kib() -> int:
    return _status_kib("VmRSS")


def _peak_kib() -> int:
    """Peak RSS of this program. Not ru_maxrss: that keeps the forking parent's peak across
    exec, so every probe reported the bench runner's own size as its peak."""
    return _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("json", "import"), required=True)
    parser.add_argument("--feed", required=True)
    parser.add_argument("--db", default="")
    parser.add_argument("--practice", default="")
    args = parser.parse_args(argv)
    path = Path(args.feed)

    if args.mode == "json":
        baseline = _rss_kib()
        started = time.perf_counter()
        data = json.loads(path.read_bytes())
        seconds = time.perf_counter() - started
        count = len(data)
    else:
        from sqlalchemy.orm import configure_mappers

        from bench.common import APP_OVERRIDES
        from service import create_app
        from service.db import db
        from service.meeting_import.sources import import_source

        app = create_app({**APP_OVERRIDES, "DATABASE_URL": args.db})
        with app.app_context():
            # Connect and configure the ORM mappers before the baseline: process warm-up
            # that any first query pays, not work of the import.
            db.session.execute(db.text("SELECT 1"))
            configure_mappers()
            baseline = _rss_kib()
            started = time.perf_counter()
            report = import_source(
                practice=args.practice,
                source=str(path),
                feed_key="bench-tsml-feed",
                allow_private=False,
                now=datetime.now(UTC),
            )
            db.session.commit()
            seconds = time.perf_counter() - started
            count = getattr(report, "created", None) or getattr(report, "count", None)
    peak = _peak_kib()
    json.dump(
        {"seconds": seconds, "baseline_kib": baseline, "peak_kib": peak,
         "growth_kib": max(0, peak - baseline), "count": count},
        sys.stdout,
    )  # fmt: skip
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
