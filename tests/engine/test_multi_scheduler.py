"""Four scheduler processes ticking the same instants on one PostgreSQL database never double up."""

from __future__ import annotations

import multiprocessing
import os
from datetime import datetime

import pytest
from sqlalchemy import func, select

from service.db import db
from service.models import Alert, CheckIn, Event, Message
from tests.factories import make_client, make_commitment

POSTGRES = os.environ.get("TEST_DATABASE_URL", "").startswith("postgresql")
PROCESSES = 4
CLIENTS = 12
INSTANTS = (
    "2026-12-01T17:00:00+00:00",  # plan ahead
    "2026-12-02T01:00:00+00:00",  # 20:00 New York: every client is asked
    "2026-12-02T03:01:00+00:00",  # the grace period is over: every client missed
)


def _worker(app, barrier, failures) -> None:  # noqa: ANN001 - mp primitives
    """One scheduler process: its own connections; tick each instant with the others."""
    from service.jobs.tick import tick

    with app.app_context():
        # A forked child must never use the parent's pooled connections.
        db.engine.dispose(close=False)
        for instant in INSTANTS:
            barrier.wait(timeout=120)
            try:
                tick(datetime.fromisoformat(instant))
            except Exception as exc:  # noqa: BLE001 - reported to the parent
                failures.put(f"{os.getpid()} {instant}: {exc!r}")
        db.session.remove()
        db.engine.dispose()


def _count_per(column, *criteria) -> dict[str, int]:  # noqa: ANN001
    rows = db.session.execute(select(column, func.count()).where(*criteria).group_by(column))
    return {key: n for key, n in rows}


@pytest.mark.postgres_only
@pytest.mark.skipif(not POSTGRES, reason="needs TEST_DATABASE_URL=postgresql…")
def test_four_schedulers_prompt_each_check_in_once_and_alert_each_miss_once(app, people):
    for n in range(CLIENTS):
        client = make_client(people.alice.therapist, display_name=f"C{n} X.",
                             phone=f"+150055502{n:02d}")  # fmt: skip
        make_commitment(client)
    db.session.commit()
    db.session.remove()

    # Real processes, each with its own connections, over the same database. Forked rather
    # than spawned: a spawned child re-imports the whole service, seconds of CPU apiece.
    db.engine.dispose()
    ctx = multiprocessing.get_context("fork")
    barrier, failures = ctx.Barrier(PROCESSES), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(app, barrier, failures)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=180)
    reported = []
    while not failures.empty():
        reported.append(failures.get())
    assert reported == []
    assert [w.exitcode for w in workers] == [0] * PROCESSES

    first = db.session.scalars(
        select(CheckIn.id).where(CheckIn.occurrence == datetime(2026, 12, 1, 20, 0))
    ).all()
    assert len(first) == CLIENTS
    planned = _count_per(Event.subject_id, Event.type == "checkin.planned")
    assert set(planned.values()) == {1}  # each occurrence planned once (unique key held)
    prompts = _count_per(Message.checkin_id, Message.purpose == "prompt")
    assert {k: prompts.get(k) for k in first} == dict.fromkeys(first, 1)
    prompted = _count_per(Event.subject_id, Event.type == "checkin.prompted")
    assert {k: prompted.get(k) for k in first} == dict.fromkeys(first, 1)
    missed = _count_per(Event.subject_id, Event.type == "checkin.missed")
    assert {k: missed.get(k) for k in first} == dict.fromkeys(first, 1)
    statuses = set(db.session.scalars(select(CheckIn.status).where(CheckIn.id.in_(first))))
    assert statuses == {"missed"}
    assert db.session.scalar(select(func.count(Alert.id)).where(Alert.kind == "missed")) == CLIENTS
    raised = db.session.scalar(select(func.count(Event.id)).where(Event.type == "alert.raised"))
    assert raised == CLIENTS
    batch_texts = db.session.scalar(
        select(func.count(Message.id)).where(Message.template == "alert_batch_therapist")
    )
    assert batch_texts == 0  # 22:01 in New York: the therapist hears at 08:00
