"""The webhook's raw fast paths give what SQLAlchemy's own execution and the twilio library give.

The webhook runs its lookups and its insert as SQL text on the session's DBAPI cursor
(RawStatement), makes the CheckIn of the chosen check-in from its row instead of loading it,
checks the usual signature first and writes its TwiML by hand. Each test here fails if one
of those diverges from the reference it replaces.
"""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlparse

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select, text
from twilio.request_validator import RequestValidator, add_port, remove_port

from service.api import twilio_hooks
from service.checkins import LATE_REPLY_WINDOW
from service.db import db
from service.jobs import sweeps
from service.models import CheckIn, Message
from service.notifications import inbound as inbound_module
from service.notifications import replies
from tests.factories import make_client, make_contact
from tests.notifications.sms_support import TOKEN, text_in
from tests.notifications.test_inbound_fast_path import ASK, people_with, prompt


def _core_rows(raw, params):
    """The statement's rows as SQLAlchemy's Core execution returns them."""
    connection = db.session.connection()
    return [
        tuple(row) for row in connection.execute(raw.statement(connection.dialect.name), params)
    ]


def _raw_rows(raw, params):
    return raw.rows(db.session.connection(), params)


@pytest.fixture
def crowd(people):
    """Carol (own prompt), Dave verifying for Carol and two more sponsees, Eve opted out."""
    therapist = people.alice.therapist
    sams = [make_client(therapist, display_name=f"Sam{n} Q.", phone=f"+1500555011{n}")
            for n in (1, 2)]  # fmt: skip
    rows = prompt(
        (people.carol, None),
        (people.carol, people.dave),
        *[(s, make_contact(s)) for s in sams],  # Dave's number again, as their sponsor
    )
    return people, sams, rows


def test_the_raw_path_is_the_one_ordinary_requests_take(app):
    # Nothing listens to the test engine's executions unless a test asks to: the raw path
    # is what the webhook tests exercise.
    assert not replies._listened(db.session.connection())


def test_who_has_a_number_reads_the_same_rows_raw_and_through_sqlalchemy(crowd):
    people, sams, _ = crowd
    inbound_module.opt_out_number(sams[1].phone, reason="opt_out", keyword="STOP", now=ASK)
    people.dave.archived_at = ASK
    db.session.commit()
    for phone in (people.carol.phone, people.dave.phone, sams[1].phone, "+15005550999"):
        params = {"phone": phone}
        assert _raw_rows(inbound_module._WHO_HAS, params) == _core_rows(
            inbound_module._WHO_HAS, params
        )
    kinds = [row[0] for row in _raw_rows(inbound_module._WHO_HAS, {"phone": sams[1].phone})]
    assert kinds == ["client", "opted_out"]


def test_people_and_check_ins_in_one_statement_are_the_two_lookups_rows(crowd):
    people, sams, _ = crowd
    inbound_module.opt_out_number(sams[1].phone, reason="opt_out", keyword="STOP", now=ASK)
    db.session.commit()
    connection = db.session.connection()
    width = inbound_module._WHO_HAS_WIDTH
    for hours in (0, 5):
        now = ASK + timedelta(hours=hours)
        sweeps.detect_misses_and_skips(now)
        db.session.commit()
        for phone in (people.carol.phone, people.dave.phone, sams[1].phone, "+15005550999"):
            since = now - LATE_REPLY_WINDOW
            clients, contacts, opted_out, rows = inbound_module._who_has(phone, since=since)
            people_rows = _raw_rows(inbound_module._WHO_HAS, {"phone": phone})
            assert [tuple(p) for p in clients + contacts] == [
                r for r in people_rows if r[0] != "opted_out"
            ]
            assert opted_out == any(r[0] == "opted_out" for r in people_rows)
            checkins = {"phone": phone, "since": since}
            assert sorted(replies._OPEN_OR_LATE.process(connection, r) for r in rows) == sorted(
                _core_rows(replies._OPEN_OR_LATE, checkins)
            )
            combined = _core_rows(inbound_module._WHO_HAS_AND_CHECKINS, checkins)
            assert sorted(r[width:] for r in combined if r[0] == "checkin") == sorted(
                _core_rows(replies._OPEN_OR_LATE, checkins)
            )
            # Without `since`, the people only.
            assert inbound_module._who_has(phone)[:3] == (clients, contacts, opted_out)
            assert inbound_module._who_has(phone)[3] == []


def test_on_postgresql_a_text_that_only_gets_an_answer_is_committed_by_its_insert(app, people):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("SQLite stores in the session's transaction, committed by the webhook")
    result = inbound_module.handle_inbound(
        from_number=people.carol.phone, to_number="+15005550006", body="what?", now=ASK,
        message_sid="SMauto",
    )  # fmt: skip
    assert "didn't understand" in result.answer_text
    db.session.rollback()  # nothing of it was in the session's transaction
    with db.engine.connect() as connection:  # another connection sees both rows
        stored = connection.execute(select(Message.direction).where(
            (Message.provider_sid == "SMauto") | (Message.idempotency_key.like("reply:%")))
        ).scalars().all()  # fmt: skip
    assert sorted(stored) == ["inbound", "outbound"]
    replay = inbound_module.handle_inbound(
        from_number=people.carol.phone, to_number="+15005550006", body="what?", now=ASK,
        message_sid="SMauto",
    )  # fmt: skip
    assert replay.replayed and replay.answer_text == result.answer_text
    assert db.session.scalar(select(func.count()).select_from(Message)) == 2


def test_the_check_in_lookup_reads_the_same_rows_raw_and_through_sqlalchemy(crowd):
    people, sams, _ = crowd
    seen = 0
    for hours in (0, 5, 30):  # open; closed as missed (late replies welcome); too late
        now = ASK + timedelta(hours=hours)
        sweeps.detect_misses_and_skips(now)
        db.session.commit()
        for phone in (people.carol.phone, people.dave.phone, sams[0].phone):
            params = {"phone": phone, "since": now - LATE_REPLY_WINDOW}
            raw = sorted(_raw_rows(replies._OPEN_OR_LATE, params))
            assert raw == sorted(_core_rows(replies._OPEN_OR_LATE, params))
            seen += len(raw)
            # Every value as Core returns it: aware instants, the naive local occurrence.
            for row in raw:
                values = dict(zip(replies._CHECKIN_KEYS, row, strict=True))
                assert values["due_at"].tzinfo is not None
                assert values["occurrence"].tzinfo is None
    assert seen


def test_a_check_in_made_from_its_row_is_the_one_a_query_loads(client, crowd):
    people, _, rows = crowd
    ids = {row.id for row in rows}
    dave, carol_id = people.dave.phone, people.carol.id
    db.session.expunge_all()  # nothing in the identity map: every CheckIn is made from a row
    open_prompts, late = replies.answerable_checkins(*people_with(dave), ASK)
    made = {c.id: c for c in open_prompts + late}
    assert len(made) == 3 and set(made) <= ids
    for checkin in made.values():
        state = checkin._sa_instance_state
        assert state.persistent and not state.modified and not state.expired_attributes
        assert db.session.get(CheckIn, checkin.id) is checkin  # in the identity map
    # The same values a query loads, read in a separate session.
    with db.engine.connect() as connection:
        for checkin_id, checkin in made.items():
            loaded = connection.execute(select(CheckIn.__table__).where(
                CheckIn.id == checkin_id)).one()._mapping  # fmt: skip
            for key in replies._CHECKIN_KEYS:
                assert getattr(checkin, key) == loaded[key], key
    # A made check-in is answered, flushed and committed like a loaded one.
    (one,) = [c for c in made.values() if c.client_id == carol_id]
    assert text_in(client, dave, f"yes {one.prompt_code}") is None
    db.session.expire_all()
    assert db.session.get(CheckIn, one.id).status == "confirmed"


def test_a_check_in_already_in_the_session_is_returned_as_it_is(crowd):
    people, _, rows = crowd
    carol_own = rows[0]
    carol_own.note = "kept"  # a pending change, as an ORM load would keep it
    db.session.expire(carol_own, ["prompt_code"])  # an expired column is filled from the row
    open_prompts, _ = replies.answerable_checkins(*people_with(people.carol.phone), ASK)
    (found,) = [c for c in open_prompts if c.id == carol_own.id]
    assert found is carol_own and found.note == "kept"
    assert "prompt_code" not in found._sa_instance_state.unloaded
    assert (
        db.session.execute(select(CheckIn.prompt_code).where(CheckIn.id == carol_own.id)).scalar()
        == found.prompt_code
    )


def test_the_stored_rows_are_the_same_raw_and_through_sqlalchemy(client, people):
    """One text stored raw, one with a listener on the engine (the SQLAlchemy path)."""
    text_in(client, people.carol.phone, "what now?", sid="SMraw")
    statements = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        text_in(client, people.carol.phone, "what now?", sid="SMcore")
    finally:
        event.remove(db.engine, "before_cursor_execute", record)
    assert any(s.startswith(("INSERT INTO messages", "WITH stored_text")) for s in statements)
    db.session.expire_all()
    by_sid = {}
    for sid in ("SMraw", "SMcore"):
        inbound = db.session.scalar(select(Message).where(Message.provider_sid == sid))
        reply = db.session.scalar(
            select(Message).where(Message.idempotency_key == f"reply:{inbound.id}")
        )
        by_sid[sid] = [_columns(inbound), _columns(reply)]
    assert by_sid["SMraw"] == by_sid["SMcore"]
    inbound, reply = by_sid["SMraw"]
    assert inbound["created_at"].tzinfo is not None and reply["sent_at"] == reply["created_at"]


def _columns(message):
    skip = {"id", "provider_sid", "idempotency_key"}
    return {c.key: getattr(message, c.key) for c in Message.__table__.c if c.key not in skip}


def test_a_text_without_a_sid_is_stored_raw_too(client, people):
    from tests.notifications.sms_support import answer_of, inbound_params, post_signed

    params = inbound_params(people.carol.phone, "what?")
    del params["MessageSid"], params["SmsSid"]
    for _ in range(2):  # nothing to deduplicate on: both are stored
        assert "didn't understand" in answer_of(post_signed(client, "/twilio/inbound", params))
    stored = db.session.scalars(select(Message).where(Message.direction == "inbound")).all()
    assert [m.provider_sid for m in stored] == [None, None]


def test_a_raw_statement_refuses_sql_that_is_not_final(app):
    expanding = replies.RawStatement(
        lambda _d: select(CheckIn.id).where(CheckIn.id.in_(["a", "b"]))
    )
    with pytest.raises(ValueError, match="final"):
        expanding.rows(db.session.connection(), {})


def test_a_driver_error_on_the_raw_path_is_sqlalchemys_error(app):
    from sqlalchemy.exc import DBAPIError

    broken = replies.RawStatement(lambda _d: select(text("no_such_column")).select_from(
        CheckIn.__table__))  # fmt: skip
    with pytest.raises(DBAPIError):
        broken.rows(db.session.connection(), {})
    db.session.rollback()


def test_on_sqlite_the_check_in_lookup_seeks_the_client_status_index(app):
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's query plan")
    plan = _sqlite_plan(replies._OPEN_OR_LATE._form(db.engine.dialect)[1])
    assert "ix_checkins_client_status_updated (client_id=? AND status=?)" in plan
    assert "SCAN checkins" not in plan


def _sqlite_plan(sql):
    raw = db.session.connection().connection.driver_connection
    args = ("+15005550100", "+15005550100", "2026-12-01 00:00:00.000000")
    return " | ".join(row[3] for row in raw.execute(f"EXPLAIN QUERY PLAN {sql}", args))


# --- The signature: the usual one first, then the full check.

URL = "https://steadfast.example.org/twilio/inbound"


def _cases():
    params = {"From": "+15005550100", "Body": "yes", "MessageSid": "SM1"}
    validator = RequestValidator(TOKEN)
    parsed = urlparse(URL)
    signed = {
        "without port": validator.compute_signature(remove_port(parsed), params),
        "with port": validator.compute_signature(add_port(parsed), params),
        "other token": RequestValidator("another-token").compute_signature(URL, params),
        "other url": validator.compute_signature(URL + "x", params),
        "garbage": "not-a-signature",
    }
    tampered = {**params, "Body": "no"}
    extra = {**params, "Extra": "1"}
    for name, signature in signed.items():
        for form in (params, tampered, extra):
            yield name, form, signature


@pytest.mark.parametrize(("url"), [URL, "https://steadfast.example.org:443/twilio/inbound",
                                   "https://Steadfast.Example.org/twilio/inbound?a=1"])  # fmt: skip
def test_the_signature_check_accepts_exactly_what_the_library_accepts(url):
    validator = RequestValidator(TOKEN)
    for name, form, signature in _cases():
        expected = validator.validate(url, form, signature)
        assert twilio_hooks._valid(TOKEN, url, form, signature) == expected, (name, form)
    params = {"From": "+15005550100"}
    good = validator.compute_signature(remove_port(urlparse(url)), params)
    assert twilio_hooks._valid(TOKEN, url, params, good)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    form=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=12), max_size=4),
    port=st.sampled_from(["", ":443", ":8443"]),
    signed_with_port=st.booleans(),
)
def test_the_signature_check_agrees_with_the_library_on_any_form(form, port, signed_with_port):
    url = f"https://steadfast.example.org{port}/twilio/inbound"
    validator = RequestValidator(TOKEN)
    parsed = urlparse(url)
    signature = validator.compute_signature(
        add_port(parsed) if signed_with_port else remove_port(parsed), form
    )
    for candidate in (signature, signature[:-2] + "AA"):
        assert twilio_hooks._valid(TOKEN, url, form, candidate) == validator.validate(
            url, form, candidate
        )


# --- The TwiML answer, written by hand.

_NO_SURROGATES = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200)


@settings(max_examples=300)
@given(answer=st.one_of(st.none(), _NO_SURROGATES))
@example(answer="a & <b> \"q\" 'r' é\r\n]]>")
@example(answer="")
def test_the_twiml_answer_is_what_the_library_renders(answer):
    assert twilio_hooks.twiml_text(answer) == twilio_hooks.twiml_by_library(answer)
