"""The therapist's own calendar feed (sessions across their caseload), from the account page."""

from __future__ import annotations

import logging
from typing import Any

from flask import flash, redirect, url_for

from service.db import db
from service.web import feedlinks
from service.web.base import audit, bp, me, now

logger = logging.getLogger(__name__)


@bp.route("/account/feed/rotate", methods=["POST"])
def account_feed_rotate() -> Any:
    """Issue a new link for the therapist's own feed; the old one stops working."""
    therapist = me()
    feedlinks.therapist_rotate(therapist, now=now())
    audit("dashboard.therapist_feed.rotate", subject_type="therapist", subject_id=therapist.id)
    db.session.commit()
    flash("A new link for your calendar feed was made; the old one no longer works.", "success")
    return redirect(url_for("web.account", _anchor="feed"))


@bp.route("/account/feed/revoke", methods=["POST"])
def account_feed_revoke() -> Any:
    """Revoke the therapist's own feed link."""
    therapist = me()
    feedlinks.therapist_revoke(therapist, now=now())
    audit("dashboard.therapist_feed.revoke", subject_type="therapist", subject_id=therapist.id)
    db.session.commit()
    flash("Your calendar feed link was revoked.", "success")
    return redirect(url_for("web.account", _anchor="feed"))
