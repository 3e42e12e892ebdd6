"""`flask feeds publish`: write every live calendar feed as a static file for a CDN or web server."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import click
from flask.cli import with_appcontext

from service import feeds
from service.commands import fail, parse_now
from service.db import db

logger = logging.getLogger(__name__)

group = click.Group("feeds", help="Publish calendar feeds as static files.")


def _write_atomically(path: Path, body: bytes) -> None:
    """Replace path with body so a web server never serves a half-written feed."""
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".feed-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(body)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def _writable(out: Path) -> None:
    if not out.is_dir():
        fail(f"{out} is not a directory")
    if not os.access(out, os.W_OK | os.X_OK):
        fail(f"{out} is not writable")


@group.command("publish")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="Directory that receives <token>.ics files.")  # fmt: skip
@click.option("--now", "now_text", default=None, help="Pretend it is this instant (ISO-8601).")
@with_appcontext
def publish(out: Path, now_text: str | None) -> None:
    """Write each live feed to OUT/<token>.ics, rewriting only the ones that changed."""
    now = parse_now(now_text)
    _writable(out)
    written = unchanged = removed = skipped = 0
    keep: set[str] = set()
    try:
        for row in feeds.live_feeds():
            token = feeds.token_of(row)
            owner = feeds.feed_owner(row)
            if token is None or owner is None:
                # Undecryptable (SECRET_KEY changed) or the care has ended: no file.
                skipped += 1
                continue
            name = f"{token}.ics"
            keep.add(name)
            path = out / name
            body = feeds.feed_body(owner, now=now)
            if path.is_file() and path.read_bytes() == body:
                unchanged += 1
                continue
            _write_atomically(path, body)
            written += 1
        # Every other feed file is a revoked or ended link: it must stop answering.
        for path in out.glob("*.ics"):
            if path.name not in keep and feeds.TOKEN_SHAPE.fullmatch(path.stem):
                path.unlink()
                removed += 1
    except OSError as exc:
        db.session.rollback()
        fail(f"cannot publish to {out}: {exc.strerror or exc}")
    db.session.rollback()  # read-only: nothing to keep
    click.echo(f"written {written}, unchanged {unchanged}, removed {removed}, skipped {skipped}")
