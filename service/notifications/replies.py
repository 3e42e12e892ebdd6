"""What an answer to an inbound text does: close the right check-in, or help with an urge."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

from psycopg.pq import ExecStatus
from sqlalchemy import Connection, and_, bindparam, literal_column, or_, select, union_all
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from service import consent
from service.checkins import (
    LATE_REPLY_WINDOW,
    late_reply_candidates,
    open_prompts_for,
    record_reply,
)
from service.db import db, new_id
from service.models import CheckIn, Client, Message, SupportContact
from service.notifications import grammar, gsm
from service.notifications.templates import render
from service.outbox import enqueue_message
from service.schedule import get_zone

logger = logging.getLogger(__name__)
_C = TypeVar("_C")  # a CheckIn, or a Candidate (its prompt_code is what is read)

# "Can you call them now?" is worth sending for this long after the client asked.
URGE_REQUEST_LIFETIME = timedelta(minutes=30)


def responder_of(checkin: CheckIn) -> str:
    """Return who answered a check-in by text, as a subject key (never the phone number)."""
    if checkin.verifier_contact_id:
        return f"contact:{checkin.verifier_contact_id}"
    return f"client:{checkin.client_id}"


def pick_checkin(
    open_prompts: list[_C], late: list[_C], code: str | None
) -> tuple[_C | None, list[str]]:
    """Choose the check-in an answer is for; else return the open codes to ask about.

    With a code, only the prompt carrying it (open, else closed within the late window);
    without, the one open prompt, else the one late candidate. Never a guess.
    """
    codes = [p.prompt_code.upper() for p in open_prompts if p.prompt_code]
    if code is not None:
        for row in (*open_prompts, *late):
            if (row.prompt_code or "").upper() == code.upper():
                return row, []
        return None, codes
    if len(open_prompts) == 1:
        return open_prompts[0], []
    if open_prompts:
        return None, codes
    if len(late) == 1:
        return late[0], []
    return None, []


def answer_prompt(
    phone: str,
    reply: grammar.Reply,
    intent: str,
    now: datetime,
    language: str,
    *,
    candidates: tuple[list[CheckIn], list[CheckIn]] | None = None,
) -> tuple[str | None, str | None, str]:
    """Record a 1/2 answer on the right check-in; return (template, answer, action).

    `candidates`: (open prompts, late-reply candidates) of the number when the caller has
    read them already (answerable_checkins); else they are read here.
    """
    if candidates is None:
        candidates = open_prompts_for(phone, now), late_reply_candidates(phone, now)
    open_prompts, late = candidates
    row, codes = pick_checkin(open_prompts, late, reply.code)
    if row is not None:
        record_reply(row, intent, responder=responder_of(row), channel="sms", now=now)
        return None, None, "confirmed" if intent == grammar.CONFIRM else "declined"
    if codes:
        return "clarify_codes", render("clarify_codes", language, codes=codes), "clarify"
    return "didnt_understand", render("didnt_understand", language), "nothing_open"


class RawStatement:
    """A Core statement compiled once per dialect and run as SQL text on the session's connection.

    For the webhook's few indexed lookups and its insert, SQLAlchemy's per-execution work
    (the statement's cache key, the ORM's compile state, an execution context, result
    metadata) costs several times what the database spends on them. This keeps, per
    dialect, the statement's SQL text, its parameters' order, defaults and bind processors,
    and its result columns' processors, and runs it on the DBAPI cursor of the given
    connection (the session's: inside the request's transaction). Values go in and come out
    processed as a Core execution would process them. Driver errors go through SQLAlchemy's
    own handler (wrapped in DBAPIError, the pool invalidated on a disconnect), as any
    execution's would. When something listens to the connection's executions, the same SQL
    and arguments go through Connection.exec_driver_sql instead, so it sees them.
    """

    def __init__(self, build: Callable[[str], Any]) -> None:
        self._build = build  # dialect name -> the Core statement
        self._forms: dict[tuple[str, str, str], Any] = {}

    def statement(self, dialect_name: str) -> Any:
        """The Core statement for a dialect (tests compare the two ways of running it)."""
        return self._build(dialect_name)

    def _form(self, dialect: Any) -> Any:
        key = (dialect.name, dialect.driver, dialect.paramstyle)
        form = self._forms.get(key)
        if form is None:
            statement = self._build(dialect.name)
            compiled = statement.compile(dialect=dialect)
            sql = compiled.string
            if "POSTCOMPILE" in sql or compiled.insert_prefetch or compiled.update_prefetch:
                # Expanding parameters, or column defaults an execution context would compute.
                raise ValueError("a raw statement's SQL and parameters must be final")
            defaults = compiled.construct_params(_check=False)
            processors = {}
            for name in defaults:
                process = compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
                if process is not None:
                    processors[name] = process
            results = [
                entry.type.dialect_impl(dialect).result_processor(dialect, None)
                for entry in compiled._result_columns
            ]
            order = tuple(compiled.positiontup) if compiled.positiontup is not None else None
            form = (statement, sql, defaults, processors, order, results)
            self._forms[key] = form
        return form

    def rows(self, connection: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run with params on the connection; return every row's values, processed."""
        return [self.process(connection, row) for row in self.fetch(connection, params)]

    def fetch(self, connection: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Run with params on the connection; return the rows as the driver gives them (for
        `process`, or `process_column` for a few of their columns)."""
        _, sql, defaults, processors, order, _ = self._form(connection.dialect)
        values = {**defaults, **params}
        for name, process in processors.items():
            values[name] = process(values[name])
        args: Any = tuple(values[name] for name in order) if order is not None else values
        if _listened(connection):  # the same SQL and arguments, through SQLAlchemy
            result = connection.exec_driver_sql(sql, args)
            return [tuple(row) for row in result] if result.returns_rows else []
        cursor = connection.connection.cursor()
        try:
            cursor.execute(sql, args)
            return cursor.fetchall() if _returns_rows(cursor) else []
        except connection.dialect.loaded_dbapi.Error as exc:
            # Wraps in DBAPIError (connection_invalidated on a disconnect) and raises.
            connection._handle_dbapi_exception(exc, sql, args, cursor, None)
            raise  # not reached
        finally:
            cursor.close()

    def process(self, connection: Connection | Any, row: tuple[Any, ...]) -> tuple[Any, ...]:
        """Return a fetched row's values as a Core execution returns them (`connection`:
        anything with the dialect it was fetched with, an Engine too)."""
        results = self._form(connection.dialect)[5]
        return tuple(value if process is None else process(value)
                     for process, value in zip(results, row, strict=True))  # fmt: skip

    def process_column(self, connection: Connection, row: tuple[Any, ...], index: int) -> Any:
        """Return one column of a fetched row as a Core execution returns it."""
        process = self._form(connection.dialect)[5][index]
        return row[index] if process is None else process(row[index])


def _returns_rows(cursor: Any) -> bool:
    """`cursor.description is not None`, without building it: psycopg makes a Column object
    for every column each time `description` is read (0.3 ms for the webhook's 39-column
    read of the people and check-ins at a number, a tenth of the text's CPU)."""
    result = getattr(cursor, "pgresult", None)  # psycopg's last result; sqlite3 has none
    if result is None:
        return cursor.description is not None
    return bool(result.nfields) or result.status in _TUPLES


# The statuses for which psycopg's cursor.description is not None (besides any nfields).
_TUPLES = frozenset({ExecStatus.TUPLES_OK, ExecStatus.SINGLE_TUPLE, ExecStatus.TUPLES_CHUNK})


def _listened(connection: Connection) -> bool:
    """Whether anything listens to the connection's executions (tests counting statements,
    tracing): a RawStatement runs through Connection.exec_driver_sql then, so they see it."""
    dispatch = connection.dispatch
    return bool(
        dispatch.before_cursor_execute
        or dispatch.after_cursor_execute
        or dispatch.before_execute
        or dispatch.after_execute
    )


_checkins = CheckIn.__table__
_CHECKIN_KEYS = tuple(column.key for column in _checkins.c)


def _open_or_late(_dialect: str) -> Any:
    """Every column of the prompted and recently missed check-ins of the clients at a number.

    The clients whose check-ins a number may answer: those who have it, and those of the
    contacts (archived ones too) who have it (ix_clients_phone, ix_support_contacts_phone).
    Their check-ins by (client, status) through ix_checkins_client_status_updated:
    proportional to those clients' open and missed check-ins, not to every open prompt of
    every practice (the status list is what lets the index seek; an OR of the two cases
    made SQLite scan every prompted check-in instead).
    """
    clients, contacts = Client.__table__, SupportContact.__table__
    phone = bindparam("phone", type_=clients.c.phone.type)
    people = union_all(
        select(clients.c.id).where(clients.c.phone == phone),
        select(contacts.c.client_id).where(contacts.c.phone == phone),
    )
    status = _checkins.c.status
    return select(*_checkins.c).where(
        _checkins.c.client_id.in_(people),
        status.in_([literal_column("'prompted'"), literal_column("'missed'")]),
        or_(
            status == literal_column("'prompted'"),
            and_(
                _checkins.c.prompted_at.is_not(None),
                _checkins.c.closes_at >= bindparam("since", type_=_checkins.c.closes_at.type),
            ),
        ),
    )


_OPEN_OR_LATE = RawStatement(_open_or_late)


class Candidate(NamedTuple):
    """A check-in a number may answer, as read: what choosing among them needs, and its
    row (`checkin` makes the CheckIn of the one chosen)."""

    id: str
    status: str
    prompt_code: str | None
    prompted_at: datetime | None
    closes_at: datetime | None
    row: tuple[Any, ...]  # every column, as the driver gave them

    def checkin(self) -> CheckIn:
        """Return the session's CheckIn for this row, as a query would load it."""
        # The bind for its dialect: no connection is checked out for this.
        processed = _OPEN_OR_LATE.process(db.session.get_bind(), self.row)
        values = dict(zip(_CHECKIN_KEYS, processed, strict=True))
        return loaded_checkin(db.session(), values)


_I = {key: index for index, key in enumerate(_CHECKIN_KEYS)}


def answerable_candidates(
    clients: list[Any], contacts: list[Any], now: datetime, phone: str
) -> tuple[list[Candidate], list[Candidate]]:
    """Return, as Candidates, the rows answerable_checkins returns (same lists, same order).

    `clients` and `contacts` are those who have `phone` (every contact, archived or not).
    """
    if not clients and not contacts:
        return [], []
    connection = db.session.connection()
    params = {"phone": phone, "since": now - LATE_REPLY_WINDOW}
    rows = _OPEN_OR_LATE.fetch(connection, params)
    return candidates_from(rows, clients, contacts, now, connection)


def candidates_from(
    rows: list[tuple[Any, ...]],
    clients: list[Any],
    contacts: list[Any],
    now: datetime,
    connection: Connection,
) -> tuple[list[Candidate], list[Candidate]]:
    """Return answerable_candidates' lists from the rows of _OPEN_OR_LATE (as fetched on
    `connection`) for the number of these clients and contacts."""
    client_ids = {c.id for c in clients}
    contact_ids = {c.id for c in contacts}
    open_prompts: list[Candidate] = []
    late: list[Candidate] = []
    statement = _OPEN_OR_LATE
    for row in rows:
        verifier = row[_I["verifier_contact_id"]]
        if verifier in contact_ids if verifier else row[_I["client_id"]] in client_ids:
            candidate = Candidate(
                row[_I["id"]],
                row[_I["status"]],
                row[_I["prompt_code"]],
                statement.process_column(connection, row, _I["prompted_at"]),
                statement.process_column(connection, row, _I["closes_at"]),
                row,
            )
            (open_prompts if candidate.status == "prompted" else late).append(candidate)
    # ORDER BY prompted_at, id and ORDER BY closes_at DESC, id (check-in ids are unique).
    open_prompts.sort(key=lambda r: (r.prompted_at is not None, r.prompted_at or now, r.id))
    late.sort(key=lambda r: r.id)
    late.sort(key=lambda r: r.closes_at, reverse=True)
    return open_prompts, late


def answerable_checkins(
    clients: list[Any], contacts: list[Any], now: datetime, phone: str | None = None
) -> tuple[list[CheckIn], list[CheckIn]]:
    """Return (open_prompts_for, late_reply_candidates) of the number these people share.

    The same rows in the same order as those two (a check-in answered by its client when it
    has no verifier, else by its verifier contact), given the clients and every contact,
    archived or not, who have the number (`phone`: that number; else the first person's).
    A verifier is always a contact of the check-in's client (plans.resolve_verifier), so
    the check-ins to read are those of the clients at the number and of its contacts'.
    """
    if not clients and not contacts:
        return [], []
    if phone is None:
        phone = (clients or contacts)[0].phone
    open_prompts, late = answerable_candidates(clients, contacts, now, phone)
    return [c.checkin() for c in open_prompts], [c.checkin() for c in late]


def loaded_checkin(session: Any, row: Mapping[str, Any]) -> CheckIn:
    """Return the session's CheckIn for a row of all its columns, as a query would load it.

    The instance already in the session's identity map when there is one (its expired or
    unloaded columns set from the row, its pending changes kept, as an ORM load would);
    else a new persistent instance whose columns are the row's, clean, in the identity map.
    """
    key = CheckIn.__mapper__.identity_key_from_primary_key((row["id"],))
    existing = session.identity_map.get(key)
    if existing is not None:
        state = existing._sa_instance_state
        for name in state.unloaded.intersection(_CHECKIN_KEYS):
            set_committed_value(existing, name, row[name])
        return existing
    checkin = CheckIn(**row)
    make_transient_to_detached(checkin)
    session.add(checkin)
    return checkin


def first_sponsor(client: Client) -> SupportContact | None:
    """Return the client's first sponsor still in their network."""
    return db.session.scalar(
        select(SupportContact)
        .where(
            SupportContact.client_id == client.id,
            SupportContact.role == "sponsor",
            SupportContact.archived_at.is_(None),
        )
        .order_by(SupportContact.created_at, SupportContact.id)
        .limit(1)
    )


def urge_answer(client: Client, inbound: Message, now: datetime) -> tuple[str, str]:
    """Answer URGE with the coping plan and the sponsor's number; ask the sponsor to call."""
    sponsor = first_sponsor(client)
    text = render(
        "urge_client",
        client.language,
        plan=client.coping_plan or "",
        sponsor_name=sponsor.display_name if sponsor else None,
        sponsor_phone=sponsor.phone if sponsor else None,
    )
    if sponsor is not None and _may_ask(sponsor, client, now):
        enqueue_message(
            practice_id=client.practice_id,
            to=sponsor.phone,
            # A contact learns the client's initial only; the `urge` scope was checked.
            body=render("urge_sponsor_request", "en", client_name=client.display_name),
            purpose="urge_request",
            template="urge_sponsor_request",
            idempotency_key=f"urge:{inbound.id}:{sponsor.id}",
            now=now,
            client_id=client.id,
            contact_id=sponsor.id,
            expires_at=now + URGE_REQUEST_LIFETIME,
        )
    return "urge_client", text


def _may_ask(sponsor: SupportContact, client: Client, now: datetime) -> bool:
    zone = sponsor.timezone or client.timezone
    today = now.astimezone(get_zone(zone)).date()
    return (
        not consent.is_opted_out(sponsor.phone)
        and consent.sms_consent_granted(sponsor)
        and consent.disclosure_allows(sponsor, "urge", today)
    )


def reply_values(
    inbound: Mapping[str, Any] | Message, answer: str, template: str | None, now: datetime
) -> dict[str, Any]:
    """Return the columns of the outbound `reply` row for an answer sent in the webhook response.

    `inbound`: the inbound text's row, or its columns as inserted.
    """
    if isinstance(inbound, Message):
        inbound = {c: getattr(inbound, c) for c in _INBOUND_COLUMNS}
    return {
        "id": new_id("ms"),
        "practice_id": inbound["practice_id"],
        "client_id": inbound["client_id"],
        "contact_id": inbound["contact_id"],
        "direction": "outbound",
        "to_number": inbound["from_number"] or "",
        "from_number": inbound["to_number"] or None,
        "body": answer,
        "purpose": "reply",
        "provider_sid": None,
        "template": template,
        "idempotency_key": f"reply:{inbound['id']}",
        "status": "sent",
        "attempts": 1,
        "segments": gsm.segments(answer),
        "send_after": now,
        "sent_at": now,
        "created_at": now,
        "updated_at": now,
    }


_INBOUND_COLUMNS = ("id", "practice_id", "client_id", "contact_id", "from_number", "to_number")


def reply_row(inbound: Message, answer: str, template: str | None, now: datetime) -> Message:
    """Return the outbound `reply` row for an answer sent in the webhook response itself."""
    return Message(**reply_values(inbound, answer, template, now))
