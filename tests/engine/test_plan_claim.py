"""The planning sweep's claim (fixed driver SQL) moves exactly the watermarks an UPDATE does.

`horizon._claim` against SQLAlchemy's UPDATE … WHERE planned_until IS the one read: sources
never planned, planned at the watermark read, and moved by another planner meanwhile.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from service import horizon
from service.db import db
from service.models import Commitment, MeetingPlan
from tests.factories import make_client, make_commitment, make_meeting, make_plan

NOW = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
UNTIL = NOW + timedelta(hours=24)


def _sources(people) -> dict[type, list[str]]:
    """Four plans and four commitments: two never planned, one at NOW, one moved since."""
    meeting = make_meeting(people.riverside.id, day=3, time="19:00", end_time="20:30")
    clients = [make_client(people.alice.therapist, phone=f"+150055507{k:02d}") for k in range(4)]
    for client in clients:
        make_plan(client, meeting)
        make_commitment(client)
    db.session.commit()
    ids = {}
    for model in (MeetingPlan, Commitment):
        ids[model] = list(db.session.scalars(select(model.id).order_by(model.id)))
        table = model.__table__
        db.session.execute(
            update(table).where(table.c.id.in_(ids[model][2:])).values(planned_until=NOW)
        )
    db.session.commit()
    return ids


def _watermarks(model: type) -> dict[str, datetime | None]:
    table = model.__table__
    rows = db.session.execute(select(table.c.id, table.c.planned_until)).all()
    return {row_id: planned for row_id, planned in rows}


def _reference_claim(model: type, by_previous: dict, until: datetime) -> set[str]:
    table = model.__table__
    claimed: set[str] = set()
    for previous, ids in by_previous.items():
        moved = table.c.planned_until.is_(None) if previous is None else (
            table.c.planned_until == previous
        )  # fmt: skip
        result = db.session.execute(
            update(table)
            .where(table.c.id.in_(ids), moved)
            .values(planned_until=until)
            .returning(table.c.id)
        )
        claimed.update(result.scalars())
    return claimed


def test_the_claim_moves_the_watermarks_the_reference_update_moves(people):
    ids = _sources(people)
    for model in (MeetingPlan, Commitment):
        mine = ids[model]
        # As read: the first two never planned, the others at NOW; the last was moved by
        # another planner after the read (to NOW + 1 h), so it is not claimed.
        by_previous = {None: mine[:2], NOW: mine[2:]}
        table = model.__table__
        db.session.execute(
            update(table)
            .where(table.c.id == mine[-1])
            .values(planned_until=NOW + timedelta(hours=1))
        )
        db.session.commit()
        before = _watermarks(model)
        results = []
        for claim in (horizon._claim, _reference_claim):
            claimed = claim(model, by_previous, UNTIL)
            results.append((claimed, _watermarks(model)))
            db.session.rollback()
            assert _watermarks(model) == before
        assert results[0] == results[1]
        claimed, after = results[0]
        assert claimed == set(mine[:-1])
        assert after[mine[-1]] == NOW + timedelta(hours=1)
        assert all(after[source_id] == UNTIL for source_id in claimed)


def test_a_second_claim_of_the_same_read_claims_nothing(people):
    ids = _sources(people)
    by_previous = {None: ids[Commitment][:2], NOW: ids[Commitment][2:]}
    assert horizon._claim(Commitment, by_previous, UNTIL) == set(ids[Commitment])
    assert horizon._claim(Commitment, by_previous, UNTIL + timedelta(hours=1)) == set()
    assert set(_watermarks(Commitment).values()) == {UNTIL}
