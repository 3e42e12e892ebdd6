"""Run one meeting-feed import (or the json.loads floor) in a fresh process; print time and memory."""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


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
        from bench.common import APP_OVERRIDES
        from service import create_app
        from service.db import db
        from service.meeting_import.sources import import_source

        app = create_app({**APP_OVERRIDES, "DATABASE_URL": args.db})
        with app.app_context():
            db.session.execute(db.text("SELECT 1"))  # connect before the baseline
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
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    json.dump(
        {"seconds": seconds, "baseline_kib": baseline, "peak_kib": peak,
         "growth_kib": max(0, peak - baseline), "count": count},
        sys.stdout,
    )  # fmt: skip
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
