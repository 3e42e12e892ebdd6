"""Every branch of the reply grammar, through the signed POST /twilio/inbound webhook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from service.db import db
from service.jobs import sweeps
from service.models import CheckIn, Message, OptOut
from service.notifications.dispatch import dispatch_outbox
from service.notifications.providers import FakeProvider
from service.notifications.templates import forbidden_words
from tests.factories import make_client, make_commitment, make_contact, make_therapist
from tests.notifications.sms_support import (
    T0,
    alerts_of,
    event_types,
    inbound_params,
    message_count,
    outbound,
    post_signed,
    queue,
    reload,
    text_in,
)

ASK = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)  # 20:00 in New York: the commitments are due
STRANGER = "+15005550999"


def prompt_open(*commitments_of):
    """Plan and prompt a daily 20:00 commitment for each (client, verifier contact or None)."""
    rows = [make_commitment(client, verifier_contact_id=contact.id if contact else None)
            for client, contact in commitments_of]  # fmt: skip
    db.session.commit()
    sweeps.plan_ahead(T0)
    sweeps.send_reminders_and_prompts(ASK)
    return [
        db.session.scalar(
            select(CheckIn).where(CheckIn.source_id == c.id).order_by(CheckIn.event_at).limit(1)
        )
        for c in rows
    ]


@pytest.fixture
def at_ask(clock):
    clock.set(ASK)
    return ASK


def test_one_confirms_the_single_open_prompt_and_answers_nothing(client, people, at_ask):
    (row,) = prompt_open((people.carol, None))
    assert text_in(client, people.carol.phone, "1", sid="SMconfirm1") is None
    db.session.refresh(row)
    assert (row.status, row.channel, row.responded_by) == (
        "confirmed", "sms", f"client:{people.carol.id}",
    )  # fmt: skip
    (stored,) = db.session.scalars(select(Message).where(Message.direction == "inbound"))
    assert (stored.status, stored.purpose, stored.provider_sid, stored.body) == (
        "received", "inbound", "SMconfirm1", "1",
    )  # fmt: skip
    assert stored.client_id == people.carol.id
    assert outbound(purpose="reply") == []


@pytest.mark.parametrize("word", ["2", "N", "no", "MISSED"])
def test_no_declines_it_and_alerts_the_therapist(client, people, at_ask, word):
    (row,) = prompt_open((people.carol, None))
    assert text_in(client, people.carol.phone, word) is None
    db.session.refresh(row)
    assert row.status == "declined"
    assert [a.kind for a in alerts_of()] == ["declined"]


def test_an_answer_with_nothing_open_is_not_understood(client, people, at_ask):
    answer = text_in(client, people.carol.phone, "Done")
    assert "didn't understand" in answer
    (reply,) = outbound(purpose="reply")
    assert (reply.status, reply.template, reply.body, reply.to_number) == (
        "sent", "didnt_understand", answer, people.carol.phone,
    )  # fmt: skip


def test_a_sponsor_with_three_sponsees_answers_by_code(client, people, at_ask):
    therapist = people.alice.therapist
    others = [make_client(therapist, display_name=f"Sam{n} Q.", phone=f"+1500555011{n}")
              for n in (1, 2)]  # fmt: skip
    pairs = [(people.carol, people.dave)] + [(c, make_contact(c)) for c in others]
    rows = prompt_open(*pairs)
    codes = [r.prompt_code for r in rows]
    assert all(codes) and len(set(codes)) == 3
    answer = text_in(client, people.dave.phone, "1")
    assert "more than one open question" in answer
    assert all(code in answer for code in codes)
    assert all(reload_row(r).status == "prompted" for r in rows)
    assert text_in(client, people.dave.phone, f"1 {codes[1].lower()}") is None
    assert text_in(client, people.dave.phone, f"{codes[2]} 2") is None
    assert [reload_row(r).status for r in rows] == ["prompted", "confirmed", "declined"]
    assert reload_row(rows[1]).responded_by == f"contact:{pairs[1][1].id}"
    # A code nobody was given asks again, listing only what is still open.
    answer = text_in(client, people.dave.phone, "1 Z9")
    assert codes[0] in answer and codes[1] not in answer
    assert text_in(client, people.dave.phone, "1") is None  # only one left open now
    assert reload_row(rows[0]).status == "confirmed"


def reload_row(row):
    return db.session.get(CheckIn, row.id, populate_existing=True)


def test_stop_opts_out_everywhere_cancels_queued_texts_and_says_nothing(client, people, at_ask):
    carol = people.carol
    harbor_client = make_client(people.bob.therapist, display_name="Pat L.", phone="+15005550141")
    make_contact(harbor_client, phone=people.dave.phone, display_name="Dave R.")
    queued = queue(people.dave.phone, practice_id=carol.practice_id, purpose="prompt",
                   client_id=carol.id, contact_id=people.dave.id, now=ASK)  # fmt: skip
    db.session.commit()
    assert text_in(client, people.dave.phone, "STOP") is None
    assert db.session.get(OptOut, people.dave.phone).reason == "opt_out"
    assert (reload(queued).status, reload(queued).error_message) == ("skipped", "opted out")
    # Both practices' therapists hear about it.
    assert sorted(a.client_id for a in alerts_of("opted_out")) == sorted([carol.id,
                                                                         harbor_client.id])  # fmt: skip
    assert event_types().count("sms.opted_out") == 2
    assert outbound(purpose="reply") == []
    # Nothing more goes out to that number, whatever is queued later.
    queue(people.dave.phone, now=ASK)
    db.session.commit()
    sms = FakeProvider()
    dispatch_outbox(now=ASK, provider=sms, settings=client.application.extensions["settings"])
    assert sms.attempts == []


@pytest.mark.parametrize("text", ["please stop texting me", "UNSUBSCRIBE", "stop all", "Quit"])
def test_free_text_and_every_carrier_keyword_opt_out(client, people, text):
    assert text_in(client, people.carol.phone, text) is None
    assert db.session.get(OptOut, people.carol.phone) is not None


def test_start_opts_back_in_and_yes_means_start_when_opted_out(client, people):
    for word in ("START", "YES"):
        db.session.add(OptOut(phone=people.carol.phone, reason="opt_out", created_at=T0))
        db.session.commit()
        assert text_in(client, people.carol.phone, word) is None
        assert db.session.get(OptOut, people.carol.phone) is None
    assert event_types().count("sms.opted_in") == 2


def test_only_the_exact_word_yes_opts_back_in(client, people):
    db.session.add(OptOut(phone=people.carol.phone, reason="opt_out", created_at=T0))
    db.session.commit()
    assert text_in(client, people.carol.phone, "yeah") is None
    assert db.session.get(OptOut, people.carol.phone) is not None
    assert text_in(client, people.carol.phone, "Yes!") is None
    assert db.session.get(OptOut, people.carol.phone) is None


def test_start_never_lifts_an_invalid_number_mark(client, people):
    db.session.add(OptOut(phone=people.carol.phone, reason="invalid_number", created_at=T0))
    db.session.commit()
    assert text_in(client, people.carol.phone, "START") is None
    assert db.session.get(OptOut, people.carol.phone).reason == "invalid_number"


def test_an_opted_out_number_gets_no_answer_even_to_help(client, people):
    db.session.add(OptOut(phone=people.carol.phone, reason="opt_out", created_at=T0))
    db.session.commit()
    assert text_in(client, people.carol.phone, "HELP") is None
    assert text_in(client, people.carol.phone, "what?") is None


def test_help_tells_a_client_how_to_reach_their_care_team(client, people):
    people.riverside.phone = "555-0100"
    db.session.commit()
    answer = text_in(client, people.carol.phone, "HELP")
    assert "555-0100" in answer and "STOP" in answer
    assert forbidden_words(answer) == []


def test_help_to_a_contact_or_a_stranger_reveals_nothing(client, people):
    for phone, expected in ((people.dave.phone, "support contact"), (STRANGER, "care program")):
        answer = text_in(client, phone, "info")
        assert expected in answer and "STOP" in answer
        assert forbidden_words(answer) == []
        assert "Carol" not in answer and "C." not in answer


def test_urge_gives_the_plan_and_the_sponsor_and_asks_the_sponsor_to_call(client, people):
    answer = text_in(client, people.carol.phone, "URGE")
    assert "walk around the block" in answer
    assert "Dave" in answer and people.dave.phone in answer
    (request,) = outbound(purpose="urge_request")
    assert (request.to_number, request.contact_id, request.status) == (
        people.dave.phone, people.dave.id, "queued",
    )  # fmt: skip
    assert "C." in request.body and "Carol" not in request.body
    assert request.expires_at == T0 + timedelta(minutes=30)


def test_urge_without_the_urge_scope_never_texts_the_sponsor(client, people):
    from service.consent import latest_disclosure

    latest_disclosure(people.dave).scope = ["checkins"]
    db.session.commit()
    assert "Dave" in text_in(client, people.carol.phone, "craving")
    assert outbound(purpose="urge_request") == []


def test_a_slip_gets_a_kind_answer_and_a_lapse_alert(client, people):
    answer = text_in(client, people.carol.phone, "slip")
    assert "progress" in answer and forbidden_words(answer) == []
    (alert,) = alerts_of("lapse")
    assert (alert.client_id, alert.therapist_id) == (people.carol.id, people.alice.id)


@pytest.mark.parametrize("text", ["SOS", "988", "I want to die", "crisis"])
def test_a_crisis_alerts_at_once_and_answers_with_the_crisis_line(client, people, text):
    answer = text_in(client, people.carol.phone, text)
    assert "988" in answer and "care team" in answer
    (alert,) = alerts_of("crisis")
    assert alert.client_id == people.carol.id
    (page,) = outbound(purpose="alert", template="crisis_therapist")
    assert page.to_number == people.alice.therapist.phone and page.status == "queued"


def test_the_crisis_line_follows_the_clients_country(client, people):
    uk = make_client(people.alice.therapist, display_name="Olly P.", phone="+447700900123",
                     timezone="Europe/London")  # fmt: skip
    db.session.commit()
    assert "116 123" in text_in(client, uk.phone, "sos")
    assert "988" in text_in(client, STRANGER, "SOS")  # strangers in crisis are answered too


def test_anything_else_from_a_known_number_is_kept_and_not_understood(client, people):
    answer = text_in(client, people.carol.phone, "running late, see you Tuesday")
    assert "1 = yes, 2 = no" in answer and "STOP" in answer
    (stored,) = db.session.scalars(select(Message).where(Message.direction == "inbound"))
    assert stored.body == "running late, see you Tuesday"
    assert stored.client_id == people.carol.id


def test_a_stranger_is_answered_once_a_day_then_silence(client, people, clock):
    assert "don't recognize" in text_in(client, STRANGER, "hello?")
    assert text_in(client, STRANGER, "hello??") is None
    assert text_in(client, STRANGER, "1") is None
    clock.set(T0 + timedelta(hours=25))
    assert "don't recognize" in text_in(client, STRANGER, "anyone?")
    assert len(outbound(purpose="reply")) == 2


def test_a_replayed_message_sid_is_answered_again_without_acting_twice(client, people):
    first = text_in(client, people.carol.phone, "slip", sid="SMreplay")
    count = message_count()
    assert text_in(client, people.carol.phone, "slip", sid="SMreplay") == first
    assert message_count() == count
    assert len(alerts_of("lapse")) == 1


def test_answers_are_xml_escaped(client, people):
    people.carol.coping_plan = "Breathe <slowly> & count to 10"
    db.session.commit()
    answer = text_in(client, people.carol.phone, "URGE")
    assert "Breathe <slowly> & count to 10" in answer


def test_a_reply_does_not_confirm_another_practices_prompt_by_mistake(client, people, at_ask):
    bob_client = make_client(people.bob.therapist, display_name="Lee K.", phone="+15005550151")
    (row,) = prompt_open((bob_client, None))
    assert text_in(client, people.carol.phone, "1") is not None  # Carol has nothing open
    assert reload_row(row).status == "prompted"


def test_an_inbound_text_is_stored_even_without_a_message_sid(client, people):
    params = inbound_params(people.carol.phone, "HELP")
    del params["MessageSid"], params["SmsSid"]
    response = post_signed(client, "/twilio/inbound", params)
    assert response.status_code == 200
    assert db.session.scalar(select(Message).where(Message.direction == "inbound")) is not None


def test_a_therapist_elsewhere_is_just_a_stranger(client, people):
    other = make_therapist(email="x@y.example", name="X Y", practice="Elsewhere",
                           phone="+15005550888")  # fmt: skip
    db.session.commit()
    assert "don't recognize" in text_in(client, other.therapist.phone, "1")
