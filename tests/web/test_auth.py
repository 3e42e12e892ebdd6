"""Sign-in, sign-out, rate limits, CSRF on every dashboard form, cookies, TOTP, set-password links."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest

from service.db import db
from service.models import AuditEntry, RateLimitBucket
from tests.web.conftest import PASSWORD, csrf_of, post_form, sign_in

ALICE = "alice@riverside.example"


def test_anonymous_visitors_are_sent_to_sign_in(client, people):
    response = client.get("/clients")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_sign_in_and_out(client, people, passwords):
    page = client.get("/login").get_data(as_text=True)
    for control in ('name="email"', 'name="password"', 'name="csrf_token"', 'for="email"'):
        assert control in page
    response = sign_in(client, ALICE)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/").status_code == 200
    entry = db.session.query(AuditEntry).filter_by(action="dashboard.sign_in").one()
    assert entry.actor_id == people.alice.id
    response = post_form(client, "/", "/logout")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_a_wrong_password_is_refused_without_saying_which_part(client, people, passwords):
    response = sign_in(client, ALICE, "not the password")
    assert response.status_code == 401
    assert "The email or password is not right." in response.get_data(as_text=True)
    unknown = sign_in(client, "nobody@example.org", "whatever-it-is")
    assert unknown.status_code == 401
    assert client.get("/").status_code == 302


def test_next_is_followed_only_within_the_site(client, people, passwords):
    assert sign_in(client, ALICE, next="/clients").headers["Location"] == "/clients"
    other = client.application.test_client()
    assert sign_in(other, ALICE, next="//evil.example/").headers["Location"] == "/"


def test_session_cookie_flags(client, people, passwords):
    response = sign_in(client, ALICE)
    cookie = next(
        c for c in response.headers.getlist("Set-Cookie") if c.startswith("steadfast_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" in cookie  # PUBLIC_BASE_URL is https in the tests


def test_the_cookie_is_not_secure_on_a_plain_http_deployment(make_app, people, passwords):
    app = make_app(PUBLIC_BASE_URL="http://127.0.0.1:5000")
    with app.app_context():
        response = sign_in(app.test_client(), ALICE)
    cookie = next(
        c for c in response.headers.getlist("Set-Cookie") if c.startswith("steadfast_session=")
    )
    assert "Secure" not in cookie


def _from(addr):
    return {"environ_base": {"REMOTE_ADDR": addr}}


def _attempt(client, email, password, addr):
    page = client.get("/login", **_from(addr))
    data = {
        "email": email,
        "password": password,
        "csrf_token": csrf_of(page.get_data(as_text=True)),
    }
    return client.post("/login", data=data, **_from(addr))


def test_repeated_failures_from_one_address_are_limited(app, client, people, passwords, clock):
    for i in range(5):
        assert (
            _attempt(client, f"guess{i}@example.org", "wrong-password", "203.0.113.9").status_code
            == 401
        )
    blocked = _attempt(client, ALICE, PASSWORD, "203.0.113.9")
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["Retry-After"]) <= 15 * 60
    assert "Too many attempts" in blocked.get_data(as_text=True)
    assert _attempt(client, ALICE, PASSWORD, "198.51.100.7").status_code == 302  # another address
    clock.set(clock.now + timedelta(minutes=16))
    assert _attempt(app.test_client(), ALICE, PASSWORD, "203.0.113.9").status_code == 302


def test_repeated_failures_for_one_email_are_limited_across_addresses(client, people, passwords):
    for i in range(5):
        assert _attempt(client, ALICE, "wrong-password", f"192.0.2.{i}").status_code == 401
    assert _attempt(client, ALICE, PASSWORD, "192.0.2.200").status_code == 429
    assert _attempt(client, "bob@harbor.example", PASSWORD, "192.0.2.201").status_code == 302


def test_a_success_does_not_reset_the_address_count(app, client, people, passwords):
    addr = "203.0.113.50"
    for i in range(4):
        _attempt(client, f"guess{i}@example.org", "wrong-password", addr)
    assert _attempt(app.test_client(), "bob@harbor.example", PASSWORD, addr).status_code == 302
    _attempt(client, "guess9@example.org", "wrong-password", addr)
    assert _attempt(app.test_client(), ALICE, PASSWORD, addr).status_code == 429
    bucket = db.session.get(RateLimitBucket, f"signin:addr:{addr}")
    assert bucket.count == 5


def _post_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("web.") and "POST" in rule.methods:
            yield rule


def test_every_dashboard_form_refuses_a_post_without_a_csrf_token(app, web, people):
    rules = list(_post_rules(app))
    assert len(rules) >= 20
    for rule in rules:
        url = re.sub(r"<(?:[^:>]+:)?([^>]+)>", "x", rule.rule)
        response = web.post(url, data={"email": ALICE, "password": PASSWORD})
        assert response.status_code == 400, (rule.rule, response.status_code)
        assert "expired" in response.get_data(as_text=True)
        bad = web.post(url, data={"csrf_token": "forged"})
        assert bad.status_code == 400, rule.rule


def test_csrf_does_not_touch_the_api(client, people):
    response = client.post("/api/v1/clients", json={}, headers=people.alice.headers)
    assert response.status_code != 400 or "CSRF" not in response.get_data(as_text=True)
    assert response.status_code in (404, 422)


def test_security_headers_on_dashboard_pages(client, web, people):
    for url in ("/login", "/", f"/clients/{people.carol.id}", "/assets/dashboard.css"):
        response = (web if url != "/login" else client).get(url)
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "style-src 'self'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        response.close()
    assert web.get("/").headers["Cache-Control"] == "no-store"


def test_pages_have_no_inline_script_or_style(web, people):
    html = web.get(f"/clients/{people.carol.id}").get_data(as_text=True)
    assert "<script>" not in html and "style=" not in html and "<style" not in html
    assert "onclick" not in html


def _enrol(web):
    page = web.get("/account").get_data(as_text=True)
    secret = re.search(r'id="totp-secret" type="text" readonly value="([A-Z2-7]+)"', page).group(1)
    assert "otpauth://totp/Steadfast:alice%40riverside.example?secret=" in page
    return secret


def test_totp_enrolment_and_sign_in(app, web, people, clock):
    secret = _enrol(web)
    wrong = post_form(web, "/account", "/account/totp", {"code": "000000"})
    assert wrong.status_code == 302
    assert people.alice.therapist.totp_secret_encrypted is None
    code = pyotp.TOTP(secret).at(clock.now)
    assert post_form(web, "/account", "/account/totp", {"code": code}).status_code == 302
    db.session.refresh(people.alice.therapist)
    assert people.alice.therapist.totp_secret_encrypted
    assert secret not in people.alice.therapist.totp_secret_encrypted

    fresh = app.test_client()
    response = sign_in(fresh, ALICE)
    assert response.headers["Location"] == "/login/code"
    assert fresh.get("/").status_code == 302  # the password alone is not a session
    bad = post_form(fresh, "/login/code", "/login/code", {"code": "123456"})
    assert bad.status_code == 401
    # The enrolment code was used once already: it cannot sign in.
    reused = post_form(fresh, "/login/code", "/login/code", {"code": code})
    assert reused.status_code == 401
    clock.set(clock.now + timedelta(seconds=30))
    good = post_form(
        fresh, "/login/code", "/login/code", {"code": pyotp.TOTP(secret).at(clock.now)}
    )
    assert good.status_code == 302 and good.headers["Location"] == "/"
    assert fresh.get("/").status_code == 200


def test_a_totp_code_signs_in_once(app, web, people, clock):
    secret = _enrol(web)
    post_form(web, "/account", "/account/totp", {"code": pyotp.TOTP(secret).at(clock.now)})
    clock.set(clock.now + timedelta(seconds=60))
    code = pyotp.TOTP(secret).at(clock.now)
    first, second = app.test_client(), app.test_client()
    sign_in(first, ALICE)
    sign_in(second, ALICE)
    assert post_form(first, "/login/code", "/login/code", {"code": code}).status_code == 302
    # Someone who saw the code (over a shoulder, a phishing page) cannot use it again...
    assert post_form(second, "/login/code", "/login/code", {"code": code}).status_code == 401
    # ... nor the previous step's code, which the window would otherwise still accept.
    previous = pyotp.TOTP(secret).at(clock.now - timedelta(seconds=30))
    assert post_form(second, "/login/code", "/login/code", {"code": previous}).status_code == 401
    clock.set(clock.now + timedelta(seconds=30))
    fresh = pyotp.TOTP(secret).at(clock.now)
    assert post_form(second, "/login/code", "/login/code", {"code": fresh}).status_code == 302


def test_the_code_step_expires(app, web, people, clock):
    secret = _enrol(web)
    post_form(web, "/account", "/account/totp", {"code": pyotp.TOTP(secret).at(clock.now)})
    fresh = app.test_client()
    sign_in(fresh, ALICE)
    clock.set(clock.now + timedelta(minutes=10))
    assert fresh.get("/login/code").headers["Location"] == "/login"


def _link(runner, email=ALICE, now="2026-12-01T17:00:00Z"):
    result = runner.invoke(args=["therapist", "set-password-link", "--email", email, "--now", now])
    assert result.exit_code == 0, result.output
    url = result.output.strip().splitlines()[-1]
    assert url.startswith("https://steadfast.example.org/set-password/")
    return url.removeprefix("https://steadfast.example.org")


def test_set_password_link_works_once(client, runner, people, passwords):
    path = _link(runner)
    page = client.get(path)
    assert page.status_code == 200 and ALICE in page.get_data(as_text=True)
    token = csrf_of(page.get_data(as_text=True))
    short = client.post(path, data={"csrf_token": token, "password": "short", "confirm": "short"})
    assert short.status_code == 422
    assert "password must be at least 10 characters" in short.get_data(as_text=True)
    new = "a brand new passphrase"
    done = client.post(path, data={"csrf_token": token, "password": new, "confirm": new})
    assert done.status_code == 302 and done.headers["Location"] == "/login"
    assert client.get(path).status_code == 404  # the password changed: the link is spent
    assert sign_in(client, ALICE, PASSWORD).status_code == 401
    assert sign_in(client, ALICE, new).status_code == 302


def test_set_password_link_expires_after_a_day(client, runner, people, clock):
    path = _link(runner)
    clock.set("2026-12-02T16:59:00Z")
    assert client.get(path).status_code == 200
    clock.set("2026-12-02T17:01:00Z")
    assert client.get(path).status_code == 404
    assert client.get(path[:-3] + "abc").status_code == 404


def test_changing_the_password_signs_other_sessions_out(app, web, runner, people):
    path = _link(runner)
    other = app.test_client()
    page = other.get(path).get_data(as_text=True)
    new = "another new passphrase"
    other.post(path, data={"csrf_token": csrf_of(page), "password": new, "confirm": new})
    assert web.get("/").status_code == 302


@pytest.mark.parametrize("email", ["nobody@example.org"])
def test_set_password_link_for_unknown_email_fails(runner, people, email):
    result = runner.invoke(args=["therapist", "set-password-link", "--email", email])
    assert result.exit_code == 1
