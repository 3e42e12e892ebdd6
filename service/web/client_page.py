"""A client's page: profile, network and consents, plan, charts, messages, feed and audit trail."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from flask import render_template
from sqlalchemy import select

from service import consent
from service.db import db
from service.models import (
    Activity,
    AuditEntry,
    CheckIn,
    Client,
    Commitment,
    Meeting,
    MeetingPlan,
    Message,
    SupportContact,
    Therapist,
)
from service.models.vocab import (
    ACTIVITY_KINDS,
    CLIENT_STATUSES,
    COMMITMENT_KINDS,
    CONSENT_METHODS,
    CONTACT_ROLES,
    DISCLOSURE_SCOPES,
    LANGUAGES,
    RECOVERY_PATHS,
    STAGES_OF_CHANGE,
)
from service.serialize import client_dict
from service.serialize_plans import commitment_dict, plan_dict
from service.web import charts, feedlinks, queries
from service.web.base import (
    audit,
    bp,
    client_or_404,
    is_admin,
    local_today,
    now,
    practice_therapists,
)
from service.web.forms import flatten

logger = logging.getLogger(__name__)

CHOICES = {
    "statuses": CLIENT_STATUSES, "paths": RECOVERY_PATHS, "stages": STAGES_OF_CHANGE,
    "languages": LANGUAGES, "methods": CONSENT_METHODS, "roles": CONTACT_ROLES,
    "scopes": DISCLOSURE_SCOPES, "commitment_kinds": COMMITMENT_KINDS,
    "activity_kinds": ACTIVITY_KINDS,
}  # fmt: skip
RRULE_PRESETS = (
    ("FREQ=DAILY", "Every day"),
    ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "Weekdays"),
    ("FREQ=WEEKLY", "Once a week (quota)"),
    ("FREQ=WEEKLY;BYDAY=SU", "Sundays"),
)
MESSAGE_LIMIT = 50
AUDIT_LIMIT = 50


def _contacts(client: Client, today: Any) -> list[dict[str, Any]]:
    rows = db.session.scalars(
        select(SupportContact)
        .where(SupportContact.client_id == client.id, SupportContact.archived_at.is_(None))
        .order_by(SupportContact.created_at)
    )
    out = []
    for contact in rows:
        latest = consent.latest_disclosure(contact)
        shown = latest if latest is not None and latest.revoked_at is None else None
        sms = consent.latest_sms_consent(contact)
        out.append({
            "contact": contact,
            "sms_granted": consent.sms_consent_granted(contact),
            "sms_method": sms.method if sms is not None else None,
            "opted_out": consent.is_opted_out(contact.phone),
            "disclosure": shown,
            "disclosure_in_effect": consent.disclosure_in_effect(shown, today),
        })  # fmt: skip
    return out


def _plan_values(
    client: Client, plans: list[MeetingPlan], commitments: list[Commitment]
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for plan in plans:
        values[f"plan:{plan.id}"] = flatten(plan_dict(plan))
    for commitment in commitments:
        values[f"commitment:{commitment.id}"] = flatten(commitment_dict(commitment, client))
    return values


def render_client(
    client: Client,
    *,
    errors: dict[str, dict[str, list[str]]] | None = None,
    values: dict[str, dict[str, Any]] | None = None,
    status: int = 200,
) -> tuple[str, int]:
    """Render the client page; a form that failed shows its errors and the submitted values."""
    today = local_today(client.timezone)
    first, last = queries.weeks_window(today)
    days = queries.day_counts(client, first, last)
    weeks = queries.meetings_per_week(client, first)
    target = queries.meeting_target(client)
    plans = list(db.session.scalars(
        select(MeetingPlan).where(MeetingPlan.client_id == client.id, MeetingPlan.archived_at.is_(None))
        .order_by(MeetingPlan.created_at)
    ))  # fmt: skip
    commitments = list(db.session.scalars(
        select(Commitment).where(Commitment.client_id == client.id, Commitment.archived_at.is_(None))
        .order_by(Commitment.created_at)
    ))  # fmt: skip
    activities = list(db.session.scalars(
        select(Activity).where(Activity.client_id == client.id)
        .order_by(Activity.starts_at.desc()).limit(20)
    ))  # fmt: skip
    messages = list(db.session.scalars(
        select(Message).where(Message.client_id == client.id)
        .order_by(Message.created_at.desc()).limit(MESSAGE_LIMIT)
    ))  # fmt: skip
    trail = list(db.session.scalars(
        select(AuditEntry).where(AuditEntry.client_id == client.id)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(AUDIT_LIMIT)
    ))  # fmt: skip
    recent = list(db.session.scalars(
        select(CheckIn).where(
            CheckIn.client_id == client.id,
            CheckIn.status.in_(("confirmed", "declined", "missed", "excused", "prompted")),
        ).order_by(CheckIn.event_at.desc()).limit(15)
    ))  # fmt: skip
    directory = list(db.session.scalars(
        select(Meeting).where(
            Meeting.practice_id == client.practice_id, Meeting.active.is_(True),
            Meeting.day.is_not(None), Meeting.time.is_not(None),
        ).order_by(Meeting.day, Meeting.time, Meeting.name)
    ))  # fmt: skip
    contacts = _contacts(client, today)
    therapists = {t.id: t.name for t in db.session.scalars(
        select(Therapist).where(Therapist.practice_id == client.practice_id))}  # fmt: skip
    names = {c["contact"].id: c["contact"].display_name for c in contacts}
    source_names = {p.id: p.meeting.name for p in plans} | {c.id: c.title for c in commitments}
    base_values = {
        "profile": flatten(client_dict(client)),
        **_plan_values(client, plans, commitments),
    }
    base_values.update(values or {})
    sms = consent.latest_sms_consent(client)
    summary = queries.client_rows([client], now=now(), today={client.timezone: today})[0]
    html = render_template(
        "client.html",
        client=client,
        today=today,
        summary=summary,
        shows_step=queries.shows_step(client),
        open_client=client.status != "discharged",
        sms_granted=consent.sms_consent_granted(client),
        sms_method=sms.method if sms is not None else None,
        contacts=contacts,
        contact_names=names,
        verifiers=[("self", "The client (self-report)")]
        + [
            (c["contact"].id, f"{c['contact'].display_name} ({c['contact'].role})")
            for c in contacts
            if c["contact"].can_confirm and c["sms_granted"]
        ],
        plans=plans,
        commitments=commitments,
        activities=activities,
        messages=messages,
        trail=trail,
        recent=recent,
        source_names=source_names,
        directory=directory,
        therapists=therapists,
        colleagues=practice_therapists() if is_admin() else [],
        heatmap=charts.heatmap_svg([(d.day, d.counts) for d in days], today=today),
        legend=charts.legend_items(),
        meetings_chart=charts.meetings_chart_svg(weeks, target=target),
        target=target,
        feed=feedlinks.current(client),
        errors=errors or {},
        values=base_values,
        rrule_presets=RRULE_PRESETS,
        default_start=(today + timedelta(days=1)).isoformat() + "T17:00",
        **CHOICES,
    )
    return html, status


@bp.route("/clients/<client_id>")
def client_page(client_id: str) -> tuple[str, int]:
    """Show everything about one client (and record that it was seen)."""
    client = client_or_404(client_id)
    audit("dashboard.client.view", client_id=client.id, subject_type="client", subject_id=client.id)
    db.session.commit()
    return render_client(client)
