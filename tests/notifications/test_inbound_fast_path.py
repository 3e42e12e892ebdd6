"""The webhook's lean path: one transaction per text, and the same check-ins as the engine finds."""

from __future__ import annotations

import fcntl
import os
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from service import checkins
from service.db import db
from service.jobs import sweeps
from service.models import CheckIn, Message, SupportContact
from service.notifications import inbound as inbound_module
from service.notifications.replies import answerable_checkins
from service.phones import PhoneError, normalize_phone
from tests.engine.conftest import send_queued
from tests.factories import make_client, make_commitment, make_contact
from tests.notifications.sms_support import T0, alerts_of, inbound_params, post_signed, text_in

ASK = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # 20:00 in New York: the commitments are due


def prompt(*pairs):
    """Plan and prompt a daily 20:00 commitment for each (client, verifier contact or None)."""
    rows = [make_commitment(c, verifier_contact_id=v.id if v else None) for c, v in pairs]
    db.session.commit()
    sweeps.plan_ahead(T0)
    sweeps.send_reminders_and_prompts(ASK)
    send_queued(ASK)  # a prompt never sent closes as skipped, not missed
    return [
        db.session.scalar(
            select(CheckIn).where(CheckIn.source_id == c.id).order_by(CheckIn.event_at).limit(1)
        )
        for c in rows
    ]


def people_with(phone):
    clients = [c for c in _all(inbound_module.Client) if c.phone == phone]
    contacts = [c for c in _all(SupportContact) if c.phone == phone]
    return clients, contacts


def _all(model):
    return list(db.session.scalars(select(model).order_by(model.created_at, model.id)))


def engine_view(phone, now):
    return checkins.open_prompts_for(phone, now), checkins.late_reply_candidates(phone, now)


@pytest.fixture
def crowd(people):
    """Carol (own prompt), Dave verifying for Carol and two more sponsees, a stranger's prompt."""
    therapist = people.alice.therapist
    sams = [make_client(therapist, display_name=f"Sam{n} Q.", phone=f"+1500555011{n}")
            for n in (1, 2)]  # fmt: skip
    lee = make_client(people.bob.therapist, display_name="Lee K.", phone="+15005550151")
    rows = prompt(
        (people.carol, None),
        (people.carol, people.dave),
        *[(s, make_contact(s)) for s in sams],  # Dave's number again, as their sponsor
        (lee, None),
    )
    return people, sams, rows


def test_the_check_ins_a_number_may_answer_are_the_engines_own(crowd):
    people, sams, _ = crowd
    phones = (people.carol.phone, people.dave.phone, sams[0].phone, "+15005550151")
    seen = {}
    for hours in (0, 5, 30):  # open; closed as missed (late replies welcome); too late
        now = ASK + timedelta(hours=hours)
        sweeps.detect_misses_and_skips(now)
        for phone in phones:
            expected = engine_view(phone, now)
            assert answerable_checkins(*people_with(phone), now) == expected
            seen[hours, phone] = tuple(len(rows) for rows in expected)
    # The comparison covered every case: Dave has three open prompts, then three late ones.
    assert [seen[h, people.dave.phone] for h in (0, 5, 30)] == [(3, 0), (0, 3), (0, 0)]
    assert seen[0, people.carol.phone] == (1, 0) and seen[5, "+15005550151"] == (0, 1)


def test_an_archived_verifier_still_finds_the_prompt_it_was_sent(crowd):
    people, _, _ = crowd
    people.dave.archived_at = ASK
    db.session.commit()
    clients, contacts = people_with(people.dave.phone)
    assert all(c.archived_at is not None for c in contacts if c.id == people.dave.id)
    expected = engine_view(people.dave.phone, ASK)
    assert len(expected[0]) == 3
    assert answerable_checkins(clients, contacts, ASK) == expected


def test_nobody_at_the_number_has_nothing_to_answer(app):
    assert answerable_checkins([], [], ASK) == ([], [])


def test_a_failure_after_storing_the_text_keeps_nothing_and_the_retry_acts(
    client, people, monkeypatch
):
    params = inbound_params(people.carol.phone, "slip", sid="SMretry")

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away mid-request")

    monkeypatch.setattr(inbound_module, "_route", broken)
    assert post_signed(client, "/twilio/inbound", params).status_code == 500
    assert db.session.scalars(select(Message)).all() == []
    monkeypatch.undo()
    # Twilio's retry (or the fallback URL) is handled as a new text, not as a replay.
    response = post_signed(client, "/twilio/inbound", params)
    assert response.status_code == 200 and b"progress" in response.data
    assert len(alerts_of("lapse")) == 1
    (stored,) = db.session.scalars(select(Message).where(Message.direction == "inbound"))
    assert stored.provider_sid == "SMretry"


def statements_of(client, phone, body, sid):
    """Send a text; return its answer and the first words of each SQL statement it ran."""
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(" ".join(statement.split()[:3]).upper())

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        answer = text_in(client, phone, body, sid=sid)
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    return answer, statements


# Who has the number: its clients, its contacts and its opt-out (and for a YES/NO the
# check-ins it may answer), in one statement.
WHO_HAS = "SELECT 'CLIENT' AS"


def store_of_text_and_answer():
    """The one statement storing a text and its answer: on PostgreSQL, in autocommit, the
    answer's INSERT selects from the text's (a CTE), so a replay commits nothing."""
    return (
        "WITH STORED_TEXT AS" if db.engine.dialect.name == "postgresql" else "INSERT INTO MESSAGES"
    )


def test_a_text_costs_one_lookup_one_insert_and_no_savepoint(client, people):
    (row,) = prompt((people.carol, None))
    phone = people.carol.phone  # loaded before counting
    answer, statements = statements_of(client, phone, "what now?", "SMcount")
    assert "didn't understand" in answer
    # Who has the number (clients, contacts) and whether it is opted out, then the inbound
    # row and the answer's row in one statement; on SQLite a savepoint opened before any
    # write would commit on release.
    assert statements == [WHO_HAS, store_of_text_and_answer()]
    rows = db.session.scalars(
        select(Message).where(Message.purpose != "prompt").order_by(Message.direction)
    ).all()
    assert [(m.direction, m.purpose, m.provider_sid) for m in rows] == [
        ("inbound", "inbound", "SMcount"),
        ("outbound", "reply", None),
    ]
    assert rows[1].idempotency_key == f"reply:{rows[0].id}" and rows[1].body == answer
    assert db.session.get(CheckIn, row.id, populate_existing=True).status == "prompted"


def test_a_yes_reads_everything_before_its_first_write(client, people):
    (row,) = prompt((people.carol, None))
    phone = people.carol.phone
    answer, statements = statements_of(client, phone, "yes", "SMorder")
    assert answer is None
    assert db.session.get(CheckIn, row.id, populate_existing=True).status == "confirmed"
    # SQLite's one write lock is held from the first write to the commit: no lookup in it.
    first_write = next(i for i, s in enumerate(statements) if not s.startswith("SELECT"))
    assert statements[:first_write] == [WHO_HAS]  # the people and their check-ins
    assert statements[first_write] == "INSERT INTO MESSAGES"


def test_a_replay_stores_nothing_more_and_gives_the_same_answer(client, people):
    first = text_in(client, people.carol.phone, "what?", sid="SMtwice")
    assert "didn't understand" in first
    assert text_in(client, people.carol.phone, "what?", sid="SMtwice") == first
    rows = db.session.scalars(select(Message).order_by(Message.direction)).all()
    assert [(m.direction, m.purpose) for m in rows] == [("inbound", "inbound"),
                                                       ("outbound", "reply")]  # fmt: skip


def test_phone_parsing_is_cached_but_junk_is_still_refused_every_time():
    assert normalize_phone("(202) 555-0143", "US") == "+12025550143"
    assert normalize_phone("(202) 555-0143", "US") == "+12025550143"
    assert normalize_phone("020 7946 0018", "GB") == "+442079460018"
    for _ in range(2):
        with pytest.raises(PhoneError):
            normalize_phone("12345", "US")


def _gate_is_free(path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_on_sqlite_the_writes_queue_on_the_gate_and_release_it_whatever_happens(
    client, people, monkeypatch
):
    url = db.engine.url
    if url.get_backend_name() != "sqlite":
        pytest.skip("the write gate is for SQLite only")
    path = f"{url.database}-webhook.lock"
    held_while_storing = []
    store_rows = inbound_module._store_rows

    def watching(*args, **kwargs):
        held_while_storing.append(not _gate_is_free(path))
        return store_rows(*args, **kwargs)

    monkeypatch.setattr(inbound_module, "_store_rows", watching)
    assert "didn't understand" in text_in(client, people.carol.phone, "what?", sid="SMgate1")
    assert held_while_storing == [True] and _gate_is_free(path)

    def broken(*args, **kwargs):
        raise RuntimeError("the database went away mid-request")

    monkeypatch.setattr(inbound_module, "_route", broken)
    params = inbound_params(people.carol.phone, "slip", sid="SMgate2")
    assert post_signed(client, "/twilio/inbound", params).status_code == 500
    assert held_while_storing == [True, True] and _gate_is_free(path)
