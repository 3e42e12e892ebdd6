"""`flask meetings …`: import a meeting feed (file or URL) into a practice, list remembered feeds."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from service.audit import Actor, record
from service.commands import fail, parse_now
from service.db import db
from service.meeting_import import ImportFailed, ImportReport, import_source
from service.models import Meeting, MeetingFeed, Practice
from service.models.vocab import RECOVERY_PATHS
from service.serialize import iso

logger = logging.getLogger(__name__)

group = click.Group("meetings", help="Import meeting feeds (TSML, BMLT, CSV) and list them.")
SHOWN_SKIPS = 20


def resolve_practice(name: str | None) -> Practice:
    """Return the practice named (or with this id); the only one when no name is given."""
    practices = list(db.session.scalars(select(Practice).order_by(Practice.name)))
    if name is None:
        if len(practices) == 1:
            return practices[0]
        if not practices:
            fail("there is no practice yet; create a therapist first (flask therapist create)")
        names = ", ".join(p.name for p in practices)
        fail(f"there are {len(practices)} practices; choose one with --practice: {names}")
    for match in (
        lambda p: p.name == name,
        lambda p: p.name.casefold() == name.casefold(),
        lambda p: p.id == name,
    ):
        found = [p for p in practices if match(p)]
        if len(found) == 1:
            return found[0]
    names = ", ".join(p.name for p in practices) or "none"
    fail(f"no practice named {name!r} (practices: {names})")


class _Progress:
    """A click progress bar on stderr, opened once the record count is known."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            bar = click.progressbar(length=total, label="Importing meetings", file=sys.stderr)
            self.bar = bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


def _summary(report: ImportReport, practice: Practice) -> list[str]:
    lines = [
        f"Imported feed {report.feed_key!r} into {practice.name}: {report.created} created, "
        f"{report.updated} updated, {report.unchanged} unchanged, "
        f"{report.deactivated} deactivated, {len(report.skipped)} skipped."
    ]
    if report.alerts:
        lines.append(f"{report.alerts} meeting_inactive alert(s) raised for client plans.")
    for skip in report.skipped[:SHOWN_SKIPS]:
        lines.append(f"  skipped {skip.slug or '(no slug)'}: {skip.reason}")
    if len(report.skipped) > SHOWN_SKIPS:
        lines.append(f"  … and {len(report.skipped) - SHOWN_SKIPS} more (see --json)")
    return lines


@group.command("import")
@click.argument("source")
@click.option("--practice", "practice_name", default=None, help="Practice name (or id).")
@click.option("--feed", "feed_key", default=None, help="Feed key; default: URL or file stem.")
@click.option("--timezone", default=None, help="IANA zone for rows that name none.")
@click.option("--fellowship", type=click.Choice(RECOVERY_PATHS), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print only the report as JSON.")
@with_appcontext
def import_command(
    source: str,
    practice_name: str | None,
    feed_key: str | None,
    timezone: str | None,
    fellowship: str | None,
    as_json: bool,
) -> None:
    """Import SOURCE (a TSML/BMLT JSON or CSV file, or an http(s) URL) into a practice."""
    now = parse_now(None)
    practice = resolve_practice(practice_name)
    progress = _Progress()
    try:
        report = import_source(
            practice=practice, source=source, feed_key=feed_key, default_timezone=timezone,
            fellowship=fellowship, now=now, progress=progress,
            allow_private=current_app.extensions["settings"].ALLOW_PRIVATE_FEED_URLS,
        )  # fmt: skip
        result = report.as_dict()
        record(Actor("cli", None, practice.id), "meetings.import", now=now,
               subject_type="meeting_feed", subject_id=report.feed_id,
               detail={"feed_key": report.feed_key, **result, "skipped": len(report.skipped)})  # fmt: skip
        db.session.commit()
    except ImportFailed as exc:
        db.session.rollback()
        fail(f"the feed was not imported: {exc.message}")
    except Exception:
        db.session.rollback()
        raise
    finally:
        progress.close()
    if as_json:
        click.echo(json.dumps(result))
        return
    for line in _summary(report, practice):
        click.echo(line)


@group.command("feeds")
@click.option("--practice", "practice_name", default=None, help="Only this practice's feeds.")
@click.option("--json", "as_json", is_flag=True, help="Print the feeds as a JSON array.")
@with_appcontext
def feeds_command(practice_name: str | None, as_json: bool) -> None:
    """List the remembered meeting feeds, with their active meeting counts and refresh times."""
    stmt = (
        select(MeetingFeed, Practice.name, func.count(Meeting.id))
        .join(Practice, Practice.id == MeetingFeed.practice_id)
        .outerjoin(Meeting, (Meeting.feed_id == MeetingFeed.id) & Meeting.active.is_(True))
        .group_by(MeetingFeed.id, Practice.name)
        .order_by(Practice.name, MeetingFeed.key)
    )
    if practice_name is not None:
        stmt = stmt.where(MeetingFeed.practice_id == resolve_practice(practice_name).id)
    rows = [
        {
            "practice": name,
            "key": feed.key,
            "url": feed.url,
            "format": feed.format,
            "fellowship": feed.fellowship,
            "default_timezone": feed.default_timezone,
            "active_meetings": active,
            "last_imported_at": iso(feed.last_imported_at),
            "next_refresh_at": iso(feed.next_refresh_at),
            "last_error": feed.last_error,
        }  # fmt: skip
        for feed, name, active in db.session.execute(stmt)
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("No meeting feeds yet.")
        return
    for row in rows:
        refresh = f", next refresh {row['next_refresh_at']}" if row["next_refresh_at"] else ""
        click.echo(
            f"{row['practice']}: {row['key']} [{row['format'] or '?'}] "
            f"{row['active_meetings']} active meetings, imported {row['last_imported_at']}{refresh}"
        )
        if row["last_error"]:
            click.echo(f"  last error: {row['last_error']}")
