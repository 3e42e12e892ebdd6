"""Reminders and prompts: decide who may be texted now, claim the check-in, queue the text."""

from __future__ import annotations

import functools
import json
import logging
import os
import random
from collections import defaultdict, namedtuple
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Row, Select, bindparam, select, text, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from service import consent
from service.checkins import open_prompt_codes_for_phones
from service.db import binder, bound_list, db, id_in, in_bound
from service.escalation import occurrence_label
from service.events import append_event_rows, bind_values
from service.models import (
    CheckIn,
    Client,
    Commitment,
    MeetingPlan,
    SupportContact,
)
from service.notifications import templates
from service.notifications.grammar import ALL_CODES
from service.notifications.templates import render as render_text
from service.outbox import enqueue_messages
from service.phones import mask
from service.planning import (
    Source,
    SourceFacts,
    not_plannable,
    paused_reason,
    quiet_hours_of,
    source_facts_select,
    source_type_of,
    verifier_zone,
)
from service.quiet_hours import close_time, defer_question, is_quiet, is_stale
from service.schedule import get_zone

logger = logging.getLogger(__name__)

BATCH = 500
# One sweep call takes due rows BATCH at a time until a batch comes back short; this bounds
# the call (100 batches: 50,000 reminders and as many prompts) should rows never run out.
MAX_BATCHES = 100
# Template vocabulary for what a commitment asks the client to do.
_KIND_ACTION = {
    "sponsor_call": "call",
    "step_work": "step_work",
    "practice": "practice",
    "homework": "homework",
    "custom": "checkin",
}
_rng = random.SystemRandom()
_ALL_CODES = frozenset(ALL_CODES)
# A check-in ready to be asked, with what its text needs.
_C = CheckIn.__table__.c
# A due check-in as the sweep reads it: a plain row of the columns below, not an ORM object
# (nothing in the session to keep in step with the UPDATEs; the unit of work commits).
Due = Row[Any]
_DUE_COLUMNS = ("id", "practice_id", "client_id", "source_type", "source_id", "occurrence",
                "event_at", "due_at", "reminder_at", "verifier_contact_id")  # fmt: skip
# A client as the sweep reads it: a plain row of what its decisions and texts use.
ClientRow = Row[Any]
_CLIENT_COLUMNS = ("id", "practice_id", "display_name", "phone", "timezone", "language",
                   "recovery_path", "quiet_start", "quiet_end", "status", "paused_until")  # fmt: skip
# A verifier contact as the sweep reads it: a plain row of what its decisions and texts use.
ContactRow = Row[Any]
_CONTACT_COLUMNS = ("id", "phone", "timezone", "can_confirm", "archived_at")
Ready = tuple[Due, ClientRow, MeetingPlan | Commitment, ContactRow | None]


def client_block_reason(
    client: Client | ClientRow, source: MeetingPlan | Commitment, row: Due
) -> str | None:
    """Return why nobody may be asked about this check-in (paused, discharged …), or None."""
    return not_plannable(source, client) or paused_reason(source, client, row.occurrence)


def recipient_block_reason(subject: Client | SupportContact, today: date) -> str | None:
    """Return why this person may not be texted a check-in question on `today`, or None."""
    if isinstance(subject, SupportContact):
        if subject.archived_at is not None:
            return "verifier_archived"
        if not subject.can_confirm:
            return "verifier_cannot_confirm"
    if consent.is_opted_out(subject.phone):
        return "opted_out"
    if not consent.sms_consent_granted(subject):
        return "no_sms_consent"
    if isinstance(subject, SupportContact) and not consent.disclosure_allows(
        subject, "checkins", today
    ):
        return "no_disclosure_consent"
    return None


def due_reminders_stmt(now: datetime) -> Select[Any]:
    """Select the reminders due by `now`, locking them (SKIP LOCKED) for this sweep."""
    return _due(
        _C.status == "scheduled",
        _C.reminder_sent_at.is_(None),
        _C.reminder_at <= now,
        order=_C.reminder_at,
    )


def due_prompts_stmt(now: datetime) -> Select[Any]:
    """Select the check-ins whose question is due by `now`, locking them (SKIP LOCKED)."""
    return _due(
        _C.status == "scheduled",
        _C.skip_reason.is_(None),
        _C.due_at <= now,
        order=_C.due_at,
    )


def _due(*criteria: Any, order: Any) -> Select[Any]:
    # SKIP LOCKED: a second scheduler process takes other rows instead of waiting on these.
    return (
        select(*(_C[name] for name in _DUE_COLUMNS))
        .where(*criteria)
        .order_by(order)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    )


@functools.cache
def _due_bound(kind: str, batch: int) -> Select[Any]:
    """`due_reminders_stmt` or `due_prompts_stmt` built once, with `now` bound as `now`.

    The sweep runs it batch after batch: neither rebuilt nor walked for its cache key anew
    (`batch`, the BATCH it was built with, is the LIMIT it has).
    """
    now: Any = bindparam("now", type_=_C.due_at.type)
    return due_reminders_stmt(now) if kind == "reminders" else due_prompts_stmt(now)


@dataclass
class _Facts:
    """What one batch of due check-ins needs to decide, loaded in a few IN queries."""

    clients: dict[str, ClientRow]
    sources: dict[tuple[str, str], SourceFacts]
    contacts: dict[str, ContactRow]
    opted_out: set[str]
    sms: dict[str, Row[Any]]  # the latest SMS consent version's columns, by subject_key
    disclosures: dict[str, Row[Any]]  # the latest disclosure version's columns, by contact

    @classmethod
    def load(cls, rows: Sequence[Due], *, verifiers: bool = True) -> _Facts:
        """Load the batch's facts; without `verifiers`, those of the clients only (reminders)."""
        clients = _client_rows({row.client_id for row in rows})
        contact_ids = {row.verifier_contact_id for row in rows if row.verifier_contact_id}
        contacts = _contact_rows(contact_ids) if verifiers else {}
        sources: dict[tuple[str, str], SourceFacts] = {}
        for source_type in ("meeting_plan", "commitment"):
            ids = {row.source_id for row in rows if row.source_type == source_type}
            # Plain rows with their meeting joined in: all the decisions read of a source.
            for found in _read_by_ids(source_type, ids):
                sources[(source_type, found.id)] = SourceFacts.from_row(source_type, found)
        return cls(
            clients=clients,
            sources=sources,
            contacts=contacts,
            opted_out=consent.opted_out_among(
                [*(c.phone for c in clients.values()), *(c.phone for c in contacts.values())]
            ),
            sms=consent.latest_sms_consent_rows_by_key(
                [*(f"client:{c}" for c in clients), *(f"contact:{c}" for c in contacts)]
            ),
            disclosures=consent.latest_disclosure_rows(contacts.values()),
        )

    def source(self, row: Due) -> SourceFacts | None:
        return self.sources.get((row.source_type, row.source_id))

    def recipient_block_reason(
        self, subject: ClientRow | ContactRow, today: date, *, contact: bool = False
    ) -> str | None:
        """`recipient_block_reason` on the prefetched rows; `contact` says `subject` is one."""
        if contact:
            if subject.archived_at is not None:
                return "verifier_archived"
            if not subject.can_confirm:
                return "verifier_cannot_confirm"
        if subject.phone in self.opted_out:
            return "opted_out"
        # (An archived contact returned above: what sms_consent_in_effect adds for one.)
        key = f"contact:{subject.id}" if contact else f"client:{subject.id}"
        if not consent.sms_consent_in_effect(subject, self.sms.get(key)):
            return "no_sms_consent"
        if contact and not consent.disclosure_version_allows(
            subject, self.disclosures.get(subject.id), "checkins", today
        ):
            return "no_disclosure_consent"
        return None


def _client_rows(ids: set[str]) -> dict[str, ClientRow]:
    return {row.id: row for row in _read_by_ids("client", ids)}


def _contact_rows(ids: set[str]) -> dict[str, ContactRow]:
    return {row.id: row for row in _read_by_ids("contact", ids)}


def _read_by_ids(what: str, ids: set[str]) -> Sequence[Row[Any]]:
    """Read a batch's clients, contacts or sources of one type by id (none for no ids)."""
    if not ids:
        return []
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    listed = sorted(ids)
    params = {"ids": bound_list("postgresql" if postgresql else "sqlite", listed)}
    return _named(db.session.execute(_reads(postgresql)[what], params))


def _named(result: Any) -> list[Any]:
    """The result's rows as named tuples: the same values, read by name as a Row is.

    A sweep reads each row's columns by name many times over; a Row's attribute lookup
    costs several times a named tuple's, and one tuple per row costs less than that.
    """
    make = _row_type(tuple(result.keys()))._make
    return [make(row) for row in result.all()]


@functools.lru_cache(maxsize=64)
def _row_type(keys: tuple[str, ...]) -> Any:
    return namedtuple("SweepRow", keys)  # type: ignore[misc]  # noqa: PYI024


@functools.cache
def _reads(postgresql: bool) -> dict[str, Select[Any]]:
    """The batch reads, built once per dialect with the id list bound as `ids`.

    The same statements `id_in` makes (an array on PostgreSQL, a JSON list on SQLite), but
    built and cache-keyed once instead of once a batch.
    """

    def by_ids(column: Any) -> Any:
        return in_bound(column, "ids", "postgresql" if postgresql else "sqlite")

    clients, contacts = Client.__table__, SupportContact.__table__
    reads = {
        "client": select(*(clients.c[n] for n in _CLIENT_COLUMNS)).where(by_ids(clients.c.id)),
        "contact": select(*(contacts.c[n] for n in _CONTACT_COLUMNS)).where(by_ids(contacts.c.id)),
    }
    for source_type, model in (("meeting_plan", MeetingPlan), ("commitment", Commitment)):
        columns, joined = source_facts_select(model)
        reads[source_type] = (
            select(*columns).select_from(joined).where(by_ids(model.__table__.c.id))
        )
    return reads


def _batches(
    step: Callable[[list[Due]], int], stmt: Select[Any], params: dict[str, Any] | None = None
) -> int:
    """Run `step` on due rows a BATCH at a time until a batch comes back short.

    Every row a step sees leaves the due set (claimed, dropped, skipped or deferred); a
    batch of only rows already seen ends the loop all the same.
    """
    done = 0
    seen: set[str] = set()
    for _ in range(MAX_BATCHES):
        rows = _named(db.session.execute(stmt, params))
        fresh = [row for row in rows if row.id not in seen]
        if fresh:
            seen.update(row.id for row in fresh)
            done += step(fresh)
        if len(rows) < BATCH or not fresh:
            break
    return done


def send_reminders(now: datetime, *, stale_minutes: int) -> int:
    """Queue the meeting reminders that are due; drop stale or no-longer-allowed ones."""
    return _batches(
        lambda rows: _reminder_batch(rows, now, stale_minutes),
        _due_bound("reminders", BATCH),
        {"now": now},
    )


def _reminder_batch(rows: list[Due], now: datetime, stale_minutes: int) -> int:
    # A reminder goes to the client alone: its verifier's facts are not read.
    facts = _Facts.load(rows, verifiers=False)
    at = _Now(now)
    dropped: list[Due] = []
    wanted: list[tuple[Due, ClientRow]] = []
    for row in rows:
        client = facts.clients.get(row.client_id)
        source = facts.source(row)
        why = None
        if client is None or source is None:
            why = "gone"
        elif is_stale(row.reminder_at, now, stale_minutes):
            why = "stale"
        elif at.is_quiet(client.timezone, client):
            why = "quiet_hours"
        else:
            why = client_block_reason(client, source, row) or facts.recipient_block_reason(
                client, at.today(client.timezone)
            )
        if why is not None:
            logger.info("reminder for check-in %s dropped: %s", row.id, why)
            dropped.append(row)
        else:
            wanted.append((row, client))
    _update_where(dropped, {"reminder_at": None}, _C.reminder_sent_at.is_(None))
    claimed = _claim_reminders([row.id for row, _ in wanted], now)
    texts = [
        {
            "practice_id": row.practice_id,
            "to": client.phone,
            "body": _reminder_body(client, row, now),
            "purpose": "reminder",
            "template": "reminder_meeting",
            "idempotency_key": f"reminder:{row.id}",
            "now": now,
            "client_id": client.id,
            "checkin_id": row.id,
            "expires_at": row.reminder_at + timedelta(minutes=stale_minutes),
        }
        for row, client in wanted
        if row.id in claimed
    ]
    enqueue_messages(texts)
    return len(texts)


def render(template: str, language: str, **fields: Any) -> str:
    """`templates.render`, remembered: a busy minute asks many people the same words."""
    return _render(template, language, tuple(sorted(fields.items())))


@functools.lru_cache(maxsize=4096)
def _render(template: str, language: str, fields: tuple[tuple[str, Any], ...]) -> str:
    # A prompt with a code is its uncoded text plus the code: one rendering per wording.
    if template in templates.PROMPT_TEMPLATES:
        return templates.render_prompt(template, language, **dict(fields))
    return render_text(template, language, **dict(fields))


@functools.lru_cache(maxsize=4096)
def _initial(display_name: str) -> str:
    """The client's initial exactly as `prompt_contact` derives it (all a contact learns)."""
    return templates.initial(templates._clean(display_name or ""))


def _today(zone: str, now: datetime) -> date:
    """Return the recipient's local date: disclosure consents are dated, and so is `now`."""
    return now.astimezone(get_zone(zone)).date()


class _Now:
    """What one batch asks of its `now`, worked out once per zone (or window) it meets.

    A busy minute's rows live in a few zones and share a few quiet hours and closing
    windows: each answer is `_today`'s, `is_quiet`'s or `_closes`' own, remembered.
    """

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._days: dict[str, date] = {}
        self._quiet: dict[tuple[str, str, str], bool] = {}
        self._closes: dict[tuple[str, Any], datetime] = {}

    def today(self, zone: str) -> date:
        day = self._days.get(zone)
        if day is None:
            day = self._days[zone] = _today(zone, self.now)
        return day

    def is_quiet(self, zone: str, client: ClientRow) -> bool:
        """`is_quiet(now, zone, quiet_hours_of(client))`."""
        key = (zone, client.quiet_start, client.quiet_end)
        quiet = self._quiet.get(key)
        if quiet is None:
            quiet = self._quiet[key] = is_quiet(self.now, zone, quiet_hours_of(client))
        return quiet

    def closes(self, source: Source) -> datetime:
        """`_closes(source, now)`: a prompt sent now closes after the source's window."""
        if source_type_of(source) == "meeting_plan":
            key: tuple[str, Any] = ("meeting_plan", source.confirm_window_hours)
        else:
            key = ("commitment", source.grace_minutes)
        closes_at = self._closes.get(key)
        if closes_at is None:
            closes_at = self._closes[key] = _closes(source, self.now)
        return closes_at


def _reminder_body(client: ClientRow, row: Due, now: datetime) -> str:
    tz = get_zone(client.timezone)
    day = "today" if row.event_at.astimezone(tz).date() == now.astimezone(tz).date() else "tomorrow"
    return render("reminder_meeting", client.language, time=row.occurrence.time(), day=day)


def send_prompts(now: datetime, *, stale_minutes: int) -> int:
    """Ask the verifiers of the due check-ins; mark those that cannot be asked for skipping."""
    return _batches(
        lambda rows: _prompt_batch(rows, now, stale_minutes),
        _due_bound("prompts", BATCH),
        {"now": now},
    )


def _prompt_batch(rows: list[Due], now: datetime, stale_minutes: int) -> int:
    facts = _Facts.load(rows)
    at = _Now(now)
    ready: dict[str, list[Ready]] = defaultdict(list)
    gone: list[Due] = []
    skipped: dict[str, list[Due]] = defaultdict(list)
    for row in rows:
        client = facts.clients.get(row.client_id)
        source = facts.source(row)
        if client is None or source is None:
            gone.append(row)
            continue
        contact = facts.contacts.get(row.verifier_contact_id) if row.verifier_contact_id else None
        why = client_block_reason(client, source, row)
        if why is None and is_stale(row.due_at, now, stale_minutes):
            why = "stale"
        zone = verifier_zone(client, contact)
        why = why or facts.recipient_block_reason(
            contact or client, at.today(zone), contact=contact is not None
        )
        if why is not None:
            logger.info("prompt for check-in %s not sent: %s", row.id, why)
            skipped[why].append(row)
            continue
        if at.is_quiet(zone, client):
            # Quiet hours changed since planning: ask when they end, and close that much later.
            due = defer_question(now, zone, quiet_hours_of(client))
            _update_where([row], {"due_at": due, "closes_at": _closes(source, due)},
                          _C.status == "scheduled")  # fmt: skip
            continue
        ready[(contact or client).phone].append((row, client, source, contact))
    _update_where(gone, {"skip_reason": "gone"}, _C.status == "scheduled")
    for why, group in skipped.items():
        _update_where(group, {"skip_reason": why}, _C.status == "scheduled",
                      _C.skip_reason.is_(None))  # fmt: skip
    sent = _prompt_groups(ready, at)
    return sent


def _prompt_groups(ready: dict[str, list[Ready]], at: _Now) -> int:
    """Prompt each number's due check-ins, giving every open prompt a code if it has several."""
    if not ready:
        return 0
    now = at.now
    phones = sorted(ready)
    if db.session.get_bind().dialect.name == "postgresql":
        # Two schedulers prompting the same sponsor at once must agree on the codes. The
        # locks are taken in one order (sorted numbers), so two sweeps cannot deadlock.
        db.session.execute(
            text(
                "SELECT count(pg_advisory_xact_lock(hashtext(p))) "
                "FROM unnest(CAST(:phones AS text[])) WITH ORDINALITY AS t(p, n)"
            ),
            {"phones": phones},
        )
    open_by_phone = open_prompt_codes_for_phones(phones)
    planned: list[tuple[Ready, str, str | None, datetime]] = []
    short: set[str] = set()  # rows left without a code when the number's codes ran out
    recoded: list[tuple[str, str | None]] = []
    for phone, group in ready.items():
        already_open = open_by_phone.get(phone, [])
        coded = len(already_open) + len(group) > 1
        codes: Iterator[str | None] = iter(())
        if coded:
            uncoded = [open_id for open_id, code in already_open if not code]
            taken = {code for _id, code in already_open if code}
            codes = iter(_codes_for(taken, len(uncoded), len(group)))
            recoded += [(open_id, next(codes)) for open_id in uncoded]
        for entry in group:
            code = next(codes, None) if coded else None
            if coded and code is None:
                short.add(entry[0].id)
            planned.append((entry, phone, code, at.closes(entry[2])))
    # The claim: each row still scheduled becomes prompted with its own window and code, in
    # one statement (a row someone else changed meanwhile is left alone, as is its code).
    claimed = _claim_prompts(
        [(entry[0].id, closes_at, code) for entry, _phone, code, closes_at in planned], now
    )
    if short & claimed:
        raise ValueError("every prompt code is taken")
    texts: list[dict[str, Any]] = []
    events: list[tuple[Any, ...]] = []
    for (row, client, source, contact), phone, code, closes_at in planned:
        if row.id not in claimed:
            continue
        recipient = contact or client
        template, body = _prompt_text(row, client, source, contact, code)
        texts.append({
            "practice_id": row.practice_id,
            "to": phone,
            "body": body,
            "purpose": "prompt",
            "template": template,
            "idempotency_key": f"prompt:{row.id}:{recipient.id}",
            "now": now,
            "client_id": client.id,
            "contact_id": contact.id if contact else None,
            "checkin_id": row.id,
            "expires_at": closes_at,
        })  # fmt: skip
        events.append(_prompted_event(row, contact.id if contact else "self", now))
        logger.info("prompted check-in %s to %s", row.id, mask(phone))
    if recoded:
        # Prompts already open get their codes now that the number has several.
        _recode(recoded)
        for open_id, code in recoded:
            loaded = db.session.identity_map.get(identity_key(CheckIn, open_id))
            if loaded is not None:
                set_committed_value(loaded, "prompt_code", code)
    enqueue_messages(texts)
    append_event_rows(events)
    return len(texts)


def _prompted_event(row: Due, verifier: str, now: datetime) -> tuple[Any, ...]:
    """The `checkin.prompted` event of a row, laid out as EVENT_ROW_COLUMNS.

    What `checkin_event_values` makes (the same payload, keys in the same order), without
    its two dicts per row; the occurrence's label is remembered (a busy minute asks about a
    few local times).
    """
    payload = {
        "source_type": row.source_type,
        "source_id": row.source_id,
        "occurrence": _occurrence_label(row.occurrence),
        "verifier": verifier,
    }
    return ("checkin.prompted", row.practice_id, row.client_id, "checkin", row.id, payload, now)


_occurrence_label = functools.lru_cache(maxsize=4096)(occurrence_label)


def _codes_for(taken: set[str], uncoded: int, group: int) -> list[str]:
    """Codes for a number's `uncoded` open prompts, then for up to `group` new ones.

    The new prompts are coded before the claim, so each may get a code it ends up not
    using; when the free codes cannot cover all of them, the later ones get none, and the
    caller fails if a claimed prompt is among those (as drawing after the claim would).
    """
    used = {code.upper() for code in taken}
    free = len(ALL_CODES) - len(used & _ALL_CODES) if used else len(ALL_CODES)
    if free < uncoded:
        raise ValueError("every prompt code is taken")
    return _new_codes(taken, min(free, uncoded + group))


def _new_codes(taken: set[str], count: int) -> list[str]:
    """Return `count` distinct prompt codes not in `taken`, each as `new_code` would pick it.

    Drawing without replacement from the free codes, uniformly: while most codes are free
    (a number has a few open prompts), by index into ALL_CODES from one buffer of OS random
    bytes, a byte beyond the codes or a code taken or drawn already being drawn again (each
    kept draw is uniform over the codes still free); otherwise one random sample of the
    listed free codes. Both draw from the OS's randomness, as `_rng` does, but the first
    neither lists the free codes nor asks the OS once per code (a busy minute asks for two
    or three codes for each of hundreds of numbers).
    """
    used = {code.upper() for code in taken} & _ALL_CODES
    if len(used) + count > _FREE_DRAW_LIMIT:
        free = [code for code in ALL_CODES if code not in used] if used else ALL_CODES
        if len(free) < count:
            raise ValueError("every prompt code is taken")
        return _rng.sample(free, count)
    drawn: list[str] = []
    while len(drawn) < count:
        for index in os.urandom(2 * (count - len(drawn)) + 4):
            if index >= _CODES:
                continue
            code = ALL_CODES[index]
            if code in used:
                continue
            used.add(code)
            drawn.append(code)
            if len(drawn) == count:
                break
    return drawn


_CODES = len(ALL_CODES)
# One random byte picks a code: every index of ALL_CODES must be a byte value.
assert _CODES <= 256  # noqa: S101
# Drawn by index while at least half of the codes stay free (at most two tries a code on
# average, beyond the bytes past the codes); past that, from the listed free codes.
_FREE_DRAW_LIMIT = _CODES // 2


def _closes(source: Source, sent_at: datetime) -> datetime:
    if source_type_of(source) == "meeting_plan":
        return close_time(sent_at, confirm_window_hours=source.confirm_window_hours)
    return close_time(sent_at, grace_minutes=source.grace_minutes)


def _prompt_text(
    row: Due,
    client: ClientRow,
    source: Source,
    contact: ContactRow | None,
    code: str | None,
) -> tuple[str, str]:
    """Return the template and body of the question, in the recipient's words."""
    if contact is not None:
        # A contact learns the client's initial only: the disclosure consent was checked.
        # Only the initial goes in, so one rendering serves every client with that initial.
        return "prompt_contact", render(
            "prompt_contact", "en", client_name=_initial(client.display_name), code=code
        )
    if source_type_of(source) == "meeting_plan":
        return "prompt_meeting_self", render(
            "prompt_meeting_self", client.language, time=row.occurrence.time(), code=code
        )
    return "prompt_commitment_self", render(
        "prompt_commitment_self",
        client.language,
        kind=_KIND_ACTION.get(source.kind, "checkin"),
        path=client.recovery_path,
        code=code,
    )


def _update_where(rows: Sequence[Due], values: dict[str, Any], *conditions: Any) -> set[str]:
    """Apply `values` to those of the rows that still meet `conditions` (the claim).

    Returns the ids it changed; a row someone else changed meanwhile is left alone.
    """
    if not rows:
        return set()
    table = CheckIn.__table__
    result = db.session.execute(
        update(table)
        .where(id_in(table.c.id, [row.id for row in rows]), *conditions)
        .values(**values)
        .returning(table.c.id)
    )
    return set(result.scalars())


# The claim and the recoding on PostgreSQL: driver-level statements whose arrays go in binary
# (psycopg dumps a text-format array in Python, several times slower for a batch's 500 ids).
_CLAIM_PG = (
    "UPDATE checkins SET status = 'prompted', prompted_at = %(now)s, updated_at = %(now)s,"
    " closes_at = given.closes_at, prompt_code = given.prompt_code"
    " FROM unnest(%(ids)b::varchar[], %(closes)b::timestamptz[], %(codes)b::varchar[])"
    " AS given (id, closes_at, prompt_code)"
    " WHERE checkins.id = given.id AND checkins.status = 'scheduled'"
    " AND checkins.skip_reason IS NULL RETURNING checkins.id"
)
_RECODE_PG = (
    "UPDATE checkins SET prompt_code = given.prompt_code"
    " FROM unnest(%(ids)b::varchar[], %(codes)b::varchar[]) AS given (id, prompt_code)"
    " WHERE checkins.id = given.id"
)


# The same on SQLite (qmark), the rows as one JSON list of [id, closes_at, code] (or
# [id, code]), each value as the column's own bind processing stores it: written out, so
# that nothing is built, cache-keyed or compiled per batch.
_CLAIM_SQLITE = (
    "UPDATE checkins SET status = 'prompted', prompted_at = ?, updated_at = ?,"
    " closes_at = given.closes_at, prompt_code = given.prompt_code"
    " FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS closes_at,"
    " json_extract(value, '$[2]') AS prompt_code FROM json_each(?)) AS given"
    " WHERE checkins.id = given.id AND checkins.status = 'scheduled'"
    " AND checkins.skip_reason IS NULL RETURNING checkins.id"
)
_RECODE_SQLITE = (
    "UPDATE checkins SET prompt_code = given.prompt_code"
    " FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS prompt_code"
    " FROM json_each(?)) AS given WHERE checkins.id = given.id"
)
# The reminders' claim: each row still scheduled and not yet reminded gets its sending time.
_CLAIM_REMINDERS_PG = (
    "UPDATE checkins SET reminder_sent_at = %(now)s WHERE checkins.id = ANY(%(ids)b::varchar[])"
    " AND checkins.reminder_sent_at IS NULL AND checkins.status = 'scheduled'"
    " RETURNING checkins.id"
)
_CLAIM_REMINDERS_SQLITE = (
    "UPDATE checkins SET reminder_sent_at = ?"
    " WHERE checkins.id IN (SELECT value FROM json_each(?))"
    " AND checkins.reminder_sent_at IS NULL AND checkins.status = 'scheduled'"
    " RETURNING checkins.id"
)


def _claim_prompts(keyed: Sequence[tuple[str, datetime, str | None]], now: datetime) -> set[str]:
    """Prompt the rows still scheduled and not skipped, each with its (id, closes_at, code).

    Returns the ids claimed; a row someone else changed meanwhile is left alone.
    """
    if not keyed:
        return set()
    conn = db.session.connection()
    process = binder(_C.closes_at, conn.dialect)  # a UTC instant column
    # A batch's closing times are a few distinct instants: each bound once (bind_values).
    closes = bind_values(process, [entry[1] for entry in keyed])
    if conn.dialect.name != "postgresql":
        stamp = process(now)
        listed = json.dumps(
            [
                [entry[0], closes_at, entry[2]]
                for entry, closes_at in zip(keyed, closes, strict=True)
            ]
        )
        return set(conn.exec_driver_sql(_CLAIM_SQLITE, (stamp, stamp, listed)).scalars())
    params = {
        "now": process(now),
        "ids": [entry[0] for entry in keyed],
        "closes": closes,
        "codes": [entry[2] for entry in keyed],
    }
    return set(conn.exec_driver_sql(_CLAIM_PG, params).scalars())


def _claim_reminders(ids: Sequence[str], now: datetime) -> set[str]:
    """Mark the reminders of the rows still scheduled and not yet reminded as sent `now`.

    Returns the ids claimed; a row someone else changed meanwhile is left alone.
    """
    if not ids:
        return set()
    conn = db.session.connection()
    stamp = binder(_C.closes_at, conn.dialect)(now)
    if conn.dialect.name != "postgresql":
        args: Any = (stamp, json.dumps(list(ids)))
        return set(conn.exec_driver_sql(_CLAIM_REMINDERS_SQLITE, args).scalars())
    params = {"now": stamp, "ids": list(ids)}
    return set(conn.exec_driver_sql(_CLAIM_REMINDERS_PG, params).scalars())


def _recode(pairs: Sequence[tuple[str, str | None]]) -> None:
    """Give each (id, code) check-in its prompt code."""
    conn = db.session.connection()
    if conn.dialect.name != "postgresql":
        conn.exec_driver_sql(_RECODE_SQLITE, (json.dumps([list(pair) for pair in pairs]),))
        return
    params = {"ids": [pair[0] for pair in pairs], "codes": [pair[1] for pair in pairs]}
    conn.exec_driver_sql(_RECODE_PG, params)
