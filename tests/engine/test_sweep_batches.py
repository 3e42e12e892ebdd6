"""The planning and prompt sweeps work in batches: every row once, an event each, nothing lost."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import func, select

from service import horizon, prompting
from service.db import db
from service.jobs import sweeps
from service.models import CheckIn, Event
from tests.engine.conftest import checkins_of, outbox
from tests.factories import make_client, make_commitment, make_contact, make_meeting, make_plan

T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # Tuesday 12:00 New York
ASK = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # 20:00 New York: the commitments are due


def events(kind: str) -> list[Event]:
    return list(db.session.scalars(select(Event).where(Event.type == kind).order_by(Event.id)))


def clients(people, n: int):  # noqa: ANN001, ANN201
    made = [people.carol]
    for k in range(1, n):
        made.append(make_client(people.alice.therapist, display_name=f"Client{k} X.",
                                phone=f"+150055503{k:02d}"))  # fmt: skip
    return made


def test_planning_in_small_batches_plans_every_source_once_with_an_event_each(people, monkeypatch):
    monkeypatch.setattr(horizon, "PLAN_BATCH", 2)
    meeting = make_meeting(people.riverside.id, day=3, time="19:00", end_time="20:30")
    sources = []
    for client in clients(people, 5):
        sources.append(make_commitment(client))
        sources.append(make_plan(client, meeting))
    db.session.commit()
    # Five commitments (Dec 1 and Dec 2 at 20:00) and five plans (Wednesday Dec 2).
    assert sweeps.plan_ahead(T0) == 15
    for source in sources:
        assert len(checkins_of(source.id)) == (2 if source in sources[::2] else 1)
    planned = events("checkin.planned")
    ids = set(db.session.scalars(select(CheckIn.id)))
    assert len(planned) == 15 and {e.subject_id for e in planned} == ids
    assert sweeps.plan_ahead(T0) == 0
    assert len(events("checkin.planned")) == 15


def test_plans_sharing_a_meeting_keep_their_own_start_pause_and_creation(people):
    meeting = make_meeting(people.riverside.id, day=3, time="19:00", end_time="20:30")
    long_ago, recent, later, paused, created_late = clients(people, 5)
    kept = [
        make_plan(long_ago, meeting, starts_on=date(2025, 6, 4)),
        make_plan(recent, meeting, starts_on=date(2026, 11, 20)),
    ]
    skipped = [
        make_plan(later, meeting, starts_on=date(2026, 12, 3)),
        make_plan(paused, meeting, paused_until=date(2026, 12, 3)),
        make_plan(created_late, meeting, created_at=datetime(2026, 12, 3, 0, 30, tzinfo=UTC)),
    ]
    db.session.commit()
    assert sweeps.plan_ahead(T0) == 2
    for plan in kept:
        (row,) = checkins_of(plan.id)
        assert row.occurrence == datetime(2026, 12, 2, 19, 0)
        assert row.due_at == datetime(2026, 12, 3, 1, 30, tzinfo=UTC)
    assert all(checkins_of(plan.id) == [] for plan in skipped)


def test_an_occurrence_another_writer_planned_is_skipped_without_an_event(people):
    commitment = make_commitment(people.carol)
    db.session.commit()
    # A row for Dec 2 that the planner's read does not see (its instant lies elsewhere),
    # as if a concurrent planner had written it after that read: the unique key decides.
    theirs = CheckIn(
        practice_id=commitment.practice_id, client_id=commitment.client_id,
        source_type="commitment", source_id=commitment.id,
        occurrence=datetime(2026, 12, 2, 20, 0),
        event_at=datetime(2026, 11, 1, tzinfo=UTC), due_at=datetime(2026, 11, 1, tzinfo=UTC),
        status="scheduled", created_at=T0, updated_at=T0,
    )  # fmt: skip
    db.session.add(theirs)
    db.session.commit()
    assert sweeps.plan_ahead(T0) == 1
    rows = checkins_of(commitment.id)
    assert [r.occurrence for r in rows] == [datetime(2026, 12, 2, 20), datetime(2026, 12, 1, 20)]
    assert rows[0].id == theirs.id and rows[0].event_at == datetime(2026, 11, 1, tzinfo=UTC)
    assert [e.subject_id for e in events("checkin.planned")] == [rows[1].id]


def test_one_prompt_sweep_call_drains_more_than_a_batch(people, monkeypatch):
    monkeypatch.setattr(prompting, "BATCH", 2)
    meeting = make_meeting(people.riverside.id, day=3, time="19:00", end_time="20:30")
    made = clients(people, 5)
    commitments = [make_commitment(client, time="18:00") for client in made]
    plans = [make_plan(client, meeting, remind_minutes_before=60) for client in made[:3]]
    db.session.commit()
    sweeps.plan_ahead(T0)
    # Wednesday 18:00 New York: three reminders and the five commitments' prompts are due.
    now = datetime(2026, 12, 2, 23, 0, tzinfo=UTC)
    assert sweeps.send_reminders_and_prompts(now) == 3 + 5
    assert {m.checkin_id for m in outbox(purpose="reminder")} == {
        checkins_of(plan.id)[0].id for plan in plans
    }
    prompted = [checkins_of(c.id)[1] for c in commitments]  # Dec 2's; Dec 1's was stale
    assert all(row.status == "prompted" and row.prompted_at == now for row in prompted)
    assert {m.checkin_id for m in outbox(purpose="prompt")} == {row.id for row in prompted}
    assert {e.subject_id for e in events("checkin.prompted")} == {row.id for row in prompted}
    stale = [checkins_of(c.id)[0] for c in commitments]
    assert all(row.skip_reason == "stale" for row in stale)
    assert sweeps.send_reminders_and_prompts(now) == 0


def test_codes_stay_distinct_when_a_sponsors_prompts_span_batches(people, monkeypatch):
    monkeypatch.setattr(prompting, "BATCH", 1)
    rows = []
    for client in clients(people, 3):
        dave = people.dave if client is people.carol else make_contact(client)
        rows.append(make_commitment(client, verifier_contact_id=dave.id))
    db.session.commit()
    sweeps.plan_ahead(T0)
    assert sweeps.send_reminders_and_prompts(ASK) == 3
    codes = [checkins_of(c.id)[0].prompt_code for c in rows]
    assert all(codes) and len(set(codes)) == 3
    # The first prompt went out alone, uncoded; it got its code when the second opened.
    bodies = [m.body for m in outbox(purpose="prompt", to_number=people.dave.phone)]
    assert len(bodies) == 3 and sum("(code " in body for body in bodies) == 2
    total = db.session.scalar(select(func.count(CheckIn.id)).where(CheckIn.status == "prompted"))
    assert total == 3
