"""Check-ins: re-planning after changes, replies, therapist corrections and open prompts."""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, bindparam, or_, select
from sqlalchemy.orm.attributes import set_committed_value

from service import alerts, quotas
from service.db import bound_list, db, in_bound
from service.escalation import occurrence_label
from service.events import append_events
from service.horizon import horizon_hours
from service.models import CheckIn, Client, Commitment, MeetingPlan, SupportContact
from service.planning import checkin_event_values, load_source, sync_source

logger = logging.getLogger(__name__)

ANSWERS = {"confirm": "confirmed", "decline": "declined"}
CORRECTIONS = ("confirmed", "declined", "excused")
# A reply this long after a prompt closed still counts as a late reply to it.
LATE_REPLY_WINDOW = timedelta(hours=24)
_NO_TIME = datetime.min
_LATE_COLUMNS = ("late_reply", "late_reply_at", "updated_at")
# Table columns for the batch reads: plain rows, no ORM entity or mapper work.
_CI, _CL, _SC = CheckIn.__table__.c, Client.__table__.c, SupportContact.__table__.c


def replan_source(source_type: str, source_id: str, *, now: datetime) -> None:
    """Re-plan the future check-ins of one meeting plan or commitment after it changed.

    Future unanswered check-ins are revised, cancelled (with an event) or revived; past and
    answered ones are never touched. A new source is planned up to the horizon.
    """
    source = load_source(source_type, source_id)
    if source is None:
        return
    client = db.session.get(Client, source.client_id)
    if client is None:
        return
    hi = max(source.planned_until or now, now + timedelta(hours=horizon_hours()))
    sync_source(source, client, now, hi, now=now)
    source.planned_until = hi


def replan_client(client_id: str, *, now: datetime) -> None:
    """Re-plan (or cancel) every future check-in of a client after a status change."""
    for model, source_type in ((MeetingPlan, "meeting_plan"), (Commitment, "commitment")):
        ids = db.session.scalars(select(model.id).where(model.client_id == client_id)).all()
        for source_id in ids:
            replan_source(source_type, source_id, now=now)


def record_reply(
    checkin: CheckIn, answer: str, *, responder: str, channel: str, now: datetime
) -> CheckIn:
    """Record a yes/no answer to a check-in; after it closed, record it as a late reply.

    By SMS only a prompted check-in can be answered; the dashboard and the API may also
    answer one not yet asked (a client telling their therapist early).
    """
    status = ANSWERS.get(answer)
    if status is None:
        raise ValueError(f"answer must be confirm or decline, not {answer!r}")
    db.session.flush()
    if checkin.status in _CLOSED:
        # Read closed (a late-reply candidate): one conditional UPDATE records the late
        # reply. Had it moved meanwhile, the general path below sees where it is now.
        late = {"late_reply": status, "late_reply_at": now, "updated_at": now}
        moved = db.session.execute(_RECORD_LATE, {"checkin_id": checkin.id, **late}).first()
        if moved is not None:
            set_committed_value(checkin, "status", moved[0])  # what the database holds
            for key, value in late.items():  # what the UPDATE wrote, without reading it back
                set_committed_value(checkin, key, value)
            _after_late_reply(checkin, status, channel, now)
            return checkin
    values = {
        "status": status,
        "responded_at": now,
        "responded_by": responder[:60],
        "channel": channel,
        "skip_reason": None,
        "updated_at": now,
    }
    answer_once = _ANSWER_BY_SMS if channel == "sms" else _ANSWER_BY_STAFF
    won = db.session.execute(answer_once, {"checkin_id": checkin.id, **values}).first()
    if won is not None:
        for key, value in values.items():  # what the UPDATE wrote, without reading it back
            set_committed_value(checkin, key, value)
        checkin_event(f"checkin.{status}", checkin, now, {"channel": channel})
        _after_outcome(checkin, now)
        return checkin
    db.session.refresh(checkin)  # someone or something moved it first: see where it is now
    if checkin.status in _CLOSED:
        checkin.late_reply = status
        checkin.late_reply_at = now
        checkin.updated_at = now
        _after_late_reply(checkin, status, channel, now)
    else:
        logger.info("reply to check-in %s ignored: it is %s", checkin.id, checkin.status)
    return checkin


def checkin_event(kind: str, row: CheckIn, now: datetime, extra: dict[str, object]) -> None:
    """Append a check-in event naming its source and local occurrence, as one Core INSERT.

    Not an ORM Event left to the unit of work: its flush (the object's state, the mapper's
    INSERT, the txid expression) cost a text's webhook 0.9 ms on PostgreSQL against 0.4 ms.
    Pending changes are flushed first, so the event keeps its place in the log.
    """
    append_events([checkin_event_values(kind, row, now, extra)])


def _after_late_reply(checkin: CheckIn, status: str, channel: str, now: datetime) -> None:
    """Record a late reply's event, lower the miss alert, let a late yes count toward a quota."""
    checkin_event("checkin.late_reply", checkin, now, {"answer": status, "channel": channel})
    alerts.lower_for_late_reply(checkin, status, now=now)
    if status == "confirmed":
        quotas.recheck_after_confirmation(checkin, now=now)


# A late reply is recorded on a check-in that closed unanswered.
_CLOSED = ("missed", "skipped")
_CHECKINS = CheckIn.__table__


def _update_if(states: tuple[str, ...], columns: tuple[str, ...], returning: Any) -> Any:
    """UPDATE these columns of check-in `checkin_id` if it is still in one of these states;
    RETURNING `returning` (no row when it has moved on). Built once (Core: the ORM's
    bulk-update path is not needed)."""
    return (
        _CHECKINS.update()
        .where(_CI.id == bindparam("checkin_id"), _CI.status.in_(states))
        .values({key: bindparam(key, type_=_CI[key].type) for key in columns})
        .returning(returning)
    )


_ANSWER_COLUMNS = ("status", "responded_at", "responded_by", "channel", "skip_reason", "updated_at")
_ANSWER_BY_SMS = _update_if(("prompted",), _ANSWER_COLUMNS, _CI.id)  # by SMS: prompted only
_ANSWER_BY_STAFF = _update_if(("prompted", "scheduled"), _ANSWER_COLUMNS, _CI.id)
# The late reply on a check-in still closed, RETURNING the status it has.
_RECORD_LATE = _update_if(_CLOSED, _LATE_COLUMNS, _CI.status)


def correct_checkin(
    checkin: CheckIn,
    *,
    status: str,
    note: str | None,
    actor: str,
    now: datetime,
    channel: str = "api",
) -> CheckIn:
    """Set a check-in's outcome as the therapist says it was (audited by the caller)."""
    if status not in CORRECTIONS:
        raise ValueError(f"status must be one of {', '.join(CORRECTIONS)}")
    previous = checkin.status
    if previous == status and (note is None or note == checkin.note):
        return checkin
    checkin.status = status
    if note is not None:
        checkin.note = note
    if status != "excused":
        checkin.responded_at = now
        checkin.responded_by = actor[:60]
        checkin.channel = channel
    checkin.updated_at = now
    unanswered = previous in ("scheduled", "prompted")
    kind = "checkin.excused" if unanswered and status == "excused" else "checkin.corrected"
    checkin_event(kind, checkin, now, {"from": previous, "to": status, "by": actor})
    if status in ("confirmed", "excused"):
        alerts.resolve_for_checkin(checkin, by=actor, now=now)
    if status == "confirmed":
        quotas.recheck_after_confirmation(checkin, now=now)
    return checkin


def _after_outcome(checkin: CheckIn, now: datetime) -> None:
    """Alert on a decline at once; let a confirmation count toward a weekly quota."""
    if checkin.status == "declined":
        client = db.session.get(Client, checkin.client_id)
        alerts.raise_alert(
            kind="declined",
            client=client,
            source_type=checkin.source_type,
            source_id=checkin.source_id,
            occurrence=occurrence_label(checkin.occurrence),
            detail={"checkin_id": checkin.id},
            now=now,
        )
    elif checkin.status == "confirmed":
        quotas.recheck_after_confirmation(checkin, now=now)


def prompts_to_phone_stmt(phone: str) -> Select[tuple[CheckIn]]:
    """Select the check-ins whose verifier (the client or a contact) has this number.

    A verifier is always a contact of the check-in's own client (plans.resolve_verifier), so
    the rows to read are those of the clients who have the number or whose contact has it,
    found through ix_clients_phone and ix_support_contacts_phone and then each client's own
    check-ins by index: the cost follows those clients, not every open prompt of every
    practice (an OR across the two joined phones made PostgreSQL scan them all).
    """
    client_ids = select(Client.id).where(Client.phone == phone)
    contact_ids = select(SupportContact.id).where(SupportContact.phone == phone)
    owners = client_ids.union_all(
        select(SupportContact.client_id).where(SupportContact.phone == phone)
    )
    return select(CheckIn).where(
        CheckIn.client_id.in_(owners),
        or_(
            and_(CheckIn.verifier_contact_id.is_(None), CheckIn.client_id.in_(client_ids)),
            CheckIn.verifier_contact_id.in_(contact_ids),
        ),
    )


def open_prompts_for(phone: str, now: datetime) -> list[CheckIn]:
    """Return the prompted check-ins this number may answer, oldest prompt first.

    Each carries its `prompt_code` when the number has more than one open prompt.
    """
    stmt = prompts_to_phone_stmt(phone).where(CheckIn.status == "prompted")
    return list(db.session.scalars(stmt.order_by(CheckIn.prompted_at, CheckIn.id)))


def open_prompt_codes_for_phones(phones: Iterable[str]) -> dict[str, list[tuple[str, str | None]]]:
    """Return (id, prompt_code) of each number's open prompts, oldest prompt first.

    The batch form of `open_prompts_for` for the prompt sweep, which needs only the codes:
    per chunk of numbers, the clients and contacts who have them (by their phone indexes),
    then those clients' prompted check-ins (by ix_checkins_client_status_updated).
    """
    wanted = sorted(set(phones))
    found: dict[str, list[tuple[str, str | None]]] = {phone: [] for phone in wanted}
    dialect = "postgresql" if db.session.get_bind().dialect.name == "postgresql" else "sqlite"
    reads = _codes_reads(dialect)
    for start in range(0, len(wanted), 1000):
        chunk = bound_list(dialect, wanted[start : start + 1000])
        client_phone: dict[str, str] = dict(
            db.session.execute(reads["clients"], {"keys": chunk}).all()
        )
        contact_phone: dict[str, str] = {}
        owners = set(client_phone)
        for contact_id, client_id, phone in db.session.execute(reads["contacts"], {"keys": chunk}):
            contact_phone[contact_id] = phone
            owners.add(client_id)
        if not owners:
            continue
        prompted = db.session.execute(
            reads["prompted"], {"keys": bound_list(dialect, sorted(owners))}
        )
        rows = []
        for row_id, code, verifier, client_id, prompted_at in prompted:
            phone = (
                contact_phone.get(verifier) if verifier is not None else client_phone.get(client_id)
            )
            if phone is not None:
                rows.append((prompted_at is None, prompted_at or _NO_TIME, row_id, code, phone))
        # ORDER BY prompted_at, id as the per-number query does (a prompted row has its time).
        rows.sort(key=lambda r: r[:3])
        for _, _, row_id, code, phone in rows:
            found[phone].append((row_id, code))
    return found


@functools.cache
def _codes_reads(dialect: str) -> dict[str, Select[Any]]:
    """`open_prompt_codes_for_phones`' reads, built once per dialect with the list bound as
    `keys` (the statements `id_in` makes, neither rebuilt nor cache-keyed per call)."""
    return {
        "clients": select(_CL.id, _CL.phone).where(in_bound(_CL.phone, "keys", dialect)),
        "contacts": select(_SC.id, _SC.client_id, _SC.phone).where(
            in_bound(_SC.phone, "keys", dialect)
        ),
        "prompted": select(
            _CI.id, _CI.prompt_code, _CI.verifier_contact_id, _CI.client_id, _CI.prompted_at
        ).where(_CI.status == "prompted", in_bound(_CI.client_id, "keys", dialect)),
    }


def late_reply_candidates(phone: str, now: datetime) -> list[CheckIn]:
    """Return check-ins this number was asked about that closed as missed in the last day."""
    stmt = prompts_to_phone_stmt(phone).where(
        CheckIn.status == "missed",
        CheckIn.prompted_at.is_not(None),
        CheckIn.closes_at >= now - LATE_REPLY_WINDOW,
    )
    return list(db.session.scalars(stmt.order_by(CheckIn.closes_at.desc(), CheckIn.id)))
