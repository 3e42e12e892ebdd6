"""Feed tokens and set-password links never reach a request log, in gunicorn or the dev server."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from service.logs import SecretPathFilter, mask_secrets

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0Z2FycGx5d2FsZG8"


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        (f"GET /feeds/{TOKEN}.ics HTTP/1.1", "GET /feeds/***.ics HTTP/1.1"),
        (f"GET /feeds/{TOKEN} HTTP/1.1", "GET /feeds/*** HTTP/1.1"),
        (f"GET /set-password/{TOKEN}?x=1 HTTP/1.1", "GET /set-password/***?x=1 HTTP/1.1"),
        (f"https://h.example/set-password/{TOKEN}", "https://h.example/set-password/***"),
        ("GET /api/v1/clients?after=cl_1 HTTP/1.1", "GET /api/v1/clients?after=cl_1 HTTP/1.1"),
    ],
)
def test_mask_secrets(line, masked):
    assert mask_secrets(line) == masked


def test_the_dev_server_request_log_is_masked():
    record = logging.LogRecord("werkzeug", logging.INFO, __file__, 1,
                               '%s - - "%s" %s -', ("127.0.0.1", f"GET /feeds/{TOKEN}.ics HTTP/1.1", "200"),
                               None)  # fmt: skip
    assert SecretPathFilter().filter(record)
    assert TOKEN not in record.getMessage()
    assert '"GET /feeds/***.ics HTTP/1.1" 200' in record.getMessage()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(sys.platform == "win32", reason="gunicorn runs on POSIX")
def test_gunicorn_access_log_from_the_production_config_is_masked(tmp_path):
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent))
    assert gunicorn, "gunicorn is in requirements.txt"
    port = _free_port()
    log = tmp_path / "access.log"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
           "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1",
           "GUNICORN_ACCESS_LOG": str(log), "STEADFAST_ENV": "test",
           "SECRET_KEY": "test-secret-key-0123456789abcdef"}  # fmt: skip
    proc = subprocess.Popen(  # noqa: S603 - our venv's gunicorn
        [gunicorn, "-c", "deploy/gunicorn.conf.py", "wsgi:app"], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/healthz", timeout=5)
                break
            except requests.RequestException:  # not listening yet, or the worker still booting
                assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)
        feed = requests.get(f"{base}/feeds/{TOKEN}.ics", timeout=5)
        link = requests.get(f"{base}/set-password/{TOKEN}", timeout=5,
                            headers={"Referer": f"{base}/set-password/{TOKEN}"})  # fmt: skip
        # The database is not migrated here: answers are 404/503; only the log lines matter.
        assert feed.status_code in (404, 503) and link.status_code in (200, 404, 503)
        deadline = time.monotonic() + 10
        while log.read_text().count("\n") < 3 and time.monotonic() < deadline:
            time.sleep(0.1)  # gunicorn writes the access line after the response
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        proc.stderr.close()
    text = log.read_text()
    assert "GET /feeds/***.ics" in text and "GET /set-password/***" in text
    assert TOKEN not in text
