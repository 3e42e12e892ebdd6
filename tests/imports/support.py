"""Helpers for the import tests: small TSML feeds, row counts and a local feed server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import func, select

from service.db import db
from service.models import Alert, AuditEntry, Event, Meeting, MeetingFeed

DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def tsml_row(n: int, **fields: Any) -> dict[str, Any]:
    """Return a TSML meeting numbered n (slug "meeting-n"), with overrides."""
    row: dict[str, Any] = {
        "slug": f"meeting-{n}",
        "name": f"Meeting {n}",
        "day": n % 7,
        "time": f"{7 + n % 14:02d}:30",
        "timezone": "America/Chicago",
        "location": f"Hall {n}",
        "formatted_address": f"{n} Main St, Springfield, IL",
        "types": ["O", "D"],
    }
    row.update(fields)
    return row


def tsml_feed(count: int, start: int = 1) -> list[dict[str, Any]]:
    """Return a TSML feed of `count` meetings numbered from `start`."""
    return [tsml_row(n) for n in range(start, start + count)]


def as_bytes(feed: Any) -> bytes:
    """Encode a feed as the JSON bytes a server would send."""
    return json.dumps(feed).encode()


def count(model: Any, *where: Any) -> int:
    """Return how many rows of `model` match."""
    return db.session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def row_counts() -> dict[str, int]:
    """Return the row counts an import may change."""
    return {m.__tablename__: count(m) for m in (Meeting, MeetingFeed, Event, Alert, AuditEntry)}


def report_counts(report: Any) -> tuple[int, int, int, int, int]:
    """Return (created, updated, unchanged, deactivated, skipped) of a report or its dict."""
    data = report if isinstance(report, dict) else report.as_dict()
    return (
        data["created"], data["updated"], data["unchanged"], data["deactivated"],
        len(data["skipped"]),
    )  # fmt: skip


class _FeedHandler(BaseHTTPRequestHandler):
    server: FeedServer

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        self.server.hits.append(self.path)
        body = self.server.body
        self.send_response(self.server.status)
        self.send_header("Content-Type", self.server.content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FeedServer(ThreadingHTTPServer):
    """A 127.0.0.1 server answering every GET with `body`; tests change it between imports."""

    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _FeedHandler)
        self.body = b"[]"
        self.status = 200
        self.content_type = "application/json"
        self.hits: list[str] = []

    def url(self, path: str = "/feed.json") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@contextmanager
def feed_server() -> Iterator[FeedServer]:
    """Run a FeedServer for the duration of the block."""
    server = FeedServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
