"""deploy/gunicorn.conf.py: threaded workers, and the app served by them on the suite's database.

The production config runs gthread workers (see its docstring); here the service is served by
exactly that config with several threads per worker while requests that write (feed misses,
counted in one row per address) and feed polls arrive at once: every write is counted once,
none fails on SQLite's single writer, and every poll is answered 304 with the feed's ETag.
"""

from __future__ import annotations

import multiprocessing
import os
import runpy
import shutil
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from service import feeds
from service.db import db
from service.models import RateLimitBucket
from tests.factories import make_meeting, make_plan

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy" / "gunicorn.conf.py"


def _config(**env: str) -> dict:
    saved = dict(os.environ)
    try:
        for key in [k for k in os.environ if k.startswith("GUNICORN_")]:
            del os.environ[key]
        os.environ.update(env)
        return runpy.run_path(str(CONFIG))
    finally:
        os.environ.clear()
        os.environ.update(saved)


def test_the_deploy_config_runs_threaded_workers() -> None:
    conf = _config()
    assert conf["worker_class"] == "gthread" and conf["threads"] >= 2
    assert conf["workers"] == min(4, multiprocessing.cpu_count() * 2)
    assert conf["accesslog"] == "-"
    tuned = _config(GUNICORN_WORKERS="3", GUNICORN_WORKER_CLASS="sync", GUNICORN_THREADS="1",
                    GUNICORN_ACCESS_LOG="")  # fmt: skip
    assert (tuned["workers"], tuned["worker_class"], tuned["threads"]) == (3, "sync", 1)
    assert tuned["accesslog"] is None  # off


def test_a_worker_freezes_what_it_loaded_once_the_app_is_up() -> None:
    import gc

    hook = _config()["post_worker_init"]
    before = gc.get_freeze_count()
    loaded = len(gc.get_objects())
    try:
        hook(None)
        # everything the collector tracked is now in the permanent generation
        assert gc.get_freeze_count() >= before + loaded // 2
        assert len(gc.get_objects()) < loaded // 2
    finally:
        gc.unfreeze()
    assert gc.get_freeze_count() == 0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(sys.platform == "win32", reason="gunicorn runs on POSIX")
def test_threaded_workers_count_every_write_once_and_answer_polls(
    app, database_url, carol, tmp_path
) -> None:
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    assert gunicorn, "gunicorn is in requirements.txt"
    make_plan(carol, make_meeting(carol.practice_id))
    url = feeds.rotate_client_feed(carol, now=app.extensions["clock"]())
    db.session.commit()
    path = "/feeds/" + url.rsplit("/", 1)[1]
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "GUNICORN_BIND": f"127.0.0.1:{port}",
           "GUNICORN_WORKERS": "2", "GUNICORN_THREADS": "4", "GUNICORN_ACCESS_LOG": "",
           "STEADFAST_ENV": "test", "SECRET_KEY": "test-secret-key-0123456789abcdef",
           "PUBLIC_BASE_URL": "https://steadfast.example.org", "SMS_BACKEND": "fake"}  # fmt: skip
    env.pop("GUNICORN_WORKER_CLASS", None)
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our venv's gunicorn
            [gunicorn, "-c", str(CONFIG), "wsgi:app"], cwd=ROOT, env=env, stdout=out, stderr=out
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                first = requests.get(base + path, timeout=5)
                break
            except requests.RequestException:
                assert proc.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        assert first.status_code == 200
        etag = first.headers["ETag"]

        def miss(n: int) -> int:
            return requests.get(f"{base}/feeds/{'x' * 43}{n % 10}.ics", timeout=30).status_code

        def poll(_: int) -> tuple[int, str | None]:
            answer = requests.get(base + path, headers={"If-None-Match": etag}, timeout=30)
            return answer.status_code, answer.headers.get("ETag")

        with ThreadPoolExecutor(max_workers=12) as pool:
            misses = pool.map(miss, range(40))
            polls = pool.map(poll, range(40))
            misses, polls = list(misses), list(polls)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert set(misses) <= {404, 429} and 404 in misses, log.read_text()[-2000:]
    assert polls == [(304, etag)] * 40
    db.session.expire_all()
    buckets = db.session.query(RateLimitBucket).all()
    assert len(buckets) == 1 and buckets[0].count == misses.count(404)
