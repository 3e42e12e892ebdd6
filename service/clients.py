"""Clients: creation, changes, pausing, reassignment and discharge (no commits here)."""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from service import checkins, consent
from service.db import db, new_id
from service.errors import Conflict, Invalid
from service.events import append_event
from service.models import Client, Therapist
from service.schedule import get_zone

logger = logging.getLogger(__name__)

# Columns whose change can move or stop future texts, so the check-ins are re-planned.
_REPLAN_FIELDS = frozenset(
    {"status", "paused_until", "timezone", "quiet_start", "quiet_end", "phone", "language"}
)
WRITABLE = (
    "display_name", "phone", "timezone", "language", "recovery_path", "sobriety_date",
    "stage_of_change", "current_step", "coping_plan", "quiet_start", "quiet_end", "discreet",
    "status", "paused_until",
)  # fmt: skip


def local_today(zone: str, now: datetime) -> date:
    """Return today's date in the IANA zone `zone`."""
    return now.astimezone(get_zone(zone)).date()


def create_client(
    *,
    practice_id: str,
    therapist: Therapist,
    values: dict[str, Any],
    sms_consent: dict[str, Any],
    recorded_by: str | None,
    now: datetime,
) -> Client:
    """Create a client (and their first SMS consent version when consent was given)."""
    if values.get("status") == "discharged":
        raise Invalid("status", "a new client cannot start discharged")
    _check_therapist(therapist, practice_id)
    client = Client(
        id=new_id("cl"),
        practice_id=practice_id,
        therapist_id=therapist.id,
        created_at=now,
        updated_at=now,
        revision=0,
        **{key: values[key] for key in WRITABLE if key in values},
    )
    db.session.add(client)
    db.session.flush()
    if sms_consent.get("granted"):
        consent.record_sms_consent(
            practice_id=practice_id,
            subject=client,
            granted=True,
            method=sms_consent.get("method"),
            recorded_by=recorded_by,
            now=now,
        )
    append_event(
        "client.created", now=now, practice_id=practice_id, client_id=client.id,
        subject_type="client", subject_id=client.id,
    )  # fmt: skip
    checkins.replan_client(client.id, now=now)
    return client


def update_client(
    client: Client,
    *,
    values: dict[str, Any],
    sms_consent: dict[str, Any] | None,
    recorded_by: str | None,
    now: datetime,
) -> list[str]:
    """Apply changed fields; `sms_consent` (only when the caller sent it) may add a version."""
    changed = [key for key in WRITABLE if key in values and getattr(client, key) != values[key]]
    old_status = client.status
    for key in changed:
        setattr(client, key, values[key])
    if "status" in changed:
        if client.status == "discharged":
            client.discharged_at = now
            client.paused_until = None
        elif old_status == "discharged":
            client.discharged_at = None
    consent_changed = False
    if sms_consent is not None:
        consent_changed = (
            consent.set_sms_consent(
                subject=client,
                granted=bool(sms_consent.get("granted")),
                method=sms_consent.get("method"),
                recorded_by=recorded_by,
                now=now,
            )
            is not None
        )
    if not changed and not consent_changed:
        return []
    client.updated_at = now
    client.revision = (client.revision or 0) + 1
    if changed:
        append_event(
            "client.discharged" if client.status == "discharged" and "status" in changed
            else "client.updated",
            now=now, practice_id=client.practice_id, client_id=client.id,
            subject_type="client", subject_id=client.id, payload={"fields": changed},
        )  # fmt: skip
    if consent_changed or _REPLAN_FIELDS.intersection(changed):
        checkins.replan_client(client.id, now=now)
    return changed + (["sms_consent"] if consent_changed else [])


def discharge_client(client: Client, *, now: datetime) -> bool:
    """Discharge a client: the record stays, future texts stop. Return False if already done."""
    if client.status == "discharged":
        return False
    update_client(
        client, values={"status": "discharged"}, sms_consent=None, recorded_by=None, now=now
    )
    return True


def reassign_client(client: Client, therapist: Therapist, *, now: datetime) -> bool:
    """Move a client to another active therapist of the same practice."""
    _check_therapist(therapist, client.practice_id)
    if client.therapist_id == therapist.id:
        return False
    previous = client.therapist_id
    client.therapist_id = therapist.id
    client.updated_at = now
    client.revision = (client.revision or 0) + 1
    append_event(
        "client.reassigned", now=now, practice_id=client.practice_id, client_id=client.id,
        subject_type="client", subject_id=client.id,
        payload={"from": previous, "to": therapist.id},
    )  # fmt: skip
    # Alerts and digests go to the client's therapist, so future sends may change.
    checkins.replan_client(client.id, now=now)
    return True


def _check_therapist(therapist: Therapist | None, practice_id: str) -> None:
    if therapist is None or therapist.practice_id != practice_id:
        raise Invalid("therapist_id", "no therapist with this id in your practice")
    if not therapist.active:
        raise Invalid("therapist_id", "this therapist is deactivated")


def require_open(client: Client) -> None:
    """Refuse adding to the plan of a discharged client."""
    if client.status == "discharged":
        raise Conflict("this client is discharged; re-admit them (status active) first")
