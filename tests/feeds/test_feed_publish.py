"""`flask feeds publish --out DIR`: static files, rewritten only when their feed changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service import feeds
from service.db import db
from tests.factories import make_client, make_commitment
from tests.feeds.helpers import T0, token_from

NOW = ["--now", "2026-12-01T17:00:00Z"]
OLD = 1_000_000_000  # an mtime long before any run


@pytest.fixture
def published(alice, carol, tmp_path):
    """Carol's, Erin's and Alice's feeds, with their tokens."""
    erin = make_client(alice.therapist, display_name="Erin T.", phone="+15005550111")
    make_commitment(carol)
    make_commitment(erin, time="07:30")
    tokens = {
        "carol": token_from(feeds.rotate_client_feed(carol, now=T0)),
        "erin": token_from(feeds.rotate_client_feed(erin, now=T0)),
        "alice": token_from(feeds.rotate_therapist_feed(alice.therapist, now=T0)),
    }
    db.session.commit()
    return {"tokens": tokens, "erin": erin, "out": tmp_path}


def _run(runner, out: Path):
    return runner.invoke(args=["feeds", "publish", "--out", str(out), *NOW])


def _age_all(out: Path) -> None:
    for path in out.iterdir():
        os.utime(path, (OLD, OLD))


def test_publish_writes_every_live_feed(runner, carol, published) -> None:
    out = published["out"]
    result = _run(runner, out)
    assert result.exit_code == 0, result.output
    assert "written 3, unchanged 0, removed 0" in result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"{t}.ics" for t in published["tokens"].values()
    )
    body, _etag, _modified = feeds.render_client_feed(carol, now=T0)
    assert (out / f"{published['tokens']['carol']}.ics").read_bytes() == body
    assert all(token not in result.output for token in published["tokens"].values())


def test_second_run_rewrites_nothing(runner, published) -> None:
    out = published["out"]
    _run(runner, out)
    _age_all(out)
    result = _run(runner, out)
    assert "written 0, unchanged 3, removed 0" in result.output
    assert all(p.stat().st_mtime == OLD for p in out.iterdir())


def test_a_change_rewrites_exactly_that_file(runner, published) -> None:
    out = published["out"]
    _run(runner, out)
    _age_all(out)
    make_commitment(published["erin"], title="Gratitude list", time="21:00")
    db.session.commit()
    result = _run(runner, out)
    assert "written 1, unchanged 2, removed 0" in result.output
    changed = {p.name for p in out.iterdir() if p.stat().st_mtime != OLD}
    assert changed == {f"{published['tokens']['erin']}.ics"}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def test_revoked_and_discharged_feeds_are_removed(runner, carol, published) -> None:
    out = published["out"]
    _run(runner, out)
    feeds.revoke_client_feed(carol, now=T0)
    published["erin"].status = "discharged"
    db.session.commit()
    (out / "index.html").write_text("not a feed")
    result = _run(runner, out)
    assert "written 0, unchanged 1, removed 2" in result.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{published['tokens']['alice']}.ics", "index.html"]
    )


def test_unusable_directory_fails_with_a_reason(runner, published, monkeypatch) -> None:
    missing = published["out"] / "nope"
    result = _run(runner, missing)
    assert result.exit_code != 0
    assert "is not a directory" in result.stderr
    afile = published["out"] / "file"
    afile.write_text("x")
    assert _run(runner, afile).exit_code != 0

    def refuse(path: Path, body: bytes) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("service.commands.feeds._write_atomically", refuse)
    result = _run(runner, published["out"])
    assert result.exit_code != 0
    assert "Permission denied" in result.stderr
    assert all(token not in result.stderr for token in published["tokens"].values())
