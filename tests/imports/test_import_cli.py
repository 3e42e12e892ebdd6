"""`flask meetings import` and `flask meetings feeds`: output, progress, practice choice, failures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import select

from service.db import db
from service.models import AuditEntry, Meeting, MeetingFeed
from tests.factories import make_therapist
from tests.imports.conftest import FIXTURES
from tests.imports.support import count, feed_server, row_counts, tsml_feed, tsml_row

RIVERSIDE = "Riverside Counseling"


def invoke(runner: Any, *args: str) -> Any:
    return runner.invoke(args=["meetings", *args])


def write(tmp_path: Path, name: str, feed: Any) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(feed))
    return str(path)


def test_json_output_is_exactly_the_report(runner, people):
    result = invoke(runner, "import", str(FIXTURES / "meetings.csv"), "--practice", RIVERSIDE,
                    "--timezone", "America/Chicago", "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "created": 4, "updated": 0, "unchanged": 0, "deactivated": 0,
        "skipped": [{"slug": "bad-day", "reason": "invalid day"}],
    }  # fmt: skip
    assert result.stdout.count("\n") == 1
    assert count(Meeting, Meeting.practice_id == people.riverside.id) == 4
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "meetings.import"))
    assert (entry.actor_type, entry.practice_id) == ("cli", people.riverside.id)


def test_progress_goes_to_stderr_not_stdout(runner, people, tmp_path):
    path = write(tmp_path, "big.json", tsml_feed(1200))
    result = invoke(runner, "import", path, "--practice", RIVERSIDE, "--json")
    assert result.exit_code == 0, result.output
    assert "Importing meetings" in result.stderr
    assert "Importing" not in result.stdout
    assert json.loads(result.stdout)["created"] == 1200


def test_human_summary(runner, people, tmp_path):
    result = invoke(runner, "import", str(FIXTURES / "bmlt.json"), "--practice", RIVERSIDE)
    assert result.exit_code == 0, result.output
    assert (
        f"Imported feed 'bmlt' into {RIVERSIDE}: 4 created, 0 updated, 0 unchanged, "
        "0 deactivated, 4 skipped." in result.stdout
    )
    assert "  skipped 105: unpublished" in result.stdout


def test_reimport_counts(runner, people, tmp_path):
    feed = tsml_feed(5)
    path = write(tmp_path, "area.json", feed)
    first = invoke(runner, "import", path, "--practice", RIVERSIDE, "--json")
    assert json.loads(first.stdout)["created"] == 5
    same = invoke(runner, "import", path, "--practice", RIVERSIDE, "--json")
    assert json.loads(same.stdout) == {
        "created": 0, "updated": 0, "unchanged": 5, "deactivated": 0, "skipped": [],
    }  # fmt: skip
    feed[0]["time"] = "06:45"
    del feed[4]
    feed.append(tsml_row(6))
    path = write(tmp_path, "area.json", feed)
    edited = invoke(runner, "import", path, "--practice", RIVERSIDE, "--json")
    assert json.loads(edited.stdout) == {
        "created": 1, "updated": 1, "unchanged": 3, "deactivated": 1, "skipped": [],
    }  # fmt: skip
    assert db.session.scalar(select(MeetingFeed.key)) == "area"


def test_practice_is_required_when_there_are_several(runner, people):
    result = invoke(runner, "import", str(FIXTURES / "bmlt.json"))
    assert result.exit_code != 0
    assert "--practice" in result.stderr
    assert "Harbor Health" in result.stderr and RIVERSIDE in result.stderr
    assert result.stdout == ""
    assert count(MeetingFeed) == 0


def test_practice_by_name_any_case_or_id(runner, people):
    result = invoke(runner, "import", str(FIXTURES / "bmlt.json"), "--practice", "harbor health")
    assert result.exit_code == 0, result.output
    assert count(Meeting, Meeting.practice_id == people.harbor.id) == 4
    result = invoke(
        runner, "import", str(FIXTURES / "bmlt.json"), "--practice", people.riverside.id
    )
    assert result.exit_code == 0, result.output
    assert count(Meeting, Meeting.practice_id == people.riverside.id) == 4
    result = invoke(runner, "import", str(FIXTURES / "bmlt.json"), "--practice", "Nowhere")
    assert result.exit_code != 0 and "no practice named 'Nowhere'" in result.stderr


def test_the_only_practice_needs_no_option(app, runner):
    make_therapist()
    db.session.commit()
    result = invoke(runner, "import", str(FIXTURES / "tsml_sheets.json"), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["created"] == 2


def test_failure_exits_non_zero_with_the_reason_and_writes_nothing(runner, people, tmp_path):
    invoke(runner, "import", write(tmp_path, "area.json", tsml_feed(3)), "--practice", RIVERSIDE)
    before = row_counts()
    broken = tmp_path / "area.json"
    broken.write_bytes((FIXTURES / "malformed.json").read_bytes())
    result = invoke(runner, "import", str(broken), "--practice", RIVERSIDE, "--json")
    assert result.exit_code == 1
    assert "not valid JSON" in result.stderr and result.stdout == ""
    missing = invoke(runner, "import", str(tmp_path / "nope.csv"), "--practice", RIVERSIDE)
    assert missing.exit_code == 1 and "cannot read" in missing.stderr
    bad_zone = invoke(runner, "import", str(FIXTURES / "bmlt.json"), "--practice", RIVERSIDE,
                      "--timezone", "Mars/Olympus")  # fmt: skip
    assert bad_zone.exit_code == 1 and "timezone" in bad_zone.stderr
    db.session.expire_all()
    assert row_counts() == before


def test_private_url_refused_then_allowed(make_app, runner, people):
    with feed_server() as server:
        server.body = json.dumps(tsml_feed(2)).encode()
        args = ["meetings", "import", server.url(), "--practice", RIVERSIDE, "--feed", "area",
                "--timezone", "America/Chicago", "--json"]  # fmt: skip
        refused = runner.invoke(args=args)
        assert refused.exit_code == 1 and "non-public" in refused.stderr
        assert server.hits == []
        app = make_app(ALLOW_PRIVATE_FEED_URLS=True)
        with app.app_context():  # the command runs in the current app's context
            allowed = app.test_cli_runner().invoke(args=args)
            db.session.remove()
        assert allowed.exit_code == 0, allowed.output
        assert json.loads(allowed.stdout)["created"] == 2
    feed = db.session.scalar(select(MeetingFeed))
    assert (feed.key, feed.url) == ("area", server.url())


def test_feeds_lists_remembered_feeds(runner, people, tmp_path):
    assert invoke(runner, "feeds").stdout == "No meeting feeds yet.\n"
    invoke(runner, "import", write(tmp_path, "area.json", tsml_feed(3)), "--practice", RIVERSIDE)
    invoke(runner, "import", write(tmp_path, "area.json", tsml_feed(2)), "--practice", RIVERSIDE)
    result = invoke(runner, "feeds")
    assert result.exit_code == 0, result.output
    assert f"{RIVERSIDE}: area [tsml] 2 active meetings" in result.stdout
    rows = json.loads(invoke(runner, "feeds", "--json").stdout)
    assert [(r["practice"], r["key"], r["active_meetings"], r["url"]) for r in rows] == [
        (RIVERSIDE, "area", 2, None)
    ]
