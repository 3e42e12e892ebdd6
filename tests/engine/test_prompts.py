"""Prompts and reminders: due times, quiet hours, staleness, consent, short codes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from service.checkins import open_prompts_for
from service.db import db
from service.jobs import sweeps
from service.models import OptOut
from tests.engine.conftest import alerts, checkins_of, outbox, send_queued
from tests.factories import make_client, make_commitment, make_contact, make_meeting, make_plan

T0 = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # Tuesday 12:00 New York


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_a_prompt_due_in_quiet_hours_waits_for_morning_and_closes_later(people):
    commitment = make_commitment(people.carol, time="22:00")
    db.session.commit()
    sweeps.plan_ahead(T0)
    row = checkins_of(commitment.id)[0]
    assert row.event_at == utc("2026-12-02T03:00")  # 22:00 local
    assert row.due_at == utc("2026-12-02T13:00")  # deferred to 08:00 local
    assert sweeps.send_reminders_and_prompts(utc("2026-12-02T03:05")) == 0
    assert outbox(purpose="prompt") == []
    assert sweeps.send_reminders_and_prompts(utc("2026-12-02T13:01")) == 1
    db.session.refresh(row)
    assert row.status == "prompted"
    assert row.prompted_at == utc("2026-12-02T13:01")
    assert row.closes_at == utc("2026-12-02T15:01")  # grace runs from the actual send
    (prompt,) = outbox(purpose="prompt")
    assert prompt.idempotency_key == f"prompt:{row.id}:{people.carol.id}"
    assert prompt.expires_at == row.closes_at
    assert prompt.to_number == people.carol.phone


def test_close_time_follows_a_prompt_that_went_out_late(people):
    commitment = make_commitment(people.carol, grace_minutes=30)
    db.session.commit()
    sweeps.plan_ahead(T0)
    sweeps.send_reminders_and_prompts(utc("2026-12-02T01:00"))
    send_queued(utc("2026-12-02T01:20"))  # the provider was slow: sent 20 minutes later
    assert sweeps.detect_misses_and_skips(utc("2026-12-02T01:31")) == 0
    row = checkins_of(commitment.id)[0]
    assert row.status == "prompted" and row.closes_at == utc("2026-12-02T01:50")
    assert sweeps.detect_misses_and_skips(utc("2026-12-02T01:51")) == 1
    db.session.refresh(row)
    assert row.status == "missed"


def test_reminder_moves_before_quiet_hours_or_is_dropped(people):
    early = make_meeting(people.riverside.id, name="Early", day=3, time="08:30", end_time="09:30")
    late = make_meeting(people.riverside.id, name="Late", day=3, time="10:00", end_time="11:00")
    near = make_plan(people.carol, early, remind_minutes_before=60)
    far = make_plan(people.carol, late, remind_minutes_before=180)
    db.session.commit()
    sweeps.plan_ahead(T0)
    # 07:30 is quiet: pulled back to 20:59 the evening before, 11.5 h ahead of the meeting.
    assert checkins_of(near.id)[0].reminder_at == utc("2026-12-02T01:59")
    # 07:00 is quiet and 20:59 would be 13 h ahead: no reminder at all.
    assert checkins_of(far.id)[0].reminder_at is None
    assert sweeps.send_reminders_and_prompts(utc("2026-12-02T01:59:30")) == 1
    (reminder,) = outbox(purpose="reminder")
    assert reminder.idempotency_key == f"reminder:{checkins_of(near.id)[0].id}"
    assert reminder.expires_at == utc("2026-12-02T02:29")
    assert "tomorrow" in reminder.body and "8:30" in reminder.body


def test_a_six_hour_outage_sends_nothing_late_but_closes_what_was_asked(people):
    meeting = make_meeting(people.riverside.id, day=2, time="17:00", end_time="18:00")
    plan = make_plan(people.carol, meeting, confirm_window_hours=1, remind_minutes_before=0)
    commitment = make_commitment(people.carol)
    db.session.commit()
    sweeps.plan_ahead(T0)
    assert sweeps.send_reminders_and_prompts(utc("2026-12-01T23:00")) == 1  # 18:00 local
    send_queued(utc("2026-12-01T23:00"))
    # The scheduler is down from 18:30 to 00:30 local; the 20:00 prompt is never sent late.
    back = utc("2026-12-02T05:30")
    sweeps.plan_ahead(back)
    assert sweeps.send_reminders_and_prompts(back) == 0
    assert sweeps.detect_misses_and_skips(back) == 2
    meeting_row = checkins_of(plan.id)[0]
    call_row = checkins_of(commitment.id)[0]
    assert meeting_row.status == "missed"
    assert (call_row.status, call_row.skip_reason) == ("skipped", "stale")
    assert [m.checkin_id for m in outbox(purpose="prompt")] == [meeting_row.id]
    assert [a.kind for a in alerts()] == ["missed"]  # the skip raised nothing


def test_no_prompt_without_consent_and_the_check_in_ends_skipped(people):
    carol = people.carol
    opted_out = make_commitment(carol, title="Opted out")
    by_dave = make_commitment(carol, title="Call Dave", verifier_contact_id=people.dave.id)
    db.session.add(OptOut(phone=carol.phone, reason="opt_out", created_at=T0))
    db.session.commit()
    sweeps.plan_ahead(T0)
    assert sweeps.send_reminders_and_prompts(utc("2026-12-02T01:00")) == 1  # only Dave
    assert checkins_of(opted_out.id)[0].skip_reason == "opted_out"
    assert checkins_of(by_dave.id)[0].status == "prompted"
    # Dave's prompt never left the outbox either (no dispatch ran): nobody was asked.
    assert sweeps.detect_misses_and_skips(utc("2026-12-02T03:01")) == 2
    row = checkins_of(opted_out.id)[0]
    assert (row.status, row.skip_reason) == ("skipped", "opted_out")
    row = checkins_of(by_dave.id)[0]
    assert (row.status, row.skip_reason) == ("skipped", "not_sent")
    assert alerts() == []


def test_a_contact_without_checkins_disclosure_is_not_asked(people):
    carol = people.carol
    quiet_friend = make_contact(carol, display_name="Eve", phone="+15005550103",
                                disclosure_scope=["urge"])  # fmt: skip
    commitment = make_commitment(carol, verifier_contact_id=quiet_friend.id)
    db.session.commit()
    sweeps.plan_ahead(T0)
    assert sweeps.send_reminders_and_prompts(utc("2026-12-02T01:00")) == 0
    assert checkins_of(commitment.id)[0].skip_reason == "no_disclosure_consent"


def test_a_sponsor_with_three_sponsees_gets_a_code_on_each_prompt(people):
    sponsees = [people.carol]
    for n, phone in ((2, "+15005550111"), (3, "+15005550112")):
        sponsees.append(
            make_client(people.alice.therapist, display_name=f"Client{n} X.", phone=phone)
        )
    rows = []
    for client in sponsees:
        dave = people.dave if client is people.carol else make_contact(client)
        rows.append(make_commitment(client, verifier_contact_id=dave.id))
    db.session.commit()
    sweeps.plan_ahead(T0)
    assert sweeps.send_reminders_and_prompts(utc("2026-12-02T01:00")) == 3
    prompts = outbox(purpose="prompt", to_number=people.dave.phone)
    codes = [checkins_of(c.id)[0].prompt_code for c in rows]
    assert len(prompts) == 3 and len(set(codes)) == 3 and all(codes)
    assert all(
        f"(code {code})" in m.body
        for code, m in zip(
            sorted(codes), sorted(prompts, key=lambda m: m.body.split("code ")[1]), strict=True
        )
    )
    assert all("Carol" not in m.body for m in prompts)
    assert {c.prompt_code for c in open_prompts_for(people.dave.phone, T0)} == set(codes)


def test_an_open_prompt_gets_a_code_when_a_second_one_opens(people):
    carol = people.carol
    first = make_commitment(carol, verifier_contact_id=people.dave.id, time="19:00")
    second = make_commitment(carol, title="Other", verifier_contact_id=people.dave.id,
                             starts_on=date(2026, 12, 1))  # fmt: skip
    db.session.commit()
    sweeps.plan_ahead(T0)
    sweeps.send_reminders_and_prompts(utc("2026-12-02T00:00"))
    assert checkins_of(first.id)[0].prompt_code is None
    sweeps.send_reminders_and_prompts(utc("2026-12-02T01:00"))
    a, b = checkins_of(first.id)[0].prompt_code, checkins_of(second.id)[0].prompt_code
    assert a and b and a != b
    later = outbox(purpose="prompt")[-1]
    assert f"(code {b})" in later.body
    assert timedelta(0) < later.created_at - outbox(purpose="prompt")[0].created_at
