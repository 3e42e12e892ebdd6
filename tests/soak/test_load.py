"""Load held (issue #9): 60 s at 200 requests per second of mixed traffic against gunicorn +
PostgreSQL while the scheduler runs. Measured, not a gate: the test asserts correctness only
(no 5xx, no unexpected 4xx, no connection errors, every process alive, no sweep failed) and
writes the rate held and p50/p99 per kind to load.json, with one summary line (pytest -s).

Everything stays on 127.0.0.1: a throwaway database on the local server (never `test`), the
fake Twilio in this process, bench/loadmix.py as the paced load generator.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from bench.common import percentile, pg_reachable, private_postgres
from bench.generate import bench_now, generate
from bench.loadmix import prepare, run, standard_mix, summary_line, warm_feeds
from service import create_app
from service.db import db
from tests.conftest import BASE_OVERRIDES
from tests.fake_twilio import FakeTwilio, fake_twilio_fixture
from tests.soak._cluster import free_port
from tests.soak._services import gunicorn_cmd, migrate, process, scheduler_cmd, wait_ready
from tests.soak.conftest import scheduler_env

pytestmark = pytest.mark.slow

PG_ADMIN = os.environ.get("LOAD_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
RATE = float(os.environ.get("LOAD_RATE", "200"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "60"))
CLIENTS = 200


@pytest.fixture
def load_database() -> Iterator[str]:
    """A throwaway database steadfast_load_<random> on the local server, dropped afterwards."""
    url = make_url(PG_ADMIN)
    if url.host not in ("127.0.0.1", "localhost", "::1"):
        pytest.fail(f"the load run only uses a local server, not {url.host}")
    if not pg_reachable(url.host, url.port or 5432):
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {url.host}:{url.port} is unreachable")
        pytest.skip(f"PostgreSQL at {url.host}:{url.port} is unreachable")
    with private_postgres("steadfast_load", admin_url=PG_ADMIN) as database_url:
        yield database_url


_ACCESS = re.compile(r"^(GET|POST|PATCH) (\S+) (\d{3}) (\d+)ms$", re.M)


def server_times(access_log: str) -> dict[str, dict[str, float]]:
    """Median and p99 of gunicorn's own request time (no queueing) per route, from its log."""
    by_route: dict[str, list[float]] = {}
    for method, path, _status, ms in _ACCESS.findall(access_log):
        route = re.sub(r"/(cl|al|ci)_[0-9a-z]+", r"/{\1}", path)
        route = re.sub(r"^/feeds/.*", "/feeds/{token}.ics", route)
        by_route.setdefault(f"{method} {route}", []).append(float(ms))
    return {
        route: {"n": len(v), "p50": percentile(v, 50), "p99": percentile(v, 99)}
        for route, v in sorted(by_route.items())
    }


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    yield from fake_twilio_fixture()  # wall-clock: the scheduler runs in real time


def test_mixed_load_at_200_rps_for_60_s_with_the_scheduler_running(
    load_database: str, twilio: FakeTwilio, tmp_path
):
    # Sweeps every few seconds (dispatch 3.75 s, prompts 7.5 s) so they overlap the load.
    env = scheduler_env(load_database, twilio, SCHEDULER_INTERVAL_SCALE="0.25", LOG_LEVEL="INFO")
    migrate(env)
    now = bench_now()
    population = generate(load_database, CLIENTS, now=now)
    app = create_app({**BASE_OVERRIDES, "DATABASE_URL": load_database,
                      "PUBLIC_BASE_URL": env["PUBLIC_BASE_URL"]})  # fmt: skip
    targets = prepare(app, now)
    with app.app_context():
        db.engine.dispose()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with (
        process(gunicorn_cmd(port, workers=2, threads=4), env, tmp_path / "web.log") as web,
        process(scheduler_cmd(), env, tmp_path / "scheduler.log") as jobs,
    ):
        wait_ready(base, web)
        warm_feeds(base, targets)
        mix = standard_mix(targets, env["PUBLIC_BASE_URL"], env["TWILIO_AUTH_TOKEN"],
                           env["TWILIO_ACCOUNT_SID"])  # fmt: skip
        report = run(base, mix, rate=RATE, seconds=SECONDS)
        alive = {"web": web.poll() is None, "scheduler": jobs.poll() is None}
    scheduler_log = (tmp_path / "scheduler.log").read_text()
    report["server_ms_by_route"] = server_times((tmp_path / "web.log").read_text())
    report["population"] = {k: v for k, v in population.rows.items() if v}
    report["scheduler"] = {
        "sweeps_run": scheduler_log.count("INFO service.jobs.scheduler: sweep "),
        "sweeps_failed": len(re.findall(r"sweep \w+ failed|database unavailable", scheduler_log)),
        "twilio_posts": len(twilio.posts()),
    }
    (tmp_path / "load.json").write_text(json.dumps(report, indent=2))
    print(f"\nload run ({tmp_path / 'load.json'}): {summary_line(report)}; {report['scheduler']}")
    print("server time by route (ms): " + "; ".join(
        f"{route} n={f['n']} p50 {f['p50']:g} p99 {f['p99']:g}"
        for route, f in report["server_ms_by_route"].items()
    ))  # fmt: skip

    overall = report["overall"]
    assert alive == {"web": True, "scheduler": True}
    assert overall["requests"] + overall["not_sent"] == int(RATE * SECONDS)
    assert overall["errors_5xx"] == 0, report["kinds"]
    assert overall["connection_errors"] == 0, report["kinds"]
    assert overall["errors_4xx"] == 0, report["kinds"]
    assert report["scheduler"]["sweeps_failed"] == 0, scheduler_log[-3000:]
    assert report["scheduler"]["sweeps_run"] > 0
