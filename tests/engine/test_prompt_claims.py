"""The prompt sweep's one-statement claim: each row its own window and code, as per-row UPDATEs would."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import String, cast, delete, select, update

from service import consent, prompting
from service.db import db, id_in
from service.events import EVENT_ROW_COLUMNS, append_events
from service.jobs import sweeps
from service.models import CheckIn, Client, Commitment, Event, MeetingPlan, OptOut, SupportContact
from service.notifications.grammar import ALL_CODES
from service.planning import checkin_event_values
from tests.engine.conftest import checkins_of, outbox
from tests.factories import make_client, make_commitment, make_contact, make_meeting, make_plan

T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
_C = CheckIn.__table__.c


def _planned(people, count: int) -> list[CheckIn]:
    rows = []
    for n in range(count):
        client = make_client(
            people.alice.therapist, display_name=f"Client{n} X.", phone=f"+1500555{n:04d}"
        )
        rows.append(make_commitment(client, verifier_contact_id=make_contact(client).id))
    db.session.commit()
    sweeps.plan_ahead(T0)
    return [checkins_of(c.id)[0] for c in rows]


def _stored(ids: list[str]) -> dict[str, tuple]:
    db.session.expire_all()
    # The closing time as stored too (SQLite keeps text: the same text as a per-row UPDATE's).
    stored = cast(_C.closes_at, String)
    stmt = select(
        _C.id, _C.status, _C.prompted_at, _C.updated_at, _C.closes_at, _C.prompt_code, stored
    )
    return {row.id: tuple(row[1:]) for row in db.session.execute(stmt.where(_C.id.in_(ids)))}


def test_the_claim_stores_what_per_row_updates_store(people):
    rows = _planned(people, 4)
    ids = [row.id for row in rows]
    now = datetime(2026, 12, 2, 1, 0, 12, 345678, tzinfo=UTC)
    closes = [now + timedelta(minutes=n, microseconds=n) for n in range(4)]
    codes = ["A1", None, "Z9", "B2"]
    # The last row was changed by someone else: the claim leaves it (and its code) alone.
    db.session.execute(update(CheckIn.__table__).where(_C.id == ids[3]).values(skip_reason="gone"))
    claimed = prompting._claim_prompts(list(zip(ids, closes, codes, strict=True)), now)
    assert claimed == set(ids[:3])
    fast = _stored(ids)
    db.session.rollback()
    db.session.execute(update(CheckIn.__table__).where(_C.id == ids[3]).values(skip_reason="gone"))
    for row_id, closes_at, code in list(zip(ids, closes, codes, strict=True))[:3]:
        db.session.execute(
            update(CheckIn.__table__)
            .where(_C.id == row_id)
            .values(status="prompted", prompted_at=now, updated_at=now, closes_at=closes_at,
                    prompt_code=code)
        )  # fmt: skip
    assert fast == _stored(ids)
    assert fast[ids[0]][3] == closes[0] and fast[ids[1]][4] is None
    assert fast[ids[3]][0] == "scheduled" and fast[ids[3]][4] is None
    prompting._recode([(ids[0], "C3"), (ids[1], "D4")])
    db.session.expire_all()
    assert _stored(ids[:2]) == {
        ids[0]: (*fast[ids[0]][:4], "C3", fast[ids[0]][5]),
        ids[1]: (*fast[ids[1]][:4], "D4", fast[ids[1]][5]),
    }


def test_codes_for_draws_for_the_open_ones_first_and_stops_when_codes_run_out():
    taken = set(ALL_CODES[:-5])
    codes = prompting._codes_for({c.lower() for c in taken}, 2, 10)
    assert len(codes) == 5 and len(set(codes)) == 5 and not set(codes) & taken
    with pytest.raises(ValueError, match="every prompt code is taken"):
        prompting._codes_for(taken, 6, 0)
    assert len(prompting._codes_for(set(), 1, 3)) == 4


def test_a_claimed_prompt_left_without_a_code_fails_the_batch(people, monkeypatch):
    (first,) = _planned(people, 1)
    # Every code but one is taken by the number's open prompts: two new prompts cannot both
    # be coded, so the sweep fails (and its transaction is not committed) instead of sending
    # one of them without a code.
    client = db.session.get(Client, first.client_id)
    second = make_commitment(client, title="Other", verifier_contact_id=first.verifier_contact_id)
    db.session.commit()
    sweeps.plan_ahead(T0)
    monkeypatch.setattr(
        prompting,
        "open_prompt_codes_for_phones",
        lambda phones: {p: [(f"ci_{n}", c) for n, c in enumerate(ALL_CODES[:-1])] for p in phones},
    )
    with pytest.raises(ValueError, match="every prompt code is taken"):
        sweeps.send_reminders_and_prompts(datetime(2026, 12, 2, 1, 0, tzinfo=UTC))
    db.session.rollback()
    assert all(
        c.status == "scheduled" for c in checkins_of(second.id) + checkins_of(first.source_id)
    )


def test_a_reminder_goes_to_the_client_whatever_the_verifier_may_be_sent(people):
    # Reminder batches do not load verifiers: a sponsor who opted out, lost SMS consent and
    # was archived stops neither the client's reminder nor its being queued once.
    meeting = make_meeting(people.riverside.id, day=3, time="19:00", end_time="20:00")
    sponsor = make_contact(people.carol, phone="+15005550177", sms_consent=False)
    plan = make_plan(
        people.carol, meeting, verifier_contact_id=sponsor.id, remind_minutes_before=60
    )
    db.session.add(OptOut(phone=sponsor.phone, created_at=T0))
    sponsor.archived_at = T0
    db.session.commit()
    sweeps.plan_ahead(T0)
    (row,) = checkins_of(plan.id)
    assert row.reminder_at is not None and row.verifier_contact_id == sponsor.id
    assert sweeps.send_reminders_and_prompts(row.reminder_at) == 1
    (reminder,) = outbox(purpose="reminder")
    assert reminder.to_number == people.carol.phone and reminder.checkin_id == row.id


def test_the_sweeps_row_gate_agrees_with_recipient_block_reason(people):
    """Clients and contacts read as plain rows get the reasons the ORM-based gate gives."""
    carol = people.carol
    today = date(2026, 12, 2)
    contacts = [
        make_contact(carol, phone="+15005550150"),  # allowed
        make_contact(carol, phone="+15005550151", archived_at=T0),
        make_contact(carol, phone="+15005550152", can_confirm=False),
        make_contact(carol, phone="+15005550153"),  # opted out below
        make_contact(carol, phone="+15005550154", sms_consent=False),
        make_contact(carol, phone="+15005550155", disclosure_scope=None),
        make_contact(carol, phone="+15005550156", disclosure_scope=["missed"]),
        make_contact(carol, phone="+15005550157"),  # consent given for an older number
    ]
    db.session.add(OptOut(phone="+15005550153", created_at=T0))
    contacts[-1].phone = "+15005550158"
    other = make_client(people.alice.therapist, display_name="Eve X.", phone="+15005550159")
    db.session.add(OptOut(phone=other.phone, created_at=T0))
    db.session.commit()
    rows = [
        SimpleNamespace(client_id=client.id, verifier_contact_id=contact_id, source_type="x",
                        source_id="x")
        for client in (carol, other)
        for contact_id in [None, *(c.id for c in contacts)]
    ]  # fmt: skip
    facts = prompting._Facts.load(rows)
    got = {
        c.id: facts.recipient_block_reason(facts.contacts[c.id], today, contact=True)
        for c in contacts
    }
    want = {c.id: prompting.recipient_block_reason(c, today) for c in contacts}
    assert got == want
    assert list(want.values()) == [None, "verifier_archived", "verifier_cannot_confirm",
                                   "opted_out", "no_sms_consent", "no_disclosure_consent",
                                   "no_disclosure_consent", "no_sms_consent"]  # fmt: skip
    for client in (carol, other):
        row_reason = facts.recipient_block_reason(facts.clients[client.id], today)
        assert row_reason == prompting.recipient_block_reason(client, today)
    assert facts.recipient_block_reason(facts.clients[other.id], today) == "opted_out"


def test_prompted_events_are_stored_as_append_events_stores_them(people):
    """The sweep writes its events as bulk rows: the same columns `append_events` writes."""
    (row,) = _planned(people, 1)
    now = datetime(2026, 12, 2, 1, 0, 0, 123456, tzinfo=UTC)
    assert sweeps.send_reminders_and_prompts(now) == 1
    ev = Event.__table__
    fresh = ev.c.id > 0
    (got,) = db.session.execute(select(ev).where(fresh, ev.c.type == "checkin.prompted")).all()
    db.session.execute(delete(ev).where(ev.c.id == got.id))
    reference = checkin_event_values(
        "checkin.prompted",
        checkins_of(row.source_id)[0],
        now,
        {"verifier": row.verifier_contact_id},
    )
    append_events([reference])
    (want,) = db.session.execute(select(ev).where(fresh, ev.c.type == "checkin.prompted")).all()
    skip = {"id", "txid"}
    assert {k: v for k, v in got._mapping.items() if k not in skip} == {
        k: v for k, v in want._mapping.items() if k not in skip
    }
    assert got.payload["verifier"] == row.verifier_contact_id
    assert (got.txid is None) == (want.txid is None)


def test_the_prebuilt_batch_reads_return_what_id_in_reads_return(people):
    rows = _planned(people, 3)
    meeting = make_meeting(people.riverside.id, day=3, time="19:00", end_time="20:00")
    plan = make_plan(people.carol, meeting, verifier_contact_id=people.dave.id)
    db.session.commit()
    wanted = {
        "client": (Client, {r.client_id for r in rows} | {people.carol.id, "cl_missing"}),
        "contact": (SupportContact, {r.verifier_contact_id for r in rows} | {people.dave.id}),
        "commitment": (Commitment, {r.source_id for r in rows}),
        "meeting_plan": (MeetingPlan, {plan.id}),
    }
    for what, (model, ids) in wanted.items():
        reference = prompting._reads(db.session.get_bind().dialect.name == "postgresql")[what]
        stmt = select(*reference.selected_columns).select_from(*reference.get_final_froms())
        stmt = stmt.where(id_in(model.__table__.c.id, sorted(ids)))
        want = sorted(tuple(r) for r in db.session.execute(stmt))
        got = sorted(tuple(r) for r in prompting._read_by_ids(what, ids))
        assert got == want and len(got) == len(ids - {"cl_missing"}), what
    assert prompting._read_by_ids("client", set()) == []


def test_the_consent_batch_reads_agree_with_the_orm_batch_forms(people):
    carol = people.carol
    contacts = [
        people.dave,
        make_contact(carol, phone="+15005550160", sms_consent=False),
        make_contact(carol, phone="+15005550161", disclosure_scope=None),
    ]
    db.session.add(OptOut(phone="+15005550160", created_at=T0))
    db.session.commit()
    subjects = [carol, *contacts]
    keys = [consent.subject_key(s) for s in subjects] + ["client:nobody"]
    rows = consent.latest_sms_consent_rows_by_key(keys)
    orm = consent.latest_sms_consents(subjects)
    assert set(rows) == set(orm) and rows
    for key, row in rows.items():
        want = orm[key]
        assert (row.version, row.granted, row.revoked_at, row.phone) == (
            want.version, want.granted, want.revoked_at, want.phone
        )  # fmt: skip
    phones = [s.phone for s in subjects] + ["+15005550199"]
    assert (
        consent.opted_out_among(phones)
        == {p for p in phones if consent.is_opted_out(p)}
        == {"+15005550160"}
    )
    rows = consent.latest_disclosure_rows(contacts)
    orm = consent.latest_disclosures(contacts)
    assert set(rows) == set(orm) and rows
    for key, row in rows.items():
        want = orm[key]
        assert (row.version, row.revoked_at, row.granted_on, row.expires_on, row.scope) == (
            want.version, want.revoked_at, want.granted_on, want.expires_on, want.scope
        )  # fmt: skip


def test_the_reminder_claim_stores_what_per_row_updates_store(people):
    rows = _planned(people, 4)
    ids = [row.id for row in rows]
    now = datetime(2026, 12, 2, 1, 0, 12, 345678, tzinfo=UTC)
    # Someone else reminded one and moved another on: the claim leaves both alone.
    db.session.execute(update(CheckIn.__table__).where(_C.id == ids[2]).values(reminder_sent_at=T0))
    db.session.execute(update(CheckIn.__table__).where(_C.id == ids[3]).values(status="missed"))
    stored = cast(_C.reminder_sent_at, String)

    def state() -> dict[str, tuple]:
        db.session.expire_all()
        stmt = select(_C.id, _C.status, _C.reminder_sent_at, stored, _C.updated_at)
        return {r.id: tuple(r[1:]) for r in db.session.execute(stmt.where(_C.id.in_(ids)))}

    assert prompting._claim_reminders(ids, now) == set(ids[:2])
    assert prompting._claim_reminders([], now) == set()
    fast = state()
    db.session.rollback()
    db.session.execute(update(CheckIn.__table__).where(_C.id == ids[2]).values(reminder_sent_at=T0))
    db.session.execute(update(CheckIn.__table__).where(_C.id == ids[3]).values(status="missed"))
    for row_id in ids[:2]:
        db.session.execute(
            update(CheckIn.__table__).where(_C.id == row_id).values(reminder_sent_at=now)
        )
    assert fast == state()
    assert fast[ids[0]][1] == now and fast[ids[2]][1] == T0 and fast[ids[3]][1] is None


def test_the_prompted_event_row_is_what_checkin_event_values_makes(people):
    (row,) = _planned(people, 1)
    now = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    (due,) = prompting._named(db.session.execute(prompting.due_prompts_stmt(now)))
    for verifier in ("self", row.verifier_contact_id):
        event = checkin_event_values("checkin.prompted", due, now, {"verifier": verifier})
        want = tuple(event[key] for key in EVENT_ROW_COLUMNS)
        got = prompting._prompted_event(due, verifier, now)
        assert got == want
        assert list(got[5]) == list(want[5])  # the payload's keys in the same order (its JSON)


def test_the_prebuilt_due_reads_are_the_due_statements(people):
    _planned(people, 3)
    db.session.commit()
    now = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    for kind, build in (
        ("reminders", prompting.due_reminders_stmt),
        ("prompts", prompting.due_prompts_stmt),
    ):
        bound = prompting._due_bound(kind, prompting.BATCH)
        want = db.session.execute(build(now)).all()
        got = prompting._named(db.session.execute(bound, {"now": now}))
        assert [tuple(r) for r in got] == [tuple(r) for r in want]
        assert all(g.id == w.id and g.due_at == w.due_at for g, w in zip(got, want, strict=True))
        dialect = db.session.get_bind().dialect
        assert str(bound.compile(dialect=dialect)) == str(
            build(now).compile(dialect=dialect)
        ).replace("%(due_at_1)s", "%(now)s").replace("%(reminder_at_1)s", "%(now)s")
    assert [tuple(r) for r in got]  # the prompts were due


@pytest.mark.parametrize("taken_count", [0, 3, 40, prompting._FREE_DRAW_LIMIT - 2])
def test_new_codes_are_distinct_free_and_uniform_by_either_draw(taken_count):
    from collections import Counter

    taken = {code.lower() for code in ALL_CODES[5 : 5 + taken_count]} | {"zz", "??"}
    free = [code for code in ALL_CODES if code.lower() not in taken]
    seen: Counter[str] = Counter()
    firsts: Counter[str] = Counter()
    draws = 4000
    for _ in range(draws):
        codes = prompting._new_codes(taken, 3)
        assert len(codes) == 3 and len(set(codes)) == 3
        assert all(code in free for code in codes)
        seen.update(codes)
        firsts[codes[0]] += 1
    # Every free code is drawn about equally often (3 × 4,000 draws over the free codes), no
    # code, low or high in ALL_CODES, favoured: Pearson's chi-square over the free codes
    # stays within six standard deviations of its mean (a fair draw fails ~1 in 10^8).
    assert set(seen) == set(free)
    expected = 3 * draws / len(free)
    chi2 = sum((seen[code] - expected) ** 2 / expected for code in free)
    df = len(free) - 1
    assert chi2 < df + 6 * (2 * df) ** 0.5, chi2
    assert len(firsts) > len(free) // 2


def test_new_codes_past_the_draw_limit_come_from_the_listed_free_codes(monkeypatch):
    calls = []
    real = prompting._rng.sample
    monkeypatch.setattr(
        prompting._rng, "sample", lambda pop, k: calls.append(len(pop)) or real(pop, k)
    )
    many = set(ALL_CODES[: prompting._FREE_DRAW_LIMIT])
    codes = prompting._new_codes(many, 4)
    assert calls == [len(ALL_CODES) - len(many)]
    assert len(set(codes)) == 4 and not set(codes) & many
    assert prompting._new_codes({"A1"}, 4) and calls == [len(ALL_CODES) - len(many)]
    with pytest.raises(ValueError, match="every prompt code is taken"):
        prompting._new_codes(set(ALL_CODES[:-2]), 3)


def test_a_batchs_remembered_now_answers_as_the_per_row_calls():
    from service.planning import quiet_hours_of, source_type_of

    now = datetime(2026, 3, 8, 6, 30, 12, 5, tzinfo=UTC)  # a DST morning in New York
    at = prompting._Now(now)
    zones = ["America/New_York", "Europe/Berlin", "Asia/Kolkata", "Pacific/Honolulu", "UTC"]
    quiets = [("21:00", "08:00"), ("22:00", "07:00"), ("00:00", "00:00"), ("01:00", "02:00"),
              ("06:00", "07:00")]  # fmt: skip
    for _ in range(2):  # asked again, the remembered answers stay each row's own
        for zone in zones:
            assert at.today(zone) == prompting._today(zone, now)
            for start, end in quiets:
                client = SimpleNamespace(quiet_start=start, quiet_end=end)
                want = prompting.is_quiet(now, zone, quiet_hours_of(client))
                assert at.is_quiet(zone, client) is want, (zone, start, end)
    # Quiet at 01:30 local in Kolkata (UTC+5:30 -> 12:00), not for another window: told apart.
    assert {at.is_quiet("Asia/Kolkata", SimpleNamespace(quiet_start=s, quiet_end=e))
            for s, e in (("11:00", "13:00"), ("13:00", "14:00"))} == {True, False}  # fmt: skip
    from service.planning import SourceFacts

    def facts(source_type: str, **window: int) -> SourceFacts:
        return SourceFacts(source_type, "src", "pr", "cl", None, date(2026, 1, 1), None, None,
                           None, now, None, **window)  # fmt: skip

    sources = [facts("meeting_plan", confirm_window_hours=h) for h in (2, 12, 2)] + [
        facts("commitment", grace_minutes=m) for m in (30, 90, 30, 0)
    ]
    for source in sources * 2:
        assert at.closes(source) == prompting._closes(source, now), source
    assert {source_type_of(s) for s in sources} == {"meeting_plan", "commitment"}
    assert len({at.closes(s) for s in sources}) == 5


def test_the_sweeps_reads_return_the_instants_the_plain_columns_return(people):
    from service.planning import source_facts_select

    rows = _planned(people, 3)
    meeting = make_meeting(people.riverside.id, day=3, time="19:00", end_time="20:00")
    plan = make_plan(people.carol, meeting, verifier_contact_id=people.dave.id)
    contact = db.session.get(SupportContact, rows[0].verifier_contact_id)
    contact.archived_at = datetime(2026, 11, 30, 8, 15, 1, 250, tzinfo=UTC)
    db.session.commit()
    client_table, contact_table = Client.__table__, SupportContact.__table__
    plain = {
        "client": (select(*(client_table.c[n] for n in prompting._CLIENT_COLUMNS)),
                   client_table.c.id, {r.client_id for r in rows}),
        "contact": (select(*(contact_table.c[n] for n in prompting._CONTACT_COLUMNS)),
                    contact_table.c.id, {r.verifier_contact_id for r in rows}),
    }  # fmt: skip
    for source_type, model, ids in (
        ("commitment", Commitment, {r.source_id for r in rows}),
        ("meeting_plan", MeetingPlan, {plan.id}),
    ):
        columns, joined = source_facts_select(model)
        plain[source_type] = (select(*columns).select_from(joined), model.__table__.c.id, ids)
    instants = 0
    for what, (stmt, key, ids) in plain.items():
        want = db.session.execute(stmt.where(id_in(key, sorted(ids)))).all()
        got = prompting._read_by_ids(what, ids)
        assert [r._fields for r in got] == [tuple(r._fields) for r in want], what
        assert sorted(map(tuple, got)) == sorted(map(tuple, want)), what
        for g, w in zip(sorted(got), sorted(want, key=tuple), strict=True):
            for a, b in zip(g, w, strict=True):
                if isinstance(b, datetime):
                    assert a.tzinfo is b.tzinfo is UTC and a.fold == b.fold, what
                    instants += 1
    assert instants >= 7  # created_at of every source, planned_until, the archived contact's
    now = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    got = prompting._named(
        db.session.execute(prompting._due_bound("prompts", prompting.BATCH), {"now": now})
    )
    assert got
    want = {
        r.id: r
        for r in db.session.execute(
            select(*(_C[name] for name in prompting._DUE_COLUMNS)).where(
                _C.id.in_([r.id for r in got])
            )
        )
    }
    for row in got:
        assert tuple(row) == tuple(want[row.id])
        assert row.due_at.tzinfo is UTC and row.event_at.tzinfo is UTC


def test_utcdatetime_reads_a_value_as_replace_and_astimezone_would():
    """UTCDateTime makes naive stored values aware by datetime.combine (the sweeps read a few
    thousand a minute); the result is replace(tzinfo=UTC)'s: same instant, tzinfo and fold."""
    from zoneinfo import ZoneInfo

    from service.db import UTCDateTime

    column = UTCDateTime()
    for value in (
        datetime(2026, 11, 1, 5, 30, 1, 7),
        datetime(2026, 11, 1, 1, 30, fold=1),
        datetime(2026, 11, 1, 1, 30, tzinfo=ZoneInfo("America/New_York")),
        datetime(2026, 11, 1, 6, 30, 0, 999999, tzinfo=UTC),
    ):
        want = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        got = column.process_result_value(value, None)
        assert got == want and got.tzinfo is UTC and got.fold == want.fold
        assert (got.year, got.month, got.day, got.hour, got.minute, got.second,
                got.microsecond) == (want.year, want.month, want.day, want.hour, want.minute,
                                     want.second, want.microsecond)  # fmt: skip
    assert column.process_result_value(None, None) is None
