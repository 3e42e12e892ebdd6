"""A week of Carol's life, driven only by `tick(now)`, across the 2026-11-01 DST change.

Carol (America/New_York, quiet 21:00–08:00) has a Thursday and a Sunday meeting, a daily
20:00 call with her sponsor, and a quota of two meetings a week. Over the week she confirms
most things, declines one meeting, forgets one call, falls short of her quota, and her
therapist pauses the calls for two days. The scheduler ticks every hour (plus a few chosen
instants); the assertions read the rows and the texts that were queued.
"""

from __future__ import annotations

import importlib.util
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from service import checkins
from service.db import db
from service.jobs.tick import tick
from service.models import Event
from service.schedule import get_zone
from tests.engine.conftest import alerts, checkins_of, outbox, send_queued
from tests.factories import make_commitment, make_meeting, make_plan

NY = get_zone("America/New_York")
HAS_DISPATCH = importlib.util.find_spec("service.notifications.dispatch") is not None


def z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def local(instant: datetime) -> str:
    return instant.astimezone(NY).strftime("%a %H:%M")


def run(now: datetime) -> dict[str, int]:
    counts = tick(now)
    if not HAS_DISPATCH:
        send_queued(now)  # stand in for the SMS engineer's dispatch until it lands
    return counts


def reply(row, answer: str, carol, now: datetime) -> None:
    checkins.record_reply(row, answer, responder=carol.phone, channel="sms", now=now)
    db.session.commit()


def test_a_week_of_reminders_prompts_replies_alerts_and_a_pause(people, client, clock):
    carol = people.carol
    riverside = people.riverside.id
    created = z("2026-10-29T15:00")  # Thursday 11:00 EDT
    thursday = make_meeting(riverside, name="Thu", day=4, time="19:00", end_time="20:00")
    sunday = make_meeting(riverside, name="Sun", day=0, time="17:00", end_time="18:00")
    plan_t = make_plan(carol, thursday, starts_on=date(2026, 10, 26), created_at=created)
    plan_s = make_plan(carol, sunday, starts_on=date(2026, 10, 26), created_at=created)
    calls = make_commitment(carol, starts_on=date(2026, 10, 26), created_at=created)
    quota = make_commitment(carol, kind="meeting_quota", title="Meetings", rrule="FREQ=WEEKLY",
                            time=None, target=2, starts_on=date(2026, 10, 26),
                            created_at=z("2026-10-25T15:00"))  # fmt: skip
    db.session.commit()

    actions = {
        # Thursday: both the meeting and the call are asked at 20:00 EDT; two open prompts
        # on one number carry codes. Carol confirms both.
        z("2026-10-30T00:10"): lambda: [
            reply(checkins_of(plan_t.id)[0], "confirm", carol, z("2026-10-30T00:10")),
            reply(checkins_of(calls.id)[0], "confirm", carol, z("2026-10-30T00:10")),
        ],
        z("2026-10-31T00:10"): lambda: reply(
            checkins_of(calls.id)[1], "confirm", carol, z("2026-10-31T00:10")
        ),  # fmt: skip
        # Saturday 20:10 EDT, the last evening before the clocks go back.
        z("2026-11-01T00:10"): lambda: reply(
            checkins_of(calls.id)[2], "confirm", carol, z("2026-11-01T00:10")
        ),  # fmt: skip
        # Sunday (now EST): she declines the meeting; the 20:00 call goes unanswered.
        z("2026-11-01T23:30"): lambda: reply(
            checkins_of(plan_s.id)[0], "decline", carol, z("2026-11-01T23:30")
        ),  # fmt: skip
        # Monday noon: the therapist pauses the calls until Wednesday.
        z("2026-11-02T17:00"): lambda: pause_calls(client, people, clock, calls.id),
    }
    # Every hour of the evenings and nights (when things happen), a few by day.
    start = z("2026-10-29T16:00")
    grid = (start + timedelta(hours=h) for h in range(0, 24 * 6 + 11))
    instants = sorted(
        {t for t in grid if t.hour >= 20 or t.hour <= 6 or t.hour in (9, 12, 13, 16)}
        | set(actions)
        | {z("2026-11-02T03:00")}  # ticked twice below: the miss alerts once
    )
    for now in instants:
        if now in actions:
            actions[now]()
        run(now)
        if now == z("2026-11-02T03:00"):
            run(now)

    # Reminders an hour before each meeting at the same local time either side of the change.
    reminders = outbox(purpose="reminder", to_number=carol.phone)
    assert [local(m.created_at) for m in reminders] == ["Thu 18:00", "Sun 16:00"]
    assert [m.created_at for m in reminders] == [z("2026-10-29T22:00"), z("2026-11-01T21:00")]

    # The call prompts: 20:00 local every evening (UTC moves by an hour), none while paused.
    call_prompts = [m for m in outbox(purpose="prompt") if m.checkin_id in
                    {r.id for r in checkins_of(calls.id)}]  # fmt: skip
    assert [m.created_at for m in call_prompts] == [
        z("2026-10-30T00:00"), z("2026-10-31T00:00"), z("2026-11-01T00:00"),
        z("2026-11-02T01:00"), z("2026-11-05T01:00"),
    ]  # fmt: skip
    assert {local(m.created_at) for m in call_prompts} == {"Thu 20:00", "Fri 20:00", "Sat 20:00",
                                                           "Sun 20:00", "Wed 20:00"}  # fmt: skip
    assert all(m.status in ("sent", "delivered") for m in call_prompts[:-1])
    thursday_codes = {checkins_of(plan_t.id)[0].prompt_code, checkins_of(calls.id)[0].prompt_code}
    assert None not in thursday_codes and len(thursday_codes) == 2

    statuses = {r.occurrence.date().isoformat(): r.status for r in checkins_of(calls.id)}
    # Tuesday's call was either cancelled by the pause or, beyond the horizon then, never made.
    assert statuses.pop("2026-11-03", "cancelled") == "cancelled"
    assert statuses == {
        "2026-10-29": "confirmed", "2026-10-30": "confirmed", "2026-10-31": "confirmed",
        "2026-11-01": "missed", "2026-11-02": "cancelled", "2026-11-04": "prompted",
        "2026-11-05": "scheduled",
    }  # fmt: skip
    assert [r.status for r in checkins_of(plan_t.id)][:2] == ["confirmed", "scheduled"]
    assert checkins_of(plan_s.id)[0].status == "declined"

    # Exactly one alert per thing that went wrong.
    assert sorted((a.kind, a.occurrence) for a in alerts()) == [
        ("declined", "2026-11-01T17:00"),
        ("missed", "2026-11-01T20:00"),
        ("quota_unmet", "2026-W44"),
    ]
    (quota_alert,) = alerts(kind="quota_unmet")
    assert quota_alert.source_id == quota.id and quota_alert.detail["count"] == 1
    assert quota_alert.created_at == z("2026-11-02T05:00")  # Monday 00:00 EST
    missed_events = db.session.scalar(
        select(func.count(Event.id)).where(Event.type == "checkin.missed")
    )
    assert missed_events == 1

    # The therapist: the decline at once (18:30), the 22:00 miss and the midnight quota
    # together at 08:00 the next morning; counts and a link, never a name.
    texts = outbox(purpose="alert", to_number=people.alice.therapist.phone)
    assert [(local(m.created_at), m.body.split(": ")[1].split(".")[0]) for m in texts] == [
        ("Sun 18:30", "1 new alert"),
        ("Mon 08:00", "2 new alerts"),
    ]
    assert all("Carol" not in m.body and "https://steadfast.example.org/" in m.body for m in texts)
    digests = outbox(purpose="digest", to_number=people.alice.therapist.phone)
    assert digests and all(
        local(m.created_at) == local(m.created_at)[:4] + "08:00" for m in digests
    )


def pause_calls(client, people, clock, commitment_id: str) -> None:
    clock.set(z("2026-11-02T17:00"))
    answer = client.patch(
        f"/api/v1/clients/{people.carol.id}/commitments/{commitment_id}",
        json={"paused_until": "2026-11-04"},
        headers={**people.alice.headers, "Content-Type": "application/merge-patch+json"},
    )
    assert answer.status_code == 200, answer.get_json()
