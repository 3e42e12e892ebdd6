"""Fixtures for the feed tests: the Node/ical.js expansion harness in tests/icaljs."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.db import db
from tests.factories import make_meeting, make_plan

ICALJS_DIR = Path(__file__).resolve().parents[1] / "icaljs"

ExpandWithIcalJs = Callable[[bytes, datetime, datetime], dict[str, list[str]]]


def _missing_tool(tool: str) -> None:
    """Skip without the tool on a developer machine, but never let CI pass by skipping."""
    message = f"`{tool}` is not on PATH; the ical.js cross-parser tests need Node.js and npm"
    if os.environ.get("CI") == "true":
        pytest.fail(message + " (CI=true: refusing to skip)")
    pytest.skip(message)


def _installed_version() -> str | None:
    manifest = ICALJS_DIR / "node_modules" / "ical.js" / "package.json"
    if not manifest.exists():
        return None
    return json.loads(manifest.read_text(encoding="utf-8"))["version"]


def _pinned_version() -> str:
    manifest = json.loads((ICALJS_DIR / "package.json").read_text(encoding="utf-8"))
    return manifest["dependencies"]["ical.js"]


def _ensure_node_modules(npm: str) -> None:
    """Run `npm ci` unless node_modules already holds the pinned ical.js."""
    if _installed_version() == _pinned_version():
        return
    # pytest-xdist workers each run session fixtures: serialise so only one runs npm ci.
    lock_path = Path(tempfile.gettempdir()) / "steadfast-icaljs-npm-ci.lock"
    with lock_path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _installed_version() == _pinned_version():
            return
        completed = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=ICALJS_DIR,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if completed.returncode != 0:
            pytest.fail(f"npm ci failed in {ICALJS_DIR}:\n{completed.stdout}\n{completed.stderr}")
    assert _installed_version() == _pinned_version()


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="session")
def icaljs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExpandWithIcalJs]:
    """Yield a function expanding a feed with ical.js: {uid: [UTC ISO instants]}."""
    node = shutil.which("node")
    if node is None:
        _missing_tool("node")
    npm = shutil.which("npm")
    if npm is None:
        _missing_tool("npm")
    assert node is not None and npm is not None
    _ensure_node_modules(npm)
    workdir = tmp_path_factory.mktemp("icaljs")
    counter = iter(range(1_000_000))

    def expand(ics: bytes, start: datetime, end: datetime) -> dict[str, list[str]]:
        feed = workdir / f"feed-{next(counter)}.ics"
        feed.write_bytes(ics)
        completed = subprocess.run(
            [node, str(ICALJS_DIR / "expand.mjs"), str(feed), _iso(start), _iso(end)],
            cwd=ICALJS_DIR,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if completed.returncode != 0:
            pytest.fail(f"expand.mjs failed on {feed}:\n{completed.stderr}")
        return json.loads(completed.stdout)

    yield expand


@pytest.fixture
def plan(carol):
    """A meeting plan of carol's, committed."""
    row = make_plan(carol, make_meeting(carol.practice_id))
    db.session.commit()
    return row
