"""Every route in app.url_map × {no token, bad token, revoked token, other practice, owner}, from one table.

A route that is in url_map but not in EXPECT fails test_every_route_is_classified: a new route
must be classified (and so tested) before it ships. tests/api/test_tenancy.py holds the
request bodies for most API writes; this matrix adds the routes it does not list and every
non-API surface (dashboard, webhooks, feeds, health, docs).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select

from service import feeds
from service.db import db
from service.models import Alert, AuditEntry, CheckIn, Message
from service.therapists import revoke_tokens
from tests.notifications.sms_support import PUBLIC, inbound_params, post_signed, sign
from tests.web.conftest import PASSWORD, csrf_of, sign_in

_PARAM = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")

# Kinds of route, and what each identity must get.
API = (
    "api"  # bearer: none/bad/revoked 401, other practice 404 (ids) or own-practice data, owner 2xx
)
API_ADMIN = "api_admin"  # as API, and a non-admin therapist of the practice gets 403
PUBLIC_DOC = "public"  # anyone: 200
HEALTH = "health"  # anyone: 200 (or 503 while the database is down: see tests/soak)
TWILIO = "twilio"  # signed by our auth token for exactly this URL, else 403 and nothing recorded
FEED = "feed"  # the token is the credential: unknown/revoked 404 with an empty body; guesses 429
WEB_PAGE = "web_page"  # anonymous -> /login; other practice 404 (ids); owner 200; CSP + nosniff
WEB_POST = "web_post"  # CSRF always; anonymous -> /login; other practice 404 (ids)
WEB_ADMIN = "web_admin"  # dashboard, admins only: a therapist gets 403
WEB_PUBLIC = "web_public"  # sign-in pages: anonymous 200 (or 404 for an unknown link)
STATIC = "static"  # assets: anyone

EXPECT: dict[str, str] = {
    # ---- JSON API ------------------------------------------------------------------------
    "alerts.list_alerts": API,
    "alerts.acknowledge": API,
    "alerts.resolve": API,
    "messages.list_audit": API,
    "messages.list_messages": API,
    "checkins.correct_checkin": API,
    "checkins.list_checkins": API,
    "clients.list_clients": API,
    "clients.create_client": API,
    "clients.get_client": API,
    "clients.patch_client": API,
    "clients.discharge_client": API,
    "clients.export": API,
    "clients.reassign_client": API_ADMIN,
    "plans.list_activities": API,
    "plans.create_activity": API,
    "plans.get_activity": API,
    "plans.patch_activity": API,
    "plans.cancel_activity": API,
    "plans.list_commitments": API,
    "plans.create_commitment": API,
    "plans.get_commitment": API,
    "plans.patch_commitment": API,
    "plans.archive_commitment": API,
    "plans.list_plans": API,
    "plans.create_plan": API,
    "plans.get_plan": API,
    "plans.patch_plan": API,
    "plans.archive_plan": API,
    "contacts.list_contacts": API,
    "contacts.create_contact": API,
    "contacts.get_contact": API,
    "contacts.patch_contact": API,
    "contacts.archive_contact": API,
    "contacts.record_disclosure": API,
    "contacts.revoke_disclosure": API,
    "feeds.rotate_client": API,
    "feeds.revoke_client": API,
    "feeds.rotate_mine": API,
    "feeds.revoke_mine": API,
    "events.list_events": API,
    "meetings.list_meetings": API,
    "meetings.create_meeting": API,
    "meetings.get_meeting": API,
    "meetings.patch_meeting": API,
    "meeting_import.import_meetings": API,
    "therapists.list_therapists": API,
    "therapists.create": API_ADMIN,
    "therapists.get_therapist": API,
    "therapists.patch": API_ADMIN,
    "therapists.revoke": API_ADMIN,
    "therapists.me": API,
    "webhooks.list_webhooks": API_ADMIN,
    "webhooks.create_webhook": API_ADMIN,
    "webhooks.get_webhook": API_ADMIN,
    "webhooks.delete_webhook": API_ADMIN,
    "docs.docs_page": PUBLIC_DOC,
    "docs.openapi_json": PUBLIC_DOC,
    # ---- health, webhooks, feeds ---------------------------------------------------------
    "health.healthz": HEALTH,
    "health.readyz": HEALTH,
    "twilio_hooks.inbound": TWILIO,
    "twilio_hooks.status": TWILIO,
    "feeds.get_feed": FEED,
    "feeds.malformed_feed": FEED,
    # ---- dashboard -----------------------------------------------------------------------
    "web.today": WEB_PAGE,
    "web.account": WEB_PAGE,
    "web.clients": WEB_PAGE,
    "web.client_page": WEB_PAGE,
    "web.meetings": WEB_PAGE,
    "web.client_new": WEB_PAGE,  # GET the form, POST it (also checked as a WEB_POST below)
    "web.admin_therapists": WEB_ADMIN,
    "web.admin_reassign": WEB_ADMIN,
    "web.admin_password_link": WEB_ADMIN,
    "web.login": WEB_PUBLIC,
    "web.login_totp": WEB_PUBLIC,
    "web.set_password": WEB_PUBLIC,
    "web.logout": WEB_POST,
    "web.account_feed_revoke": WEB_POST,
    "web.account_feed_rotate": WEB_POST,
    "web.totp_enable": WEB_POST,
    "web.totp_disable": WEB_POST,
    "web.alert_acknowledge": WEB_POST,
    "web.alert_resolve": WEB_POST,
    "web.activity_new": WEB_POST,
    "web.activity_cancel": WEB_POST,
    "web.checkin_correct": WEB_POST,
    "web.commitment_new": WEB_POST,
    "web.commitment_update": WEB_POST,
    "web.commitment_archive": WEB_POST,
    "web.commitment_pause": WEB_POST,
    "web.contact_new": WEB_POST,
    "web.contact_archive": WEB_POST,
    "web.contact_disclosure": WEB_POST,
    "web.contact_disclosure_revoke": WEB_POST,
    "web.contact_sms_consent": WEB_POST,
    "web.feed_revoke": WEB_POST,
    "web.feed_rotate": WEB_POST,
    "web.plan_new": WEB_POST,
    "web.plan_update": WEB_POST,
    "web.plan_archive": WEB_POST,
    "web.plan_pause": WEB_POST,
    "web.client_update": WEB_POST,
    "web.client_sms_consent": WEB_POST,
    "web.meeting_add_to_plan": WEB_POST,
    "web.meeting_import": WEB_POST,
    "web.static": STATIC,
    "static": STATIC,
}

# Bodies for the owner's call on API writes (the owner must succeed, not just "not 401").
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "clients.create_client"): {"display_name": "N", "phone": "+12015550123", "timezone": "UTC"},
    ("PATCH", "clients.patch_client"): {"coping_plan": "Breathe"},
    ("POST", "clients.reassign_client"): {"therapist_id": "{therapist_id}"},
    ("POST", "plans.create_activity"): {"title": "Walk", "starts_at": "2026-12-05T15:00:00Z"},
    ("PATCH", "plans.patch_activity"): {"location": "Office 2"},
    ("POST", "plans.create_commitment"): {"kind": "practice", "title": "Breathe",
                                          "schedule": {"rrule": "FREQ=DAILY", "time": "08:00"}},
    ("PATCH", "plans.patch_commitment"): {"title": "Call Dave at 8"},
    ("POST", "plans.create_plan"): {"meeting_id": "{meeting2}"},
    ("PATCH", "plans.patch_plan"): {"remind_minutes_before": 30},
    ("POST", "contacts.create_contact"): {"display_name": "P", "role": "peer", "phone": "+12015550124"},
    ("PATCH", "contacts.patch_contact"): {"display_name": "David"},
    ("POST", "contacts.record_disclosure"): {"granted_on": "2026-12-01", "scope": ["missed"]},
    ("POST", "meetings.create_meeting"): {"name": "M", "day": 1, "time": "12:00", "timezone": "UTC"},
    ("PATCH", "meetings.patch_meeting"): {"notes": "Side door"},
    ("POST", "meeting_import.import_meetings"): {
        "csv": "name,day,time,timezone\nNoon,1,12:00,UTC\n", "feed_key": "matrix"},
    ("POST", "therapists.create"): {"email": "new@riverside.example", "name": "New"},
    ("PATCH", "therapists.patch"): {"name": "Alice M."},
    ("POST", "webhooks.create_webhook"): {"url": "https://93.184.215.14/steadfast"},
    ("PATCH", "checkins.correct_checkin"): {"status": "excused", "note": "Was in hospital"},
}  # fmt: skip

# Calls that end the identity or the record they act on: the owner runs them last.
LAST = ("clients.discharge_client", "therapists.revoke")


def rules(app: Any) -> list[Any]:
    return sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))


ORDER = {"GET": 0, "POST": 1, "PATCH": 2, "DELETE": 3}


def methods(rule: Any) -> list[str]:
    # Reads and edits before the DELETE that archives the record they act on.
    return sorted(rule.methods - {"HEAD", "OPTIONS"}, key=ORDER.__getitem__)


def test_every_route_is_classified(app):
    missing = [f"{r.endpoint} {r.rule}" for r in rules(app) if r.endpoint not in EXPECT]
    assert not missing, f"classify these routes in EXPECT (and so test them): {missing}"
    stale = set(EXPECT) - {r.endpoint for r in rules(app)}
    assert not stale, f"EXPECT names routes that no longer exist: {stale}"


# ---- the world every route is called on ------------------------------------------------------


@dataclass
class Ids:
    values: dict[str, str]
    feed_token: str

    def url(self, rule: Any, **override: str) -> str:
        values = {**self.values, **override}
        return _PARAM.sub(lambda m: values[m.group(1)], rule.rule)

    def unknown(self, rule: Any) -> str:
        # Same shape, nobody's id: the answer Bob gets must be this one.
        values = {k: v[:3] + "0" * max(len(v) - 3, 1) for k, v in self.values.items()}
        return _PARAM.sub(lambda m: values[m.group(1)], rule.rule)


def _no_dns(host: str, port: int) -> list[str]:
    raise OSError(f"name resolution is disabled in tests ({host})")


@pytest.fixture
def ids(world, admin, monkeypatch) -> Ids:
    from service.jobs.tick import tick
    from tests.factories import make_meeting

    people = world.people
    # A webhook needs a public address to be accepted: resolve its name to one without DNS,
    # then refuse every name so the ticks' deliveries never connect anywhere.
    monkeypatch.setattr("service.fetch.resolve_host", lambda host, port: ["93.184.215.14"])
    from service.webhooks import create_endpoint

    endpoint, _secret = create_endpoint(
        practice_id=people.riverside.id, url="https://hooks.example.org/x", description=None,
        now=datetime(2026, 12, 1, 17, tzinfo=UTC),
    )  # fmt: skip
    monkeypatch.setattr("service.fetch.resolve_host", _no_dns)
    second = make_meeting(people.riverside.id, name="Second", day=3)
    db.session.commit()
    # Two days of ticks give Carol real check-ins and (unanswered) a miss alert.
    for stamp in ("2026-12-01T17:00", "2026-12-02T03:00", "2026-12-02T15:00", "2026-12-03T15:00"):
        try:
            tick(datetime.fromisoformat(stamp).replace(tzinfo=UTC))
        except Exception:  # noqa: BLE001 - a sweep another engineer is finishing may fail
            db.session.rollback()
    checkin = db.session.scalars(
        select(CheckIn).where(CheckIn.client_id == people.carol.id)
    ).first()
    alert = db.session.scalars(
        select(Alert).where(Alert.practice_id == people.riverside.id)
    ).first()
    if alert is None:
        alert = Alert(practice_id=people.riverside.id, client_id=people.carol.id,
                      therapist_id=people.alice.id, kind="missed", dedup_key="matrix",
                      created_at=datetime(2026, 12, 2, tzinfo=UTC))  # fmt: skip
        db.session.add(alert)
    token_url = feeds.rotate_client_feed(people.carol, now=datetime(2026, 12, 1, 17, tzinfo=UTC))
    db.session.commit()
    assert checkin is not None, "the ticks planned no check-in for Carol"
    values = {
        "client_id": people.carol.id,
        "contact_id": people.dave.id,
        "meeting_id": world.meeting.id,
        "meeting2": second.id,
        "plan_id": world.plan.id,
        "commitment_id": world.commitment.id,
        "activity_id": world.activity_id,
        "checkin_id": checkin.id,
        "alert_id": alert.id,
        "therapist_id": people.alice.id,
        "webhook_id": endpoint.id,
        "token": token_url.rsplit("/", 1)[1].removesuffix(".ics"),
        "filename": "dashboard.css",
        "rest": "nothing/here",
    }
    return Ids(values, values["token"])


def _fill(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**values)
    if isinstance(value, dict):
        return {k: _fill(v, values) for k, v in value.items()}
    return value


def _call(client: Any, method: str, url: str, headers: dict[str, str], body: Any = None) -> Any:
    kwargs: dict[str, Any] = {"headers": headers}
    if method in ("POST", "PATCH"):
        kwargs["json"] = body if body is not None else {}
    return client.open(url, method=method, **kwargs)


def _problem(response: Any, status: int) -> bool:
    return response.status_code == status and response.mimetype == "application/problem+json"


# ---- the JSON API ---------------------------------------------------------------------------


def test_api_matrix(app, client, world, admin, ids):
    people = world.people
    api_rules = [r for r in rules(app) if EXPECT[r.endpoint] in (API, API_ADMIN)]
    assert len(api_rules) >= 55
    failures: list[str] = []
    calls = [(r, m) for r in api_rules for m in methods(r)]
    calls.sort(key=lambda rm: (LAST.index(rm[0].endpoint) + 1 if rm[0].endpoint in LAST else 0,
                               rm[1] == "DELETE"))  # fmt: skip
    for rule, method in calls:
        url = ids.url(rule)
        label = f"{method} {rule.rule}"
        for name, headers in (
            ("no token", {}),
            ("bad token", {"Authorization": "Bearer sf_not-a-real-token"}),
            ("wrong scheme", {"Authorization": f"Basic {people.alice.token}"}),
        ):
            response = _call(client, method, url, headers)
            if not _problem(response, 401) or "WWW-Authenticate" not in response.headers:
                failures.append(f"{label} {name}: {response.status_code}")
        bob = _call(
            client,
            method,
            url,
            people.bob.headers,
            _fill(BODIES.get((method, rule.endpoint)), ids.values),
        )
        if rule.arguments:
            unknown = _call(client, method, ids.unknown(rule), people.bob.headers)
            if not _problem(bob, 404) or bob.get_json() != unknown.get_json():
                failures.append(f"{label} other practice: {bob.status_code} {bob.data[:120]!r}")
        elif bob.status_code >= 500 or bob.status_code in (401, 404):
            failures.append(f"{label} other practice (own collection): {bob.status_code}")
        if bob.status_code < 300 and rule.arguments:
            failures.append(f"{label}: Bob changed or read Riverside's record")
        if EXPECT[rule.endpoint] == API_ADMIN:
            response = _call(client, method, url, people.alice.headers,
                             _fill(BODIES.get((method, rule.endpoint)), ids.values))  # fmt: skip
            if not _problem(response, 403):
                failures.append(f"{label} non-admin: {response.status_code}")
        owner = admin if EXPECT[rule.endpoint] == API_ADMIN else people.alice
        response = _call(client, method, url, owner.headers,
                         _fill(BODIES.get((method, rule.endpoint)), ids.values))  # fmt: skip
        if not 200 <= response.status_code < 300:
            failures.append(f"{label} owner: {response.status_code} {response.data[:200]!r}")
    assert not failures, "\n".join(failures)


def test_api_answers_carry_nosniff(app, client, world, ids):
    people = world.people
    missing = []
    for rule in rules(app):
        if EXPECT[rule.endpoint] not in (API, API_ADMIN, PUBLIC_DOC) or "GET" not in rule.methods:
            continue
        for headers in ({}, people.alice.headers):
            response = client.get(ids.url(rule), headers=headers)
            if response.headers.get("X-Content-Type-Options") != "nosniff":
                missing.append(f"{rule.rule} {response.status_code}")
    assert not missing, missing


def test_revoked_tokens_are_401_everywhere(app, client, world, ids):
    alice = world.people.alice
    revoke_tokens(alice.therapist, now=datetime(2026, 12, 1, 17, tzinfo=UTC))
    db.session.commit()
    failures = []
    for rule in rules(app):
        if EXPECT[rule.endpoint] not in (API, API_ADMIN):
            continue
        for method in methods(rule):
            response = _call(client, method, ids.url(rule), alice.headers)
            if not _problem(response, 401):
                failures.append(f"{method} {rule.rule}: {response.status_code}")
    assert not failures, failures


# ---- webhooks, feeds, public documents, health -----------------------------------------------


def _message_rows() -> int:
    return db.session.scalar(select(func.count()).select_from(Message)) or 0


def test_twilio_webhooks_refuse_unsigned_forged_and_replayed(app, client, world, ids):
    carol = world.people.carol
    hooks = [r for r in rules(app) if EXPECT[r.endpoint] == TWILIO]
    assert {r.rule for r in hooks} == {"/twilio/inbound", "/twilio/status"}
    before = (_message_rows(), db.session.scalar(select(func.count()).select_from(Alert)))
    for rule in hooks:
        params = inbound_params(carol.phone, "slip")
        params["MessageStatus"] = "delivered"
        other = "/twilio/status" if rule.rule == "/twilio/inbound" else "/twilio/inbound"
        attempts = {
            "unsigned": client.post(rule.rule, data=params),
            "forged": client.post(rule.rule, data=params,
                                  headers={"X-Twilio-Signature": sign(PUBLIC + rule.rule, params, "not-ours")}),
            "replayed to another URL": post_signed(client, rule.rule, params, signed_url=PUBLIC + other),
            "another host": post_signed(client, rule.rule, params,
                                        signed_url="https://evil.example" + rule.rule),
            "bearer instead": client.post(rule.rule, data=params, headers=world.people.alice.headers),
        }  # fmt: skip
        for name, response in attempts.items():
            assert _problem(response, 403), (rule.rule, name, response.status_code)
    after = (_message_rows(), db.session.scalar(select(func.count()).select_from(Alert)))
    assert after == before


def test_feeds_answer_only_their_token(app, client, world, ids):
    people = world.people
    good = client.get(f"/feeds/{ids.feed_token}.ics")
    assert good.status_code == 200 and good.mimetype == "text/calendar"
    # Bearer tokens and sessions are no credential for a feed.
    for path in ("/feeds/" + feeds.new_token() + ".ics", "/feeds/nothing/here", "/feeds/x.ics"):
        for headers in ({}, people.alice.headers):
            response = client.get(path, headers=headers, environ_base={"REMOTE_ADDR": "192.0.2.9"})
            assert response.status_code == 404 and response.data == b"", path
    feeds.revoke_client_feed(people.carol, now=datetime(2026, 12, 1, 18, tzinfo=UTC))
    db.session.commit()
    revoked = client.get(f"/feeds/{ids.feed_token}.ics", environ_base={"REMOTE_ADDR": "192.0.2.9"})
    assert revoked.status_code == 404 and revoked.data == b""
    # Guessing is rate limited per address (20 misses per 10 minutes, see tests/feeds).
    answers = [
        client.get(
            "/feeds/" + feeds.new_token() + ".ics", environ_base={"REMOTE_ADDR": "192.0.2.66"}
        )
        for _ in range(25)
    ]
    assert [a.status_code for a in answers].count(429) == 5
    assert answers[-1].data == b"" and "Retry-After" in answers[-1].headers


def test_public_documents_and_health_need_nothing(app, client, world, ids):
    for rule in rules(app):
        kind = EXPECT[rule.endpoint]
        if kind not in (PUBLIC_DOC, HEALTH, STATIC):
            continue
        response = client.get(ids.url(rule))
        body = response.get_data()
        response.close()  # static files are streamed from an open file
        if rule.endpoint == "static":
            assert response.status_code in (200, 404), rule.rule  # no app-level static files
            continue
        if rule.endpoint == "health.readyz":
            # The suite's schema comes from create_all, not Alembic, so "migrations" is red
            # here; /readyz must still answer without credentials (green in tests/soak).
            assert response.status_code in (200, 503) and "checks" in response.get_json()
            continue
        assert response.status_code == 200, (rule.rule, response.status_code)
        assert b"sf_" not in body  # no token ever in a public answer


# ---- the dashboard --------------------------------------------------------------------------


def _signed_in(app: Any, email: str) -> Any:
    client = app.test_client()
    assert sign_in(client, email).status_code == 302
    return client


def _csrf(client: Any) -> str:
    return csrf_of(client.get("/account").get_data(as_text=True))


def test_dashboard_matrix(app, world, admin, ids, passwords):
    from service.therapists import set_password

    people = world.people
    set_password(admin.therapist, PASSWORD)
    db.session.commit()
    anonymous = app.test_client()
    alice = _signed_in(app, people.alice.therapist.email)
    bob = _signed_in(app, people.bob.therapist.email)
    rhea = _signed_in(app, admin.therapist.email)
    failures: list[str] = []
    pages = [
        r for r in rules(app) if EXPECT[r.endpoint] in (WEB_PAGE, WEB_ADMIN) and "GET" in r.methods
    ]
    for rule in pages:
        url = ids.url(rule)
        response = anonymous.get(url)
        if response.status_code != 302 or "/login" not in response.headers.get("Location", ""):
            failures.append(f"GET {rule.rule} anonymous: {response.status_code}")
        owner = rhea if EXPECT[rule.endpoint] == WEB_ADMIN else alice
        response = owner.get(url)
        csp = response.headers.get("Content-Security-Policy", "")
        if response.status_code != 200:
            failures.append(f"GET {rule.rule} owner: {response.status_code}")
        if (
            "frame-ancestors" not in csp
            or response.headers.get("X-Content-Type-Options") != "nosniff"
        ):
            failures.append(f"GET {rule.rule}: security headers {csp!r}")
        if EXPECT[rule.endpoint] == WEB_ADMIN and alice.get(url).status_code != 403:
            failures.append(f"GET {rule.rule} non-admin: not 403")
        if rule.arguments and bob.get(url).status_code != 404:
            failures.append(f"GET {rule.rule} other practice: {bob.get(url).status_code}")
    posts = [r for r in rules(app) if "POST" in r.methods and r.endpoint.startswith("web.")]
    assert len(posts) >= 30
    before_audit = db.session.scalar(select(func.count()).select_from(AuditEntry))
    for rule in posts:
        if rule.endpoint in ("web.login", "web.login_totp", "web.set_password"):
            continue  # sign-in forms: CSRF is checked in tests/web/test_auth.py
        url = ids.url(rule)
        for who, client in (("alice", alice), ("anonymous", anonymous)):
            for data in ({}, {"csrf_token": "forged"}):
                response = client.post(url, data=data)
                if response.status_code != 400:
                    failures.append(f"POST {rule.rule} {who} CSRF {data}: {response.status_code}")
        response = anonymous.post(
            url, data={"csrf_token": csrf_of(anonymous.get("/login").get_data(as_text=True))}
        )
        if response.status_code != 302 or "/login" not in response.headers.get("Location", ""):
            failures.append(f"POST {rule.rule} anonymous with CSRF: {response.status_code}")
        if EXPECT[rule.endpoint] == WEB_ADMIN:
            response = alice.post(url, data={"csrf_token": _csrf(alice)})
            if response.status_code != 403:
                failures.append(f"POST {rule.rule} non-admin: {response.status_code}")
        if rule.arguments and rule.endpoint != "web.set_password":
            response = bob.post(url, data={"csrf_token": _csrf(bob)})
            if response.status_code not in (403, 404):
                failures.append(f"POST {rule.rule} other practice: {response.status_code}")
    assert not failures, "\n".join(failures)
    # Refused posts changed nothing (the audit trail records every change).
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) >= before_audit


def test_sign_in_pages_are_public_and_brute_force_is_slowed(app, world, passwords):
    anonymous = app.test_client()
    assert anonymous.get("/login").status_code == 200
    assert anonymous.get("/set-password/not-a-real-link").status_code in (400, 404)
    response = anonymous.get("/login/code")
    assert response.status_code in (200, 302)
    statuses = []
    for i in range(8):
        page = anonymous.get("/login")
        response = anonymous.post(
            "/login",
            data={"email": world.people.alice.therapist.email, "password": f"wrong-{i}",
                  "csrf_token": csrf_of(page.get_data(as_text=True))},
            environ_base={"REMOTE_ADDR": "203.0.113.77"},
        )  # fmt: skip
        statuses.append(response.status_code)
    assert 429 in statuses and statuses.index(429) <= 6, statuses
    assert set(statuses[statuses.index(429) :]) == {429}
