"""Flask CLI command groups (edges: each command is one unit of work and commits once)."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import NoReturn

import click


def fail(message: str) -> NoReturn:
    """Print the reason on stderr and exit non-zero."""
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def parse_now(value: str | None) -> datetime:
    """Parse a --now option (ISO-8601, `Z` or an offset); default: the real clock."""
    if not value:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        fail(f"--now is not an ISO-8601 instant: {value!r}")
    if parsed.tzinfo is None:
        fail("--now needs a timezone (e.g. 2026-12-01T19:00:00Z)")
    return parsed.astimezone(UTC)
