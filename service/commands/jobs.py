"""`flask jobs …`: run the scheduler process, or run every sweep once for an instant."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from service.commands import fail, parse_now

group = click.Group("jobs", help="Run the scheduler, or every sweep once (tick).")


@group.command("run")
@with_appcontext
def run() -> None:
    """Run the scheduler until SIGTERM/SIGINT (one per SQLite database)."""
    from service.jobs.scheduler import SchedulerLocked, run_scheduler

    try:
        run_scheduler(current_app._get_current_object())  # type: ignore[attr-defined]
    except SchedulerLocked as exc:
        fail(f"{exc}; one scheduler per SQLite database is supported")


@group.command("tick")
@click.option("--now", "now_text", default=None, help="The instant (ISO-8601 with offset).")
@with_appcontext
def tick_command(now_text: str | None) -> None:
    """Run every sweep once for the instant and print a count per sweep (idempotent)."""
    from service.jobs.tick import TickFailed, tick

    now = parse_now(now_text)
    try:
        counts = tick(now)
    except TickFailed as exc:
        for name, count in exc.counts.items():
            click.echo(f"{name}: {'FAILED' if count < 0 else count}")
        fail(str(exc))
    for name, count in counts.items():
        click.echo(f"{name}: {count}")
