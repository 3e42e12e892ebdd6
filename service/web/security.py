"""Sign-in plumbing, CSRF for the dashboard only, cookie flags, security headers, error pages."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, redirect, render_template, request, url_for
from flask_login import AnonymousUserMixin, LoginManager, UserMixin, current_user
from flask_wtf.csrf import CSRFError, generate_csrf, validate_csrf
from werkzeug.exceptions import HTTPException
from wtforms.validators import ValidationError

from service.db import db
from service.models import Therapist
from service.web.base import bp

logger = logging.getLogger(__name__)

PUBLIC_ENDPOINTS = frozenset(
    {"web.login", "web.login_totp", "web.set_password", "web.static", "web.logout"}
)
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

login_manager = LoginManager()
login_manager.login_view = "web.login"
login_manager.login_message = "Please sign in to continue."
login_manager.login_message_category = "info"
login_manager.session_protection = "strong"


class SignedIn(UserMixin):
    """The signed-in therapist as Flask-Login sees them."""

    def __init__(self, therapist: Therapist) -> None:
        self.therapist = therapist

    def get_id(self) -> str:
        # The password-hash fragment signs every session out when the password changes.
        return f"{self.therapist.id}:{password_fragment(self.therapist)}"


def password_fragment(therapist: Therapist) -> str:
    """Return a short fragment of the password hash (changes whenever the password does)."""
    return (therapist.password_hash or "")[-12:]


@login_manager.user_loader
def _load_user(user_id: str) -> SignedIn | None:
    therapist_id, _, fragment = user_id.partition(":")
    therapist = db.session.get(Therapist, therapist_id)
    if therapist is None or not therapist.active or password_fragment(therapist) != fragment:
        return None
    return SignedIn(therapist)


def init_security(app: Flask) -> None:
    """Configure cookies and sign-in for the app without touching other blueprints."""
    settings = app.extensions["settings"]
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.PUBLIC_BASE_URL.startswith("https://"),
        SESSION_COOKIE_NAME="steadfast_session",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.PUBLIC_BASE_URL.startswith("https://"),
        # CSRFProtect is deliberately not installed app-wide: the API, webhooks and feeds
        # use no cookies; the dashboard checks tokens itself in _require_csrf below.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=8 * 3600,
    )
    # Not login_manager.init_app: that adds an app-wide after_request touching the session
    # of every API response. The dashboard needs only the manager itself.
    app.login_manager = login_manager  # type: ignore[attr-defined]
    login_manager.anonymous_user = AnonymousUserMixin
    # A global (not a context variable) so imported form macros can reach it too.
    app.jinja_env.globals["csrf_token"] = generate_csrf


@bp.before_request
def _fresh_request_state() -> None:
    # `g` lives as long as the app context, which outlives one request when a context was
    # already pushed around it (tests, scripts): never reuse a cached clock, CSRF token or user.
    g.pop("web_now", None)
    g.pop("csrf_token", None)
    g.pop("_login_user", None)


@bp.before_request
def _require_csrf() -> None:
    if request.method in ("POST", "PUT", "PATCH", "DELETE"):
        try:
            validate_csrf(request.form.get("csrf_token"))
        except ValidationError as exc:
            raise CSRFError(str(exc)) from None


@bp.before_request
def _require_sign_in() -> Any:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


@bp.context_processor
def _template_globals() -> dict[str, Any]:
    return {"current_user": current_user}


@bp.after_request
def _security_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Frame-Options"] = "DENY"
    if request.endpoint != "web.static":
        # Pages show client data: never keep them in a shared or back-button cache.
        response.headers["Cache-Control"] = "no-store"
    return response


_MESSAGES = {
    400: ("Bad request", "The form could not be accepted. Reload the page and try again."),
    403: ("Not allowed", "Your role does not allow this."),
    404: ("Not found", "There is nothing here, or it belongs to another practice."),
    405: ("Not allowed", "That action is not available here."),
    413: ("Too large", "The upload is too large (1 MB at most)."),
    429: ("Too many attempts", "Too many attempts. Wait a few minutes and try again."),
}


@bp.errorhandler(CSRFError)
def _csrf_error(exc: CSRFError) -> tuple[str, int]:
    db.session.rollback()
    return render_template(
        "error.html",
        title="Form expired",
        message="This form has expired or was not sent from Steadfast. Reload the page and try again.",
    ), 400


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    if exc.code is None or exc.code < 400:
        return exc
    db.session.rollback()
    title, message = _MESSAGES.get(exc.code, ("Error", exc.description or "Something went wrong."))
    headers = {}
    retry = getattr(exc, "retry_after", None)
    if retry:
        headers["Retry-After"] = str(retry)
    return render_template("error.html", title=title, message=message), exc.code, headers


def safe_next(target: str | None) -> str:
    """Return a same-site path to go to after sign-in (never another host)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("web.today")


def redirect_next() -> Response:
    """Redirect to the `next` target of the sign-in form."""
    return redirect(safe_next(request.form.get("next") or request.args.get("next")))
