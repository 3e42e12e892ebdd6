"""The open-prompt lookups by number agree with a plain reading of every check-in.

`prompts_to_phone_stmt` and `open_prompt_codes_for_phones` find check-ins through the clients
and contacts who have a number (index lookups) rather than by joining every open prompt; these
tests hold both to the definition: a check-in belongs to the number of its verifier contact when
it has one, else to its client's number.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from service.checkins import late_reply_candidates, open_prompt_codes_for_phones, open_prompts_for
from service.db import db
from service.jobs import sweeps
from service.models import CheckIn, Client, SupportContact
from tests.engine.conftest import send_queued
from tests.factories import make_client, make_commitment, make_contact

T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # Tuesday 12:00 New York
ASKED = datetime(2026, 12, 2, 1, 5, tzinfo=UTC)  # just after 20:00 New York
SHARED = "+15005550199"  # a client's own number that is also another client's contact


def _network(people) -> list[str]:
    """Clients, contacts and commitments whose verifiers' numbers overlap in every way."""
    therapist = people.alice.therapist
    erin = make_client(therapist, display_name="Erin K.", phone="+15005550111")
    frank = make_client(therapist, display_name="Frank L.", phone=SHARED)
    gina = make_client(therapist, display_name="Gina M.", phone="+15005550113")
    make_commitment(people.carol)  # Carol answers for herself
    make_commitment(people.carol, time="19:40", verifier_contact_id=people.dave.id)
    make_commitment(erin, verifier_contact_id=make_contact(erin).id)  # Dave's number again
    make_commitment(erin, time="19:50")  # Erin for herself
    make_commitment(frank)  # Frank for himself on SHARED
    gina_peer = make_contact(gina, role="peer", display_name="Hal P.", phone=SHARED)
    make_commitment(gina, verifier_contact_id=gina_peer.id)  # SHARED again, as a contact
    make_commitment(gina, time="19:45")
    db.session.commit()
    sweeps.plan_ahead(T0)
    assert sweeps.send_reminders_and_prompts(ASKED) >= 7
    return [people.carol.phone, people.dave.phone, erin.phone, SHARED, gina.phone, "+15005550177"]


def _by_definition(phone: str, status: str) -> list[CheckIn]:
    """Every check-in of `status` whose verifier has `phone`, read without any shortcut."""
    rows = []
    for row in db.session.scalars(select(CheckIn).where(CheckIn.status == status)):
        if row.verifier_contact_id is not None:
            number = db.session.get(SupportContact, row.verifier_contact_id).phone
        else:
            number = db.session.get(Client, row.client_id).phone
        if number == phone:
            rows.append(row)
    return rows


def test_open_prompts_of_each_number_match_the_definition(people):
    phones = _network(people)
    for phone in phones:
        expected = sorted(_by_definition(phone, "prompted"), key=lambda r: (r.prompted_at, r.id))
        assert open_prompts_for(phone, ASKED) == expected, phone
    assert len(open_prompts_for(SHARED, ASKED)) == 2  # Frank's own and Gina's via Hal
    assert len(open_prompts_for(people.dave.phone, ASKED)) == 2


def test_the_batch_codes_lookup_matches_the_per_number_lookup(people):
    phones = _network(people)
    batch = open_prompt_codes_for_phones(phones + phones[:2])  # duplicates are read once
    assert sorted(batch) == sorted(set(phones))
    for phone in phones:
        expected = [(r.id, r.prompt_code) for r in open_prompts_for(phone, ASKED)]
        assert batch[phone] == expected, phone
    assert batch["+15005550177"] == []
    assert sum(len(v) for v in batch.values()) == len(_by_definition_all())


def _by_definition_all() -> list[CheckIn]:
    return list(db.session.scalars(select(CheckIn).where(CheckIn.status == "prompted")))


def test_late_reply_candidates_follow_the_verifier_number(people):
    phones = _network(people)
    send_queued(ASKED)
    later = datetime(2026, 12, 2, 4, 0, tzinfo=UTC)  # every 2 h grace has run out
    sweeps.detect_misses_and_skips(later)
    for phone in phones:
        expected = sorted(_by_definition(phone, "missed"), key=lambda r: r.id)
        expected.sort(key=lambda r: r.closes_at, reverse=True)
        assert late_reply_candidates(phone, later) == expected, phone
    assert len(late_reply_candidates(SHARED, later)) == 2
    assert len(_by_definition_all()) == 0  # every prompt closed as missed
