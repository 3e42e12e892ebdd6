"""The planning sweep's fast paths store exactly what the reference paths store.

`_write_planned` (PostgreSQL: one unnest/CTE statement; SQLite: driver executemany of values
bound through the columns' types) against `_write_planned_generic` (SQLAlchemy INSERT and
`append_events`); the per-batch memo against fresh expansion; positional `SourceFacts`.
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select, update

from service import planning
from service.db import db, new_id
from service.events import bind_values
from service.horizon import MAX_CATCH_UP
from service.jobs import sweeps
from service.models import CheckIn, Client, Commitment, Event, MeetingPlan
from service.planning import ClientFacts, SourceFacts, desired_slots
from tests.factories import make_client, make_commitment, make_contact, make_meeting, make_plan

# Nights around DST changes: New York falls back 2026-11-01 and springs forward 2027-03-14;
# Sydney springs forward 2026-10-04 and falls back 2027-04-04; Kolkata keeps one offset.
NIGHTS = [
    datetime(2026, 10, 31, 12, tzinfo=UTC),
    datetime(2027, 3, 13, 12, tzinfo=UTC),
    datetime(2026, 10, 3, 12, tzinfo=UTC),
    datetime(2027, 4, 3, 12, tzinfo=UTC),
]
ZONES = ["America/New_York", "Australia/Sydney", "Asia/Kolkata"]
CREATED = datetime(2026, 9, 1, tzinfo=UTC)


def _population(people) -> None:
    """Clients in three zones with meetings and commitments at times DST skips or repeats."""
    start = date(2026, 9, 1)
    for index, zone in enumerate(ZONES):
        client = make_client(
            people.alice.therapist,
            timezone=zone,
            phone=f"+1500555030{index}",
            created_at=CREATED,
            updated_at=CREATED,
        )
        contact = make_contact(
            client, phone=f"+1500555040{index}", timezone=ZONES[(index + 1) % len(ZONES)]
        )
        for day, time, end in [(0, "02:30", "03:30"), (6, "01:30", None), (3, "20:30", "22:00")]:
            meeting = make_meeting(
                people.riverside.id, day=day, time=time, end_time=end, timezone=zone
            )
            for verifier in (None, contact.id):
                make_plan(
                    client,
                    meeting,
                    starts_on=start,
                    created_at=CREATED,
                    remind_minutes_before=90,
                    verifier_contact_id=verifier,
                )
        for time in ("01:30", "02:30", "07:45", "20:00"):
            make_commitment(client, time=time, starts_on=start, created_at=CREATED)
        make_commitment(
            client, title="Weekly", rrule="FREQ=WEEKLY;BYDAY=SU", time="02:15", starts_on=start
        )
    db.session.commit()


_CHECKIN_COLUMNS = (
    "id, practice_id, client_id, source_type, source_id, occurrence, event_at, due_at,"
    " closes_at, reminder_at, reminder_sent_at, prompted_at, verifier_contact_id, status,"
    " prompt_code, skip_reason, created_at, updated_at"
)


def _snapshot() -> tuple[list[tuple], list[tuple]]:
    """The stored check-ins and events as the database holds them, ids made comparable."""
    conn = db.session.connection()
    checkins = conn.exec_driver_sql(
        f"SELECT {_CHECKIN_COLUMNS} FROM checkins ORDER BY source_type, source_id, occurrence"  # noqa: S608
    ).all()
    key_of = {row[0]: (row[3], row[4], str(row[5])) for row in checkins}
    order = {row_id: position for position, row_id in enumerate(sorted(key_of))}
    events = conn.exec_driver_sql(
        "SELECT type, practice_id, client_id, subject_type, subject_id, CAST(payload AS TEXT),"
        " occurred_at, txid IS NULL FROM events ORDER BY id"
    ).all()
    # Events follow the order the check-ins were made in: their ids' order.
    subjects = [event[4] for event in events if event[0] == "checkin.planned"]
    assert [order[s] for s in subjects] == sorted(order[s] for s in subjects)
    return (
        [(key_of[row[0]], *row[1:]) for row in checkins],
        [(*event[:4], key_of.get(event[4], event[4]), *event[5:]) for event in events],
    )


def _reset() -> None:
    db.session.execute(Event.__table__.delete())
    db.session.execute(CheckIn.__table__.delete())
    for model in (MeetingPlan, Commitment):
        db.session.execute(update(model.__table__).values(planned_until=None))
    db.session.commit()


def _reference(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(planning, "_write_planned_postgresql", planning._write_planned_generic)
    monkeypatch.setattr(planning, "_write_planned_sqlite", planning._write_planned_generic)


@pytest.mark.parametrize("now", NIGHTS, ids=lambda n: n.date().isoformat())
def test_the_sweep_stores_what_the_reference_path_stores(people, monkeypatch, now):
    _population(people)
    created = [sweeps.plan_ahead(now + timedelta(hours=hours)) for hours in (0, 12, 30)]
    assert sum(created) > 100
    fast = _snapshot()
    _reset()
    with monkeypatch.context() as patched:
        _reference(patched)
        assert [sweeps.plan_ahead(now + timedelta(hours=hours)) for hours in (0, 12, 30)] == (
            created
        )
    assert _snapshot() == fast
    # A re-run writes nothing twice.
    assert sweeps.plan_ahead(now + timedelta(hours=30)) == 0


def test_a_row_another_writer_holds_is_skipped_alike(people, monkeypatch):
    """ON CONFLICT: the taken key gets neither a row nor an event; the others are written."""
    _population(people)
    now = NIGHTS[0]
    sources = list(db.session.scalars(select(Commitment).order_by(Commitment.id)))
    results = []
    for reference in (False, True):
        _reset()
        rows = []
        for source in sources[:3]:
            for day in range(3):
                occurrence = datetime(2026, 11, 1 + day, 2, 30)
                at = occurrence.replace(tzinfo=UTC) + timedelta(hours=5)
                rows.append(
                    {
                        "id": None,
                        "practice_id": source.practice_id,
                        "client_id": source.client_id,
                        "source_type": "commitment",
                        "source_id": source.id,
                        "occurrence": occurrence,
                        "event_at": at,
                        "due_at": at,
                        "closes_at": at + timedelta(hours=2),
                        "reminder_at": None if day else at - timedelta(minutes=30),
                        "verifier_contact_id": None,
                        "status": "scheduled",
                        "created_at": now,
                        "updated_at": now,
                    }
                )
        for row, row_id in zip(rows, sorted(new_id("ci") for _ in rows), strict=True):
            row["id"] = row_id
        taken = dict(rows[4], id=new_id("ci"), due_at=now)  # another writer's row, same key
        db.session.execute(CheckIn.__table__.insert(), [taken])
        with monkeypatch.context() as patched:
            if reference:
                _reference(patched)
            written = planning._write_planned(rows, now)
        db.session.commit()
        assert written == {row["id"] for row in rows} - {rows[4]["id"]}
        results.append(_snapshot())
    assert results[0] == results[1]


def test_the_batch_memo_changes_no_slot(people):
    """Sharing expansion and placement in a batch gives each source what it gets alone."""
    _population(people)
    work = []
    for model in (MeetingPlan, Commitment):
        for source in db.session.scalars(select(model)):
            work.append((source, db.session.get(Client, source.client_id)))
    for now in NIGHTS:
        lo, hi = now - MAX_CATCH_UP, now + timedelta(hours=60)
        memo: planning.Memo = {}
        for source, client in work:
            shared = desired_slots(source, client, lo, hi, memo=memo)
            assert shared == desired_slots(source, client, lo, hi)
        assert any(key[0] == "weekly" for key in memo)


def test_the_shared_slots_of_source_facts_are_what_each_source_gets_alone(people):
    """The sweep's per-batch slot lists (one per question, the verifier swapped in) change
    nothing: each source, as the sweep reads it, gets what its ORM entity gets alone, with
    sources that differ only by a pause, a later creation or a paused client kept apart."""
    from service import horizon

    _population(people)
    first = db.session.scalars(
        select(Client)
        .join(Commitment, Commitment.client_id == Client.id)
        .where(Client.timezone == ZONES[0])
    ).first()
    own = [
        *db.session.scalars(
            select(MeetingPlan).where(
                MeetingPlan.client_id == first.id, MeetingPlan.verifier_contact_id.is_(None)
            )
        ),
        *db.session.scalars(select(Commitment).where(Commitment.client_id == first.id)),
    ]
    # Twins of the first client's sources, asking the same questions, but for what varies.
    twins = []
    for index in range(5):
        twin = make_client(
            people.alice.therapist, timezone=ZONES[0], phone=f"+1500555050{index}",
            quiet_start=first.quiet_start, quiet_end=first.quiet_end,
        )  # fmt: skip
        for source in own:
            if isinstance(source, MeetingPlan):
                copy = make_plan(
                    twin, source.meeting, starts_on=source.starts_on,
                    created_at=source.created_at, remind_minutes_before=90,
                )  # fmt: skip
            else:
                copy = make_commitment(
                    twin, title=source.title, rrule=source.rrule, time=source.time,
                    starts_on=source.starts_on, created_at=source.created_at,
                )  # fmt: skip
            twins.append((index, copy))
    db.session.commit()
    compared = 0
    for night in NIGHTS:
        for index, copy in twins:
            if index == 0:
                copy.paused_until = (night + timedelta(days=1)).date()
            elif index == 1:
                copy.created_at = night + timedelta(hours=20)
            elif index == 2:
                copy.starts_on = (night + timedelta(days=1)).date()
        for index, days in ((3, 2), (4, 1)):  # two paused twins, back on different days
            paused = db.session.get(Client, next(c.client_id for i, c in twins if i == index))
            paused.status, paused.paused_until = "paused", (night + timedelta(days=days)).date()
        db.session.commit()
        lo, hi = night - timedelta(hours=20), night + timedelta(hours=60)
        memo: planning.Memo = {}
        for model in (MeetingPlan, Commitment):
            kind = "meeting_plan" if model is MeetingPlan else "commitment"
            for row in db.session.execute(horizon.due_sources_stmt(model, hi + timedelta(days=9))):
                facts = SourceFacts.from_row(kind, row)
                client = ClientFacts(
                    row.client_id, row.client_status, row.client_paused_until,
                    row.client_timezone, row.client_quiet_start, row.client_quiet_end,
                )  # fmt: skip
                alone = desired_slots(
                    db.session.get(model, row.id), db.session.get(Client, row.client_id), lo, hi
                )
                assert desired_slots(facts, client, lo, hi, memo=memo) == alone
                compared += len(alone)
        assert any(key[0] == "slots:meeting" for key in memo)
        assert any(key[0] == "slots:commitment" for key in memo)
    assert compared > 50


def test_source_facts_from_a_row_fills_every_field():
    names = [f.name for f in fields(SourceFacts) if f.name not in ("source_type", "meeting")]
    meeting_columns = ["meeting_active", "meeting_day", "meeting_time", "meeting_end_time"]
    Row = namedtuple("Row", [*names, *meeting_columns, "meeting_timezone"])  # noqa: PYI024
    values = {name: f"{name}-value" for name in names}
    values.update(
        meeting_active=1, meeting_day=3, meeting_time="19:00", meeting_end_time=None,
        meeting_timezone="Asia/Kolkata",
    )  # fmt: skip
    row = Row(**values)
    plan = SourceFacts.from_row("meeting_plan", row)
    assert plan == SourceFacts(
        source_type="meeting_plan",
        meeting=planning.MeetingFacts(True, 3, "19:00", None, "Asia/Kolkata"),
        **{n: values[n] for n in _COMMON},
        remind_minutes_before=values["remind_minutes_before"],
        confirm_window_hours=values["confirm_window_hours"],
    )
    commitment = SourceFacts.from_row("commitment", row)
    assert commitment == SourceFacts(
        source_type="commitment",
        **{n: values[n] for n in _COMMON},
        **{n: values[n] for n in ("kind", "rrule", "time", "grace_minutes", "active")},
    )


def test_positional_reading_of_the_sweeps_rows_matches_reading_by_name(people):
    """SourceFacts and the sweep's ClientFacts, read by position, are what the names say."""
    from service import horizon

    _population(people)
    until = NIGHTS[0] + timedelta(days=400)
    for model, kind in ((MeetingPlan, "meeting_plan"), (Commitment, "commitment")):
        rows = db.session.execute(horizon.due_sources_stmt(model, until)).all()
        assert rows
        for row in rows:
            named = {name: getattr(row, name) for name in _COMMON}
            if kind == "meeting_plan":
                expected = SourceFacts(
                    kind,
                    meeting=planning.MeetingFacts(
                        bool(row.meeting_active), row.meeting_day, row.meeting_time,
                        row.meeting_end_time, row.meeting_timezone,
                    ),
                    remind_minutes_before=row.remind_minutes_before,
                    confirm_window_hours=row.confirm_window_hours,
                    **named,
                )  # fmt: skip
            else:
                expected = SourceFacts(
                    kind,
                    **named,
                    **{n: getattr(row, n) for n in ("kind", "rrule", "time", "grace_minutes")},
                    active=row.active,
                )
            assert SourceFacts.from_row(kind, row) == expected
    claimed: list[list] = []
    sync = horizon.sync_sources
    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(horizon, "sync_sources", lambda work, *a, **k: claimed.append(work) or 0)
        sweeps.plan_ahead(NIGHTS[0])
    assert claimed and sync is planning.sync_sources
    for work in claimed:
        for source, client, _lo in work:
            stored = db.session.get(Client, source.client_id)
            assert client == ClientFacts(
                stored.id, stored.status, stored.paused_until, stored.timezone,
                stored.quiet_start, stored.quiet_end,
            )  # fmt: skip


_COMMON = (
    "id", "practice_id", "client_id", "verifier_contact_id", "starts_on", "paused_until",
    "archived_at", "planned_until", "created_at", "verifier_timezone",
)  # fmt: skip


def test_bind_values_tells_apart_what_equality_does_not():
    zone = ZoneInfo("America/New_York")
    first = datetime(2026, 11, 1, 1, 30, tzinfo=zone)
    second = first.replace(fold=1)  # an hour later, yet == first
    utc = first.astimezone(UTC)
    seen = bind_values(lambda v: v.astimezone(UTC), [first, second, utc, first])
    assert seen == [utc, second.astimezone(UTC), utc, utc]
    assert seen[1] - seen[0] == timedelta(hours=1)


def test_planning_start_memo_gives_what_each_source_gets_alone(people):
    from service.horizon import planning_start

    _population(people)
    memo: dict = {}
    now = NIGHTS[1]
    for source in db.session.scalars(select(Commitment)):
        zone = db.session.get(Client, source.client_id).timezone
        client = ClientFacts(source.client_id, "active", None, zone, "21:00", "08:00")
        alone = planning_start(source, client, now)
        assert planning_start(source, client, now, memo=memo) == alone
    assert memo


def test_the_existing_rows_probe_agrees_with_the_plain_query(people):
    """PostgreSQL's per-source LATERAL probe answers what the plain Core probe answers."""
    _population(people)
    now = NIGHTS[0]
    sweeps.plan_ahead(now)
    table = CheckIn.__table__
    commitments = [c.id for c in db.session.scalars(select(Commitment).order_by(Commitment.id))]
    windows = [
        (now, now + timedelta(hours=12)),
        (now + timedelta(hours=40), now + timedelta(hours=60)),  # past the horizon: none
        (now - timedelta(days=30), now - timedelta(days=29)),  # before anything: none
    ]
    answers = []
    for source_type, ids in (("commitment", commitments), ("meeting_plan", commitments)):
        for subset in (ids, ids[:1], ids[-2:]):
            for lo, hi in windows:
                conditions = planning._existing_conditions(source_type, subset, lo, hi)
                plain = db.session.execute(select(table.c.id).where(*conditions)).first()
                probe = planning._any_rows(source_type, subset, lo, hi)
                assert probe == (plain is not None)
                answers.append(probe)
    assert True in answers and False in answers


def test_a_batch_holds_at_most_plan_batch_sources_across_both_kinds(people, monkeypatch):
    """Five plans and four commitments, three a batch: three transactions, not four."""
    from service import horizon

    monkeypatch.setattr(horizon, "PLAN_BATCH", 3)
    claimed: list[int] = []
    plan_batch = horizon._plan_batch
    monkeypatch.setattr(
        horizon,
        "_plan_batch",
        lambda model, rows, *args: claimed.append(len(rows)) or plan_batch(model, rows, *args),
    )
    meeting = make_meeting(people.riverside.id, day=3, time="19:00", end_time="20:30")
    others = [make_client(people.alice.therapist, phone=f"+150055506{k:02d}") for k in range(4)]
    for client in [people.carol, *others]:
        make_plan(client, meeting)
    for client in others:
        make_commitment(client)
    db.session.commit()
    now = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    batches = list(horizon.plan_due_batches(now, horizon=timedelta(hours=36)))
    db.session.commit()
    assert claimed == [3, 2, 1, 3]  # plans 3 | plans 2 + commitment 1 | commitments 3
    assert batches == [3, 2 + 2, 6]  # one check-in a plan, two a commitment
    assert list(horizon.plan_due_batches(now, horizon=timedelta(hours=36))) == []
