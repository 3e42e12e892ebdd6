"""Inbound texts: store each once, read it with the reply grammar, act, and say what to answer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import Any, NamedTuple

import phonenumbers
from flask import current_app
from sqlalchemy import Connection, bindparam, cast, literal_column, null, select, union_all
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from service import alerts
from service.checkins import LATE_REPLY_WINDOW, record_reply
from service.db import db, new_id
from service.models import CheckIn, Client, Message, OptOut, Practice, SupportContact
from service.notifications import grammar, gsm
from service.notifications.optout import opt_in_number, opt_out_number
from service.notifications.replies import (
    _OPEN_OR_LATE,
    Candidate,
    RawStatement,
    answer_prompt,
    candidates_from,
    pick_checkin,
    reply_values,
    responder_of,
    urge_answer,
)
from service.notifications.templates import render
from service.phones import PhoneError, normalize_phone, region_of

logger = logging.getLogger(__name__)

# A stranger gets one neutral answer per this period, then silence (no reply loops).
UNKNOWN_ANSWER_EVERY = timedelta(hours=24)
_UNKNOWN_TEMPLATES = ("unknown_sender", "help_unknown")
_CANONICAL = frozenset(canonical for _, canonical in grammar.KEYWORDS.values())
# Built once: the statements of every inbound text (SQLAlchemy caches their compiled form).
_CLIENTS_AT = (
    select(Client).where(Client.phone == bindparam("phone")).order_by(Client.created_at, Client.id)
)
_CONTACTS_AT = (
    select(SupportContact)
    .where(SupportContact.phone == bindparam("phone"))
    .order_by(SupportContact.created_at, SupportContact.id)
)
_clients, _contacts, _opt_outs = Client.__table__, SupportContact.__table__, OptOut.__table__


def _who_has_statement(_dialect: str) -> Any:
    """Who has a number, in one statement: its clients, then every contact (archived ones
    too), each oldest first as in _people, then a row when the number is on the suppression
    list."""
    phone = bindparam("phone", type_=_clients.c.phone.type)
    return union_all(
        select(
            literal_column("'client'").label("kind"),
            _clients.c.id,
            _clients.c.practice_id,
            null().label("client_id"),
            _clients.c.status,
            _clients.c.language,
            null().label("archived_at"),
            _clients.c.created_at,
        ).where(_clients.c.phone == phone),
        select(
            literal_column("'contact'"),
            _contacts.c.id,
            _contacts.c.practice_id,
            _contacts.c.client_id,
            null(),
            null(),
            _contacts.c.archived_at,
            _contacts.c.created_at,
        ).where(_contacts.c.phone == phone),
        select(
            literal_column("'opted_out'"), _opt_outs.c.phone, null(), null(), null(), null(),
            null(), null(),
        ).where(_opt_outs.c.phone == phone),
    ).order_by(literal_column("kind"), literal_column("created_at"), literal_column("id"))  # fmt: skip


_WHO_HAS = RawStatement(_who_has_statement)
_WHO_HAS_WIDTH = 8  # its columns; _WHO_HAS_AND_CHECKINS adds every check-in column after them


def _who_has_and_checkins_statement(dialect: str) -> Any:
    """_WHO_HAS and, in the same statement (one round trip, one snapshot), the rows of
    replies._OPEN_OR_LATE as `checkin` rows: every check-in column after _WHO_HAS's.

    The check-in columns are NULL in the people's rows; typed in the first branch, as a
    UNION's columns take their types from it (PostgreSQL would read NULL as text).
    """
    who_has = _who_has_statement(dialect)
    checkins = _OPEN_OR_LATE.statement(dialect)
    people, opted_out = who_has.selects[:2], who_has.selects[2]
    typed = [cast(null(), c.type).label(f"ci_{c.key}") for c in checkins.selected_columns]
    untyped = [null() for _ in typed]
    return union_all(
        people[0].add_columns(*typed),
        people[1].add_columns(*untyped),
        opted_out.add_columns(*untyped),
        checkins.with_only_columns(
            literal_column("'checkin'"), *[null() for _ in range(_WHO_HAS_WIDTH - 1)],
            *checkins.selected_columns,
        ),
    ).order_by(literal_column("kind"), literal_column("created_at"), literal_column("id"))  # fmt: skip


_WHO_HAS_AND_CHECKINS = RawStatement(_who_has_and_checkins_statement)


class _Person(NamedTuple):
    """A client or contact at a number, as _WHO_HAS reads them."""

    kind: str
    id: str
    practice_id: str | None
    client_id: str | None  # a contact's client
    status: str | None  # a client's
    language: str | None  # a client's
    archived_at: Any  # a contact's: only whether it is None is read
    created_at: Any


# INSERT .. ON CONFLICT DO NOTHING, by dialect name: a replayed MessageSid inserts nothing.
_UPSERT_INSERTS = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}


@dataclass(frozen=True)
class InboundResult:
    """What an inbound text led to: the answer to send back (or None) and what was done."""

    answer_text: str | None
    intent: str
    actions: tuple[str, ...] = ()
    message_id: str | None = None
    replayed: bool = False


@dataclass
class _Sender:
    """Who texted: their number, and the clients and contacts that have it.

    The people are _who_has's rows while the answer is decided by reads alone, and model
    objects (_people) for the intents acted on after the text is stored (_act).
    """

    phone: str
    clients: list[Any]  # Client or _Person
    contacts: list[Any]  # SupportContact or _Person
    client: Any  # the one whose answers we give (client-only keywords), or None
    # Every contact with the number, archived ones too: a prompt sent before archiving may
    # still be answered (the check-in lookup's rule), though an archived contact is no sender.
    every_contact: list[Any] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    @property
    def known(self) -> bool:
        return bool(self.clients or self.contacts)


def handle_inbound(
    *,
    from_number: str,
    to_number: str | None,
    body: str,
    now: datetime,
    message_sid: str | None = None,
    settings: Any = None,
    before_write: Callable[[], None] | None = None,
) -> InboundResult:
    """Record an inbound text and act on it; the caller commits and sends answer_text back.

    `before_write` is called once, after every lookup and before the first write (the
    webhook queues there for SQLite's write lock).

    Idempotent by message_sid: a replayed webhook gets the same answer and changes nothing.
    """
    settings = settings if settings is not None else current_app.extensions["settings"]
    phone = _e164(from_number, settings.DEFAULT_PHONE_REGION)
    reply = grammar.parse_reply(body)
    # On PostgreSQL the reads and a text that only gets an answer go through a connection
    # in autocommit (below); everything else through the session's transaction.
    own = _autocommit(db.engine).connect() if _AUTOCOMMIT_STORE(db.engine) else None
    try:
        return _handle(phone, reply, to_number, body, now, message_sid, settings, before_write, own)
    finally:
        if own is not None:
            own.close()


def _handle(
    phone: str,
    reply: grammar.Reply,
    to_number: str | None,
    body: str,
    now: datetime,
    message_sid: str | None,
    settings: Any,
    before_write: Callable[[], None] | None,
    own: Connection | None,
) -> InboundResult:
    connection = own if own is not None else db.session.connection()
    # The check-ins a YES/NO may answer are read with the people, in the same statement.
    wants_checkins = reply.intent in (grammar.CONFIRM, grammar.DECLINE)
    since = now - LATE_REPLY_WINDOW if wants_checkins else None
    clients, every_contact, opted_out, checkin_rows = _who_has(phone, connection, since)
    contacts = [c for c in every_contact if c.archived_at is None]
    sender = _Sender(phone, clients, contacts, _primary(clients, to_number), every_contact)
    intent = reply.intent
    # As at the carrier, a whole-message YES from an opted-out number is START (and only
    # the exact word: Twilio would keep blocking a number that wrote "yeah").
    if opted_out and grammar.normalize(body).upper() in grammar.OPT_IN_WHEN_OPTED_OUT:
        intent = grammar.OPT_IN
    # Reads before the first write: SQLite holds its one write lock from then to the commit.
    # (A check-in answered meanwhile by another request is safe: record_reply updates only
    # a check-in still open.)
    candidates = None
    if sender.known and intent in (grammar.CONFIRM, grammar.DECLINE):
        candidates = candidates_from(checkin_rows, clients, every_contact, now, connection)
    decision = _decide(sender, intent, reply, now, candidates)
    if own is not None and (decision is None or decision[2] is not None):
        own.close()  # the writes go through the session: no second connection held meanwhile
        own = None
    if before_write is not None:
        before_write()
    if decision is None:
        return _act(sender, intent, reply, to_number, body, message_sid, now, settings, opted_out)
    # Everything is decided before the first write, so the write lock is held for the
    # stored rows, the check-in's answer and the commit only.
    template, answer, checkin, action = decision
    if opted_out:  # nothing goes to an opted-out number (STOP and START never get here)
        template, answer = None, None
    values = _inbound_values(sender, to_number, body, message_sid, now)
    answer_row = reply_values(values, answer, template, now) if answer is not None else None
    # Stored first, unique by MessageSid: a replayed webhook (or a concurrent delivery of the
    # same text) inserts nothing and is answered with the recorded outcome, never acting twice.
    if checkin is None and own is not None:
        # Nothing else is written: the rows are committed by the one statement storing them.
        stored = _store_committed(own, values, answer_row)
    else:
        stored = _store_rows(values, answer_row)
    if not stored:
        return _replay(message_sid) or InboundResult(None, "replay", replayed=True)
    if checkin is not None:
        record_reply(checkin, intent, responder=responder_of(checkin), channel="sms", now=now)
    if action is not None:
        sender.actions.append(action)
    db.session.flush()
    logger.info("inbound %s: %s (%s)", values["id"], intent, ", ".join(sender.actions) or "-")
    return InboundResult(answer, intent, tuple(sender.actions), values["id"])


def _act(
    sender: _Sender,
    intent: str,
    reply: grammar.Reply,
    to_number: str | None,
    body: str,
    message_sid: str | None,
    now: datetime,
    settings: Any,
    opted_out: bool,
) -> InboundResult:
    """Store the text, then act on an intent whose handling writes (crisis, STOP, urge...)."""
    values = _inbound_values(sender, to_number, body, message_sid, now)
    if not _store_rows(values, None):
        return _replay(message_sid) or InboundResult(None, "replay", replayed=True)
    if sender.known:  # the people themselves, for the alerts and texts acted on here
        clients, contacts, every_contact = _people(sender.phone)
        sender = _Sender(
            sender.phone, clients, contacts, _primary(clients, to_number), every_contact
        )
    inbound = Message(**values)
    template, answer = _route(sender, intent, reply, inbound, now, settings)
    # Nothing goes to an opted-out number; for STOP the carrier sends its confirmation. STOP
    # and START answer nothing whatever they did, and no other intent changes the suppression
    # list, so the state read above holds for every other answer.
    if opted_out or intent in (grammar.OPT_OUT, grammar.OPT_IN):
        template, answer = None, None
    if answer is not None:
        db.session.execute(Message.__table__.insert(), reply_values(values, answer, template, now))
    db.session.flush()
    logger.info("inbound %s: %s (%s)", inbound.id, intent, ", ".join(sender.actions) or "-")
    return InboundResult(answer, intent, tuple(sender.actions), inbound.id)


# Intents whose handling writes (alerts, the suppression list, a sponsor's text): they are
# acted on after the text is stored. Every other answer is decided by reads alone.
_WRITING = frozenset({grammar.CRISIS, grammar.OPT_OUT, grammar.OPT_IN})
_WRITING_FOR_CLIENTS = frozenset({grammar.URGE, grammar.LAPSE})


def _decide(
    sender: _Sender,
    intent: str,
    reply: grammar.Reply,
    now: datetime,
    candidates: tuple[list[Candidate], list[Candidate]] | None,
) -> tuple[str | None, str | None, CheckIn | None, str | None] | None:
    """Decide, by reads alone, what a text leads to: (template, answer, check-in, action).

    The check-in is the one a YES/NO answers (recorded once the text is stored); None
    as a whole when the intent's handling writes (see `_route`).
    """
    if intent in _WRITING:
        return None
    if not sender.known:
        # _stranger appends its own action.
        template, answer = _stranger(
            sender, now, "help_unknown" if intent == grammar.HELP else None
        )
        return template, answer, None, None
    client = sender.client
    if intent == grammar.HELP:
        if client is not None:
            practice = db.session.get(Practice, client.practice_id)
            phone = practice.phone if practice is not None else None
            text = render("help_client", client.language, practice_phone=phone)
            return "help_client", text, None, None
        return "help_contact", render("help_contact", "en"), None, None
    if intent in (grammar.CONFIRM, grammar.DECLINE):
        open_prompts, late = candidates if candidates is not None else ([], [])
        row, codes = pick_checkin(open_prompts, late, reply.code)
        if row is not None:
            action = "confirmed" if intent == grammar.CONFIRM else "declined"
            return None, None, row.checkin(), action
        language = _language(sender)
        if codes:
            return "clarify_codes", render("clarify_codes", language, codes=codes), None, "clarify"
        return "didnt_understand", render("didnt_understand", language), None, "nothing_open"
    if intent in _WRITING_FOR_CLIENTS and client is not None:
        return None
    text = render("didnt_understand", _language(sender))
    return "didnt_understand", text, None, "kept_for_therapist"


def _route(
    sender: _Sender,
    intent: str,
    reply: grammar.Reply,
    inbound: Message,
    now: datetime,
    settings: Any,
    candidates: tuple[list[CheckIn], list[CheckIn]] | None = None,
) -> tuple[str | None, str | None]:
    """Act on one parsed text; return (template, answer text) or (None, None) for silence.

    `candidates`: the check-ins a YES/NO from a known number may answer, read beforehand.
    """
    if intent == grammar.CRISIS:
        return _crisis(sender, inbound, now, settings)
    if intent == grammar.OPT_OUT:
        # The keyword itself, never free text (it may say more than the person meant to keep).
        keyword = reply.text if reply.text in _CANONICAL else "free_text"
        if opt_out_number(sender.phone, reason="opt_out", keyword=keyword, now=now):
            sender.actions.append("opted_out")
        return None, None
    if intent == grammar.OPT_IN:
        if opt_in_number(sender.phone, now=now):
            sender.actions.append("opted_in")
        return None, None
    if not sender.known:
        return _stranger(sender, now, "help_unknown" if intent == grammar.HELP else None)
    client = sender.client
    if intent == grammar.HELP:
        if client is not None:
            practice = db.session.get(Practice, client.practice_id)
            phone = practice.phone if practice is not None else None
            return "help_client", render("help_client", client.language, practice_phone=phone)
        return "help_contact", render("help_contact", "en")
    if intent in (grammar.CONFIRM, grammar.DECLINE):
        template, answer, action = answer_prompt(
            sender.phone,
            reply,
            intent,
            now,
            _language(sender),
            candidates=candidates,
        )
        sender.actions.append(action)
        return template, answer
    if intent == grammar.URGE and client is not None:
        sender.actions.append("urge")
        return urge_answer(client, inbound, now)
    if intent == grammar.LAPSE and client is not None:
        alerts.raise_alert(
            kind="lapse",
            client=client,
            source_type="message",
            source_id=inbound.id,
            occurrence=None,
            detail={"message_id": inbound.id},
            now=now,
        )
        sender.actions.append("lapse_alert")
        return "lapse_reply", render("lapse_reply", client.language)
    sender.actions.append("kept_for_therapist")
    return "didnt_understand", render("didnt_understand", _language(sender))


def _crisis(sender: _Sender, inbound: Message, now: datetime, settings: Any) -> tuple[str, str]:
    """Alert every therapist concerned at once and answer with the local crisis line."""
    concerned = list(sender.clients)
    for contact in sender.contacts:
        client = db.session.get(Client, contact.client_id)
        if client is not None and client not in concerned:
            concerned.append(client)
    for client in concerned:
        alerts.raise_alert(
            kind="crisis",
            client=client,
            source_type="message",
            source_id=inbound.id,
            occurrence=None,
            detail={
                "message_id": inbound.id,
                "from": "client" if client in sender.clients else "contact",
            },  # fmt: skip
            now=now,
        )
        sender.actions.append("crisis_alert")
    client = sender.client
    practice = db.session.get(Practice, client.practice_id) if client is not None else None
    region = _region(sender.phone) or settings.DEFAULT_PHONE_REGION
    text = render(
        "crisis_reply",
        client.language if client is not None else "en",
        region=region,
        practice_phone=practice.phone if practice is not None else None,
        notified=client is not None,
    )
    return "crisis_reply", text


def _stranger(
    sender: _Sender, now: datetime, template: str | None
) -> tuple[str | None, str | None]:
    """Answer an unknown number once a day at most, then stay silent."""
    recent = db.session.scalar(
        select(Message.id)
        .where(
            Message.direction == "outbound",
            Message.purpose == "reply",
            Message.to_number == sender.phone,
            Message.template.in_(_UNKNOWN_TEMPLATES),
            Message.created_at > now - UNKNOWN_ANSWER_EVERY,
        )
        .limit(1)
    )
    if recent is not None:
        sender.actions.append("unknown_silenced")
        return None, None
    sender.actions.append("unknown_answered")
    template = template or "unknown_sender"
    return template, render(template, "en")


def _language(sender: _Sender) -> str:
    return sender.client.language if sender.client is not None else "en"


def _who_has(
    phone: str, connection: Connection | None = None, since: datetime | None = None
) -> tuple[list[_Person], list[_Person], bool, list[tuple[Any, ...]]]:
    """Return the clients and every contact (archived too) who have this number, whether it
    is opted out, and given `since` the rows of replies._OPEN_OR_LATE for it (as fetched).

    One statement for what _people and consent.is_opted_out read (ix_clients_phone,
    ix_support_contacts_phone, the opt-out's primary key), in the same order, on the
    session's connection unless given one.
    """
    connection = connection if connection is not None else db.session.connection()
    statement, params = _WHO_HAS, {"phone": phone}
    if since is not None:
        statement, params = _WHO_HAS_AND_CHECKINS, {"phone": phone, "since": since}
    clients: list[_Person] = []
    contacts: list[_Person] = []
    checkin_rows: list[tuple[Any, ...]] = []
    opted_out = False
    for fetched in statement.fetch(connection, params):
        kind = fetched[0]
        if kind == "checkin":
            checkin_rows.append(tuple(fetched[_WHO_HAS_WIDTH:]))
            continue
        row = _Person._make(statement.process(connection, fetched)[:_WHO_HAS_WIDTH])
        if kind == "client":
            clients.append(row)
        elif kind == "contact":
            contacts.append(row)
        else:
            opted_out = True
    return clients, contacts, opted_out, checkin_rows


def _people(phone: str) -> tuple[list[Client], list[SupportContact], list[SupportContact]]:
    """Return the clients, the unarchived contacts and every contact who have this number.

    Like optout.people_at (same order), with the archived contacts kept apart for the
    check-in lookup; two indexed lookups (ix_clients_phone, ix_support_contacts_phone).
    """
    clients = list(db.session.scalars(_CLIENTS_AT, {"phone": phone}))
    every_contact = list(db.session.scalars(_CONTACTS_AT, {"phone": phone}))
    return clients, [c for c in every_contact if c.archived_at is None], every_contact


def _primary(clients: list[Any], to_number: str | None) -> Any:
    """Pick the client whose answers a number gets: active first, then our number's practice."""
    if not clients:
        return None
    if len(clients) == 1:
        return clients[0]

    def rank(client: Client) -> tuple[int, int]:
        practice = db.session.get(Practice, client.practice_id)
        ours = practice is not None and bool(to_number) and practice.sms_from_number == to_number
        return (client.status == "discharged", not ours)

    return sorted(clients, key=rank)[0]


def _region(phone: str) -> str | None:
    """Return the number's region, or its country code's main region for unassigned ranges."""
    region = region_of(phone)
    if region and region != "ZZ":
        return region
    try:
        code = phonenumbers.parse(phone, None).country_code
    except phonenumbers.NumberParseException:
        return None
    main = phonenumbers.region_code_for_country_code(code)
    return main if main != "ZZ" else None


def _e164(number: str, region: str) -> str:
    try:
        return normalize_phone(number, region)
    except PhoneError:
        return (number or "").strip()[:20]  # a short code or an alphanumeric sender


def _inbound_values(
    sender: _Sender, to_number: str | None, body: str, sid: str | None, now: datetime
) -> dict[str, Any]:
    """Return the columns of the inbound text's row."""
    client = sender.client or (sender.clients[0] if sender.clients else None)
    contact = None if client is not None else (sender.contacts[0] if sender.contacts else None)
    owner = client or contact
    return {
        "id": new_id("ms"),
        "practice_id": owner.practice_id if owner else None,
        "client_id": client.id if client else (contact.client_id if contact else None),
        "contact_id": contact.id if contact else None,
        "direction": "inbound",
        "to_number": (to_number or "")[:20],
        "from_number": sender.phone,
        "body": body,
        "purpose": "inbound",
        "status": "received",
        "provider_sid": sid,
        "attempts": 0,
        "segments": gsm.segments(body or ""),
        "created_at": now,
        "updated_at": now,
    }


def _store_rows(values: dict[str, Any], reply: dict[str, Any] | None) -> bool:
    """Insert the inbound row (unique by MessageSid) and its answer's; False if it existed.

    One INSERT .. ON CONFLICT (provider_sid) DO NOTHING RETURNING id where the database has
    it, with the answer's row in the same statement: the rows join the request's single
    transaction (no savepoint: on SQLite a savepoint opened before any write commits on
    release, which cost a second commit and let a failure after it keep a text that was
    never acted on). A replay's answer row, inserted beside nothing, is deleted again.
    """
    table = Message.__table__
    rows = [values] if reply is None else [{**_REPLY_ONLY, **values}, reply]
    sid = values["provider_sid"]
    connection = db.session.connection()
    if connection.dialect.name in _UPSERT_INSERTS:
        # Without a sid nothing can conflict: the same statement inserts the rows.
        params = {f"{key}_{n}": row.get(key) for n, row in enumerate(rows) for key in _STORED}
        stored = {id_ for (id_,) in _STORE_ONCE[len(rows)].rows(connection, params)}
        if sid is not None and values["id"] not in stored:  # rowcount is -1 on psycopg
            if reply is not None:
                db.session.execute(table.delete().where(table.c.id == reply["id"]))
            return False
    elif sid is None:
        db.session.execute(table.insert(), rows)
    else:  # another database: a savepoint catches the duplicate
        try:
            with db.session.begin_nested():
                db.session.execute(table.insert(), values)
        except IntegrityError:
            return False
        if reply is not None:
            db.session.execute(table.insert(), reply)
    return True


# The answer row's columns an inbound row leaves empty: one statement needs one key set.
_REPLY_ONLY = {"template": None, "idempotency_key": None, "send_after": None, "sent_at": None}
# The columns stored for an inbound text and its answer (_inbound_values, reply_values).
_STORED = (
    "id", "practice_id", "client_id", "contact_id", "direction", "to_number", "from_number",
    "body", "purpose", "status", "provider_sid", "attempts", "segments", "created_at",
    "updated_at", *_REPLY_ONLY,
)  # fmt: skip


def _store_once_statement(rows: int) -> RawStatement:
    """Build, per dialect, the INSERT of `rows` rows .. ON CONFLICT (provider_sid) DO NOTHING
    RETURNING id; its parameters are named `<column>_<row>`."""

    def build(dialect: str) -> Any:
        table = Message.__table__
        return (
            _UPSERT_INSERTS[dialect](table)
            .values(
                [
                    {key: bindparam(f"{key}_{n}", type_=table.c[key].type) for key in _STORED}
                    for n in range(rows)
                ]
            )
            .on_conflict_do_nothing(index_elements=[table.c.provider_sid])
            .returning(table.c.id)
        )

    return RawStatement(build)


_STORE_ONCE = {rows: _store_once_statement(rows) for rows in (1, 2)}


def _AUTOCOMMIT_STORE(engine: Any) -> bool:  # noqa: N802 - reads as the setting it is
    """Whether a text that only gets an answer is stored in autocommit (PostgreSQL).

    There, BEGIN and COMMIT are round trips of their own: one INSERT in autocommit stores
    the text and its answer, committed (durably: synchronous_commit) when it returns, in a
    third of the trips. SQLite has no round trips, and its writes queue on the write gate.
    """
    return engine.dialect.name == "postgresql"


@cache
def _autocommit(engine: Any) -> Any:
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _store_committed(
    connection: Connection, values: dict[str, Any], reply: dict[str, Any] | None
) -> bool:
    """_store_rows in one statement on a connection in autocommit; False if the text existed.

    The answer's row is inserted only beside the text's (the text's INSERT .. ON CONFLICT
    DO NOTHING as a CTE the answer's INSERT selects from), so a replay commits nothing.
    """
    rows = [values] if reply is None else [{**_REPLY_ONLY, **values}, reply]
    params = {f"{key}_{n}": row.get(key) for n, row in enumerate(rows) for key in _STORED}
    statement = _STORE_ONCE[1] if reply is None else _STORE_WITH_ANSWER
    return bool(statement.rows(connection, params))


def _store_with_answer_statement(dialect: str) -> Any:
    """INSERT the text .. ON CONFLICT (provider_sid) DO NOTHING as a CTE, and its answer
    from it: the answer's row exists only if the text's was inserted (PostgreSQL)."""
    table = Message.__table__
    text_row = _store_once_statement(1).statement(dialect).cte("stored_text")
    answer = select(
        *[bindparam(f"{key}_1", type_=table.c[key].type) for key in _STORED]
    ).select_from(text_row)
    return table.insert().from_select(list(_STORED), answer).returning(table.c.id)


_STORE_WITH_ANSWER = RawStatement(_store_with_answer_statement)


def _replay(sid: str | None) -> InboundResult | None:
    """Return the recorded outcome of an inbound text already handled, or None."""
    if not sid:
        return None
    inbound = db.session.scalar(
        select(Message).where(Message.provider_sid == sid, Message.direction == "inbound")
    )
    if inbound is None:
        return None
    answer = db.session.scalar(
        select(Message).where(Message.idempotency_key == f"reply:{inbound.id}")
    )
    return InboundResult(answer.body if answer else None, "replay", ("replayed",), inbound.id, True)
