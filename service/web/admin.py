"""Practice administration: the practice's therapists, caseload moves and set-password links."""

from __future__ import annotations

import logging
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from service.clients import reassign_client
from service.db import db
from service.errors import Invalid
from service.models import Client, Therapist
from service.web.base import audit, bp, client_or_404, is_admin, me, now, settings
from service.web.tokens import make_link_token

logger = logging.getLogger(__name__)


def _require_admin() -> None:
    if not is_admin():
        abort(403)


def set_password_url(therapist: Therapist) -> str:
    """Return an absolute set-password link for a therapist (valid 24 hours, once)."""
    token = make_link_token(therapist, secret_key=settings().SECRET_KEY, now=now())
    return f"{settings().PUBLIC_BASE_URL}/set-password/{token}"


@bp.route("/admin/therapists")
def admin_therapists() -> str:
    """List the practice's therapists with their caseloads, and move clients between them."""
    _require_admin()
    practice_id = me().practice_id
    therapists = list(db.session.scalars(
        select(Therapist).where(Therapist.practice_id == practice_id).order_by(Therapist.name)
    ))  # fmt: skip
    counts = dict(db.session.execute(
        select(Client.therapist_id, func.count()).where(
            Client.practice_id == practice_id, Client.status != "discharged"
        ).group_by(Client.therapist_id)
    ).all())  # fmt: skip
    clients = list(db.session.scalars(
        select(Client).where(Client.practice_id == practice_id, Client.status != "discharged")
        .order_by(Client.display_name)
    ))  # fmt: skip
    audit("dashboard.admin.therapists.view", detail={"clients": len(clients)})
    db.session.commit()
    return render_template(
        "admin_therapists.html", therapists=therapists, counts=counts, clients=clients,
        names={t.id: t.name for t in therapists}, link=None,
    )  # fmt: skip


@bp.route("/admin/reassign", methods=["POST"])
def admin_reassign() -> Any:
    """Move a client to another therapist of the same practice."""
    _require_admin()
    client = client_or_404(request.form.get("client_id", "")[:40])
    target = db.session.get(Therapist, request.form.get("therapist_id", "")[:40])
    if target is None:
        abort(404)
    try:
        moved = reassign_client(client, target, now=now())
    except Invalid as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("web.admin_therapists"))
    if moved:
        audit(
            "dashboard.client.reassign",
            client_id=client.id,
            subject_type="client",
            subject_id=client.id,
            detail={"to": target.id},
        )
        db.session.commit()
        flash(f"{client.display_name} is now {target.name}'s client.", "success")
    else:
        flash(f"{client.display_name} is already {target.name}'s client.", "info")
    return redirect(
        request.referrer if _same_site(request.referrer) else url_for("web.admin_therapists")
    )


def _same_site(target: str | None) -> bool:
    return bool(target) and target.startswith(request.host_url)  # type: ignore[union-attr]


@bp.route("/admin/therapists/<therapist_id>/password-link", methods=["POST"])
def admin_password_link(therapist_id: str) -> str:
    """Make a set-password link for a therapist of the practice, to hand over in person."""
    _require_admin()
    therapist = db.session.get(Therapist, therapist_id[:40])
    if therapist is None or therapist.practice_id != me().practice_id:
        abort(404)
    link = set_password_url(therapist)
    audit("dashboard.admin.password_link", subject_type="therapist", subject_id=therapist.id)
    db.session.commit()
    therapists = list(db.session.scalars(
        select(Therapist).where(Therapist.practice_id == me().practice_id).order_by(Therapist.name)
    ))  # fmt: skip
    return render_template(
        "admin_therapists.html", therapists=therapists, counts={}, clients=[],
        names={t.id: t.name for t in therapists}, link={"therapist": therapist, "url": link},
    )  # fmt: skip
