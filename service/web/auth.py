"""Sign-in (password, optional TOTP), sign-out, TOTP enrolment and set-password links."""

from __future__ import annotations

import hmac
import logging
from typing import Any

import pyotp
from flask import abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import or_, update
from werkzeug.exceptions import TooManyRequests
from werkzeug.security import check_password_hash, generate_password_hash
from werkzeug.wrappers import Response

from service.audit import Actor, record
from service.crypto import decrypt, encrypt
from service.db import db
from service.models import Therapist
from service.therapists import TherapistError, check_password, find_by_email
from service.therapists import set_password as store_password
from service.web import feedlinks, ratelimit
from service.web.base import audit, bp, me, now, settings
from service.web.security import SignedIn, safe_next
from service.web.tokens import read_link_token

logger = logging.getLogger(__name__)

TOTP_PURPOSE = "totp"
PENDING_SECONDS = 300
# Compared against when the email is unknown, so both paths cost one hash check.
_DUMMY_HASH = generate_password_hash("steadfast-dummy-password")


def _keys(email: str) -> list[str]:
    return [f"signin:addr:{request.remote_addr}", f"signin:email:{email.strip().lower()[:150]}"]


def _too_many(keys: list[str]) -> None:
    wait = ratelimit.retry_after(keys, ratelimit.SIGN_IN, now=now())
    if wait:
        db.session.commit()
        exc = TooManyRequests()
        exc.retry_after = wait  # type: ignore[attr-defined]
        raise exc


def _failed(keys: list[str]) -> None:
    for key in keys:
        ratelimit.hit(key, ratelimit.SIGN_IN, now=now())
    db.session.commit()
    logger.info("dashboard sign-in failed from %s", request.remote_addr)


def _complete(therapist: Therapist, email_key: str) -> Response:
    target = safe_next(request.form.get("next") or session.get("next"))
    session.clear()  # a fresh session on sign-in: no fixation
    login_user(SignedIn(therapist))
    # The owner proved who they are; the per-address counter stays (it limits the address).
    ratelimit.clear(email_key)
    record(
        Actor("therapist", therapist.id, therapist.practice_id, request.remote_addr),
        "dashboard.sign_in",
        now=now(),
        subject_type="therapist",
        subject_id=therapist.id,
    )
    db.session.commit()
    return redirect(target)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """Show the sign-in form and check the password."""
    if current_user.is_authenticated:
        return redirect(url_for("web.today"))
    if request.method == "GET":
        return render_template("login.html", email="", next=request.args.get("next", ""))
    email = request.form.get("email", "").strip()[:254]
    password = request.form.get("password", "")[:1000]
    keys = _keys(email)
    _too_many(keys)
    therapist = find_by_email(email) if email else None
    if therapist is None or not therapist.active:
        check_password_hash(_DUMMY_HASH, password)
        ok = False
    else:
        ok = check_password(therapist, password)
    if not ok or therapist is None:
        _failed(keys)
        return render_template(
            "login.html",
            email=email,
            next=request.form.get("next", ""),
            error="The email or password is not right.",
        ), 401
    if therapist.totp_secret_encrypted:
        target = request.form.get("next", "")
        session.clear()
        session["pending_2fa"] = {"id": therapist.id, "at": now().timestamp(), "email": email}
        session["next"] = target
        return redirect(url_for("web.login_totp"))
    return _complete(therapist, keys[1])


@bp.route("/login/code", methods=["GET", "POST"])
def login_totp() -> Any:
    """Ask for the authenticator code of a therapist who passed the password step."""
    pending = session.get("pending_2fa")
    if not isinstance(pending, dict) or now().timestamp() - pending.get("at", 0) > PENDING_SECONDS:
        session.pop("pending_2fa", None)
        flash("Sign in again to continue.", "info")
        return redirect(url_for("web.login"))
    if request.method == "GET":
        return render_template("login_totp.html")
    keys = _keys(pending.get("email", ""))
    _too_many(keys)
    therapist = db.session.get(Therapist, pending.get("id"))
    code = request.form.get("code", "").replace(" ", "")
    secret = _secret(therapist) if therapist else None
    step = _verify(secret, code) if secret else None
    if therapist is None or step is None or not _consume(therapist, step):
        _failed(keys)
        return render_template("login_totp.html", error="That code is not right."), 401
    return _complete(therapist, keys[1])


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    """Sign out and forget the session."""
    logout_user()
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("web.login"))


def _secret(therapist: Therapist) -> str | None:
    if not therapist.totp_secret_encrypted:
        return None
    return decrypt(current_app.config["SECRET_KEY"], TOTP_PURPOSE, therapist.totp_secret_encrypted)


def _verify(secret: str, code: str) -> int | None:
    """Return the time step the code is valid for (now, or one step either side), else None."""
    if not code.isdigit() or len(code) != 6:
        return None
    totp, at = pyotp.TOTP(secret), now()
    here = totp.timecode(at)
    for offset in (0, -1, 1):
        if hmac.compare_digest(totp.at(at, counter_offset=offset), code):
            return here + offset
    return None


def _consume(therapist: Therapist, step: int) -> bool:
    """Record `step` as used unless it (or a later one) already was: a code works only once.

    One conditional UPDATE, so two requests racing with the same code cannot both win.
    """
    used = db.session.execute(
        update(Therapist)
        .where(Therapist.id == therapist.id)
        .where(or_(Therapist.totp_last_step.is_(None), Therapist.totp_last_step < step))
        .values(totp_last_step=step)
        .execution_options(synchronize_session=False)
    )
    if used.rowcount != 1:
        db.session.rollback()
        return False
    db.session.commit()
    return True


@bp.route("/account", methods=["GET"])
def account() -> str:
    """Show the account page: two-step sign-in status and enrolment."""
    therapist = me()
    pending = None
    if not therapist.totp_secret_encrypted:
        secret = session.get("totp_enrol") or pyotp.random_base32()
        session["totp_enrol"] = secret
        uri = pyotp.TOTP(secret).provisioning_uri(name=therapist.email, issuer_name="Steadfast")
        pending = {"secret": secret, "uri": uri}
    feed = feedlinks.therapist_current(therapist)
    return render_template("account.html", therapist=therapist, pending=pending, feed=feed)


@bp.route("/account/totp", methods=["POST"])
def totp_enable() -> Any:
    """Turn on two-step sign-in once the first code checks out."""
    secret = session.get("totp_enrol")
    code = request.form.get("code", "").replace(" ", "")
    step = _verify(secret, code) if secret else None
    if step is None:
        flash("That code is not right; check the authenticator's clock and try again.", "error")
        return redirect(url_for("web.account"))
    therapist = me()
    therapist.totp_secret_encrypted = encrypt(
        current_app.config["SECRET_KEY"], TOTP_PURPOSE, secret
    )
    therapist.totp_last_step = step  # the enrolment code cannot sign anyone in afterwards
    session.pop("totp_enrol", None)
    audit("dashboard.totp.enable", subject_type="therapist", subject_id=therapist.id)
    db.session.commit()
    flash("Two-step sign-in is on.", "success")
    return redirect(url_for("web.account"))


@bp.route("/account/totp/disable", methods=["POST"])
def totp_disable() -> Any:
    """Turn off two-step sign-in (needs a current code)."""
    therapist = me()
    secret = _secret(therapist)
    step = _verify(secret, request.form.get("code", "").replace(" ", "")) if secret else None
    if step is None or not _consume(therapist, step):
        flash("That code is not right.", "error")
        return redirect(url_for("web.account"))
    therapist.totp_secret_encrypted = None
    therapist.totp_last_step = None
    audit("dashboard.totp.disable", subject_type="therapist", subject_id=therapist.id)
    db.session.commit()
    flash("Two-step sign-in is off.", "success")
    return redirect(url_for("web.account"))


@bp.route("/set-password/<token>", methods=["GET", "POST"])
def set_password(token: str) -> Any:
    """Let the holder of a valid link choose a password (the link then stops working)."""
    therapist = read_link_token(token, secret_key=settings().SECRET_KEY, now=now())
    if therapist is None:
        abort(404)
    if request.method == "GET":
        return render_template("set_password.html", therapist=therapist, errors={})
    password = request.form.get("password", "")
    errors: dict[str, list[str]] = {}
    if password != request.form.get("confirm", ""):
        errors["confirm"] = ["the two passwords differ"]
    else:
        try:
            store_password(therapist, password)
        except TherapistError as exc:
            errors["password"] = [str(exc)]
    if errors:
        return render_template("set_password.html", therapist=therapist, errors=errors), 422
    record(
        Actor("therapist", therapist.id, therapist.practice_id, request.remote_addr),
        "dashboard.set_password",
        now=now(),
        subject_type="therapist",
        subject_id=therapist.id,
    )
    db.session.commit()
    logout_user()
    session.clear()
    flash("Your password is set. Sign in with it now.", "success")
    return redirect(url_for("web.login"))
