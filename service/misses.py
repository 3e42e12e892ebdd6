"""Closing check-ins: prompted ones whose window ended become missed (or skipped), with escalation."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from service import alerts, consent
from service.db import db, id_in
from service.escalation import close_outcome, consecutive_misses, occurrence_label, should_alert
from service.events import append_events
from service.models import (
    CheckIn,
    Client,
    Commitment,
    DisclosureConsent,
    MeetingPlan,
    Message,
    SmsConsent,
    SupportContact,
)
from service.notifications.templates import render
from service.outbox import enqueue_messages
from service.planning import checkin_event_values, quiet_hours_of
from service.quiet_hours import defer_question
from service.schedule import get_zone

logger = logging.getLogger(__name__)

Source = MeetingPlan | Commitment
BATCH = 500
# How much of a source's history is read to count a run of misses (thresholds are <= 50).
_HISTORY = 200
# A sponsor's "missed a check-in" notice is worth sending for this long, then dropped.
_NOTICE_LIFETIME = timedelta(hours=12)


def closing_stmt(now: datetime) -> Select[tuple[CheckIn]]:
    """Select the prompted check-ins whose window has closed, locking them (SKIP LOCKED)."""
    return _claim(CheckIn.status == "prompted", CheckIn.closes_at <= now)


def unasked_stmt(now: datetime) -> Select[tuple[CheckIn]]:
    """Select the never-asked check-ins whose window has passed, locking them."""
    # due_at <= closes_at always, so the due_at bound lets the partial index do the work.
    return _claim(CheckIn.status == "scheduled", CheckIn.due_at <= now, CheckIn.closes_at <= now)


def _claim(*criteria: Any) -> Select[tuple[CheckIn]]:
    return (
        select(CheckIn)
        .where(*criteria)
        .order_by(CheckIn.closes_at)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    )


def _move_all(rows: list[CheckIn], from_status: str, values: dict[str, Any]) -> list[CheckIn]:
    """Move many check-ins that are still `from_status` in one UPDATE; return those that won.

    The rows' loaded attributes are brought up to date without another round trip (they
    are the only columns this statement changes).
    """
    if not rows:
        return []
    won = set(
        db.session.scalars(
            update(CheckIn)
            .where(CheckIn.id.in_([row.id for row in rows]), CheckIn.status == from_status)
            .values(**values)
            .returning(CheckIn.id)
            .execution_options(synchronize_session=False)
        ).all()
    )
    moved = [row for row in rows if row.id in won]
    for row in moved:
        for key, value in values.items():
            set_committed_value(row, key, value)
    return moved


def _window(source: MeetingPlan | Commitment | None) -> timedelta:
    if isinstance(source, MeetingPlan):
        return timedelta(hours=source.confirm_window_hours)
    if isinstance(source, Commitment):
        return timedelta(minutes=source.grace_minutes)
    return timedelta(0)


def _sources(rows: list[CheckIn]) -> dict[tuple[str, str], Source]:
    """Load the batch's meeting plans and commitments, two queries at most."""
    found: dict[tuple[str, str], Source] = {}
    for source_type, model in (("meeting_plan", MeetingPlan), ("commitment", Commitment)):
        ids = {row.source_id for row in rows if row.source_type == source_type}
        if ids:
            for source in db.session.scalars(select(model).where(model.id.in_(ids))):
                found[(source_type, source.id)] = source
    return found


def prompts_stmt(checkin_ids: list[str]) -> Select[tuple[str, str, datetime | None]]:
    """Select the prompt texts of these check-ins (checkin_id, status, sent_at), oldest first."""
    return (
        select(Message.checkin_id, Message.status, Message.sent_at)
        .where(id_in(Message.checkin_id, checkin_ids), Message.purpose == "prompt")
        .order_by(Message.created_at, Message.id)
    )


def _latest_prompts(rows: list[CheckIn]) -> dict[str, tuple[str, datetime | None]]:
    """Each check-in's newest prompt text (status, sent_at), in one query."""
    latest: dict[str, tuple[str, datetime | None]] = {}
    if not rows:
        return latest
    for checkin_id, status, sent_at in db.session.execute(prompts_stmt([row.id for row in rows])):
        latest[checkin_id] = (status, sent_at)  # ordered oldest first: the newest stays
    return latest


def close_prompted(now: datetime) -> int:
    """Close prompted check-ins whose window ended: missed, or skipped if never delivered.

    A batch costs a fixed number of statements (claim, sources, prompts, one UPDATE per
    outcome, one INSERT of events); only a miss adds its escalation's history query.
    """
    rows = db.session.scalars(closing_stmt(now)).all()
    sources = _sources(rows)
    prompts = _latest_prompts(rows)
    outcomes: dict[str, list[CheckIn]] = {}
    for row in rows:
        status, sent_at = prompts.get(row.id, (None, None))
        outcome, new_close = close_outcome(
            message_status=status,
            sent_at=sent_at,
            window=_window(sources.get((row.source_type, row.source_id))),
            closes_at=row.closes_at,
            now=now,
        )
        if outcome == "extend":
            row.closes_at = new_close
        else:
            outcomes.setdefault(outcome, []).append(row)
    db.session.flush()  # the extensions, before the moves below
    missed = _move_all(
        outcomes.pop("missed", []), "prompted", {"status": "missed", "updated_at": now}
    )
    events = [checkin_event_values("checkin.missed", row, now, {}) for row in missed]
    closed = len(missed)
    for reason, batch in outcomes.items():
        values = {"status": "skipped", "skip_reason": reason, "updated_at": now}
        skipped = _move_all(batch, "prompted", values)
        events += [
            checkin_event_values("checkin.skipped", row, now, {"reason": reason}) for row in skipped
        ]
        closed += len(skipped)
    append_events(events)
    escalate_misses(missed, sources, now=now)
    return closed


def skip_unasked(now: datetime) -> int:
    """End as skipped the check-ins that were never asked and whose window has passed."""
    by_reason: dict[str, list[CheckIn]] = {}
    for row in db.session.scalars(unasked_stmt(now)).all():
        by_reason.setdefault(row.skip_reason or "stale", []).append(row)
    events: list[dict[str, object]] = []
    for reason, batch in by_reason.items():
        values = {"status": "skipped", "skip_reason": reason, "updated_at": now}
        skipped = _move_all(batch, "scheduled", values)
        events += [
            checkin_event_values("checkin.skipped", row, now, {"reason": reason}) for row in skipped
        ]
    append_events(events)
    return len(events)


@dataclass
class _People:
    """What escalating a batch of misses reads about people, fetched once per batch."""

    clients: dict[str, Client] = field(default_factory=dict)
    sponsors: dict[str, list[SupportContact]] = field(default_factory=dict)
    opted_out: set[str] = field(default_factory=set)
    sms: dict[str, SmsConsent] = field(default_factory=dict)
    disclosures: dict[str, DisclosureConsent] = field(default_factory=dict)

    @classmethod
    def of(cls, rows: list[CheckIn], sources: dict[tuple[str, str], Source]) -> _People:
        people = cls()
        client_ids = {row.client_id for row in rows}
        if not client_ids:
            return people
        people.clients = {
            client.id: client
            for client in db.session.scalars(select(Client).where(Client.id.in_(client_ids)))
        }
        notifying = {
            row.client_id
            for row in rows
            if isinstance(source := sources.get((row.source_type, row.source_id)), Commitment)
            and source.notify_sponsor
        }
        if not notifying:
            return people
        for sponsor in db.session.scalars(
            select(SupportContact)
            .where(
                SupportContact.client_id.in_(notifying),
                SupportContact.role == "sponsor",
                SupportContact.archived_at.is_(None),
            )
            .order_by(SupportContact.id)
        ):
            people.sponsors.setdefault(sponsor.client_id, []).append(sponsor)
        everyone = [sponsor for group in people.sponsors.values() for sponsor in group]
        people.opted_out = consent.opted_out_among(sponsor.phone for sponsor in everyone)
        people.sms = consent.latest_sms_consents(everyone)
        people.disclosures = consent.latest_disclosures(everyone)
        return people

    def client(self, client_id: str) -> Client | None:
        return self.clients.get(client_id) or db.session.get(Client, client_id)

    def sponsor_to_tell(self, client: Client, *, now: datetime) -> SupportContact | None:
        """The client's first sponsor who may be texted about a miss today, or None."""
        for sponsor in self.sponsors.get(client.id, []):
            today = now.astimezone(get_zone(sponsor.timezone or client.timezone)).date()
            if (
                sponsor.phone not in self.opted_out
                and consent.sms_consent_in_effect(
                    sponsor, self.sms.get(consent.subject_key(sponsor))
                )
                and consent.disclosure_version_allows(
                    sponsor, self.disclosures.get(sponsor.id), "missed", today
                )
            ):
                return sponsor
        return None


def _run_of(row: CheckIn) -> int:
    """How many misses in a row this check-in's source has, counting this one."""
    statuses = db.session.scalars(
        select(CheckIn.status)
        .where(
            CheckIn.source_type == row.source_type,
            CheckIn.source_id == row.source_id,
            CheckIn.event_at <= row.event_at,
        )
        .order_by(CheckIn.event_at.desc())
        .limit(_HISTORY)
    ).all()
    return consecutive_misses(statuses)


# Sources per history query in `_runs_of`.
_RUNS_CHUNK = 100


def history_stmt(rows: list[CheckIn]) -> Select[tuple[str, str, str]]:
    """Select each row's source's newest `_HISTORY` statuses up to that row, newest first.

    Sources must be distinct among `rows`: one windowed query, (source_type, source_id,
    status) ordered by source, then newest first.
    """
    position = func.row_number().over(
        partition_by=(CheckIn.source_type, CheckIn.source_id), order_by=CheckIn.event_at.desc()
    )
    bounds = (
        and_(
            CheckIn.source_type == row.source_type,
            CheckIn.source_id == row.source_id,
            CheckIn.event_at <= row.event_at,
        )
        for row in rows
    )
    history = (
        select(CheckIn.source_type, CheckIn.source_id, CheckIn.status, position.label("n"))
        .where(or_(*bounds))
        .subquery()
    )
    return (
        select(history.c.source_type, history.c.source_id, history.c.status)
        .where(history.c.n <= _HISTORY)
        .order_by(history.c.source_type, history.c.source_id, history.c.n)
    )


def _runs_of(rows: list[CheckIn]) -> dict[str, int]:
    """`_run_of` for many check-ins by id: one windowed query per chunk of sources.

    A source with one check-in in the batch reads its newest `_HISTORY` statuses up to it;
    a source with several (after an outage) asks per check-in, as each has its own bound.
    """
    by_source: dict[tuple[str, str], list[CheckIn]] = {}
    for row in rows:
        by_source.setdefault((row.source_type, row.source_id), []).append(row)
    runs = {row.id: _run_of(row) for group in by_source.values() if len(group) > 1 for row in group}
    single = [group[0] for group in by_source.values() if len(group) == 1]
    for start in range(0, len(single), _RUNS_CHUNK):
        chunk = single[start : start + _RUNS_CHUNK]
        statuses: dict[tuple[str, str], list[str]] = {}
        for source_type, source_id, status in db.session.execute(history_stmt(chunk)):
            statuses.setdefault((source_type, source_id), []).append(status)
        for row in chunk:
            runs[row.id] = consecutive_misses(statuses.get((row.source_type, row.source_id), []))
    return runs


def escalate_misses(
    missed: list[CheckIn], sources: dict[tuple[str, str], Source], *, now: datetime
) -> int:
    """Raise a `missed` alert for each miss that makes its source's run reach the threshold.

    Misses are counted in the given (occurrence) order. A commitment that asks for it also
    has its client's first consenting sponsor told, once per miss. Return alerts raised.
    """
    people = _People.of(missed, sources)
    raising: list[tuple[CheckIn, Client, Source, int]] = []
    counted = [row for row in missed if (row.source_type, row.source_id) in sources]
    runs = _runs_of(counted)
    for row in counted:
        source = sources[(row.source_type, row.source_id)]
        run = runs[row.id]
        if not should_alert(run, source.escalate_after_misses):
            continue
        client = people.client(row.client_id)
        if client is None or client.status == "discharged":
            continue  # asked before the discharge; the therapist has closed the case
        raising.append((row, client, source, run))
    raised = alerts.raise_alerts(
        [
            {
                "kind": "missed",
                "client": client,
                "source_type": row.source_type,
                "source_id": row.source_id,
                "occurrence": occurrence_label(row.occurrence),
                "detail": {"checkin_id": row.id, "consecutive": run},
            }
            for row, client, _, run in raising
        ],
        now=now,
    )
    notices = []
    for (row, client, source, _), alert_id in zip(raising, raised, strict=True):
        if alert_id is None or not isinstance(source, Commitment) or not source.notify_sponsor:
            continue
        sponsor = people.sponsor_to_tell(client, now=now)
        if sponsor is not None:
            notices.append(_sponsor_notice(row, client, sponsor, now=now))
    enqueue_messages(notices)
    return sum(alert_id is not None for alert_id in raised)


def _sponsor_notice(
    row: CheckIn, client: Client, sponsor: SupportContact, *, now: datetime
) -> dict[str, Any]:
    """The text telling a sponsor about a miss (scope `missed`), keyed once per miss."""
    send_after = defer_question(now, sponsor.timezone or client.timezone, quiet_hours_of(client))
    return {
        "practice_id": client.practice_id,
        "to": sponsor.phone,
        "body": render("miss_notice_contact", "en", client_name=client.display_name),
        "purpose": "alert",
        "template": "miss_notice_contact",
        "idempotency_key": f"miss_notice:{row.id}:{sponsor.id}",
        "now": now,
        "client_id": client.id,
        "contact_id": sponsor.id,
        "checkin_id": row.id,
        "send_after": send_after,
        "expires_at": send_after + _NOTICE_LIFETIME,
    }


def detect_misses_and_skips(now: datetime) -> int:
    """Close every check-in whose time is up; return how many ended missed or skipped."""
    return close_prompted(now) + skip_unasked(now)
