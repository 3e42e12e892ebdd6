"""Browser tests: Chromium (Debian's, never downloaded) drives the dashboard over a real server."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from service.db import db

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = pytest.mark.browser

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHROMIUM} is missing; CI must install Debian's chromium", pytrace=False)
    pytest.skip(f"{CHROMIUM} is not installed", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def server(make_app, people, passwords):
    """Serve a fresh app (plain http, so the session cookie is not Secure) on 127.0.0.1."""
    app = make_app(PUBLIC_BASE_URL="http://127.0.0.1")
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(5)


@pytest.fixture
def browser():
    """Open fresh Chromium contexts, each with its own throwaway profile directory."""
    profiles: list[str] = []
    with sync_api.sync_playwright() as p:
        contexts = []

        def open_page(base: str, width: int = 1280, height: int = 800):
            profile = tempfile.mkdtemp(prefix="steadfast-chromium-")
            profiles.append(profile)
            context = p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=ARGS,
                viewport={"width": width, "height": height}, base_url=base,
            )  # fmt: skip
            contexts.append(context)
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(10_000)
            return page

        try:
            yield open_page
        finally:
            for context in contexts:
                context.close()
            for profile in profiles:
                shutil.rmtree(profile, ignore_errors=True)


def _sign_in(page, email, password):
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


def _shot(page, name, *, full_page=True):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=full_page, type="png")


def _tick(app, clock, *instants):
    """Run the engine's tick at each instant, with the SMS provider delivering what it sends."""
    from sqlalchemy import update

    from service.jobs.tick import tick
    from service.models import Message

    for instant in instants:
        now = clock.set(instant)
        with app.app_context():
            tick(now)
            # Stand in for the provider when the outbox dispatcher is not installed.
            db.session.execute(
                update(Message)
                .where(Message.status == "queued", Message.direction == "outbound")
                .values(status="sent", sent_at=now, updated_at=now)
            )
            db.session.commit()
            db.session.remove()


def test_alert_flow_feed_tenancy_and_screenshots(server, browser, people, clock):
    """Sign in, add a client with a sponsor and a commitment, miss it, acknowledge the alert."""
    from service.alerts import raise_alert
    from tests.web.seed import seed_history

    app, base = server
    seed_history(people.carol, people.dave, clock.now.date() - timedelta(days=0))
    raise_alert(kind="crisis", client=people.carol, source_type="message", source_id="ms_demo",
                occurrence="ms_demo", detail={}, now=clock.now - timedelta(minutes=20))  # fmt: skip
    db.session.commit()

    page = browser(base)
    page.goto("/login")
    _shot(page, "login")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to main content"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "email"
    _sign_in(page, "alice@riverside.example", "correct horse battery")

    page.get_by_role("link", name="Clients").first.click()
    page.get_by_role("link", name="New client").click()
    page.get_by_label("Name (as shown to staff)").fill("Erin T.")
    page.get_by_label("Mobile phone").fill("(617) 555-0142")
    page.get_by_label("The client agreed to receive texts at this number").check()
    page.get_by_label("How they agreed").select_option("written")
    page.get_by_role("button", name="Add client").click()
    page.get_by_role("heading", name="Erin T.", level=1).wait_for()
    client_url = page.url

    page.get_by_text("Add a person").click()
    page.locator("#nc-display-name").fill("Frank B.")
    page.locator("#nc-phone").fill("617-555-0143")
    page.locator("#nc-sms-consent-granted").check()
    page.locator("#nc-sms-consent-method").select_option("verbal")
    page.locator("#nc-disclosure-consent-scope-checkins").check()
    page.locator("#nc-disclosure-consent-scope-missed").check()
    page.locator("#nc-disclosure-consent-granted-on").fill("2026-11-30")
    page.get_by_role("button", name="Add to network").click()
    page.get_by_text("Frank B. was added.").wait_for()

    page.get_by_text("Add a commitment").click()
    page.locator("#nc2-title").fill("Call Frank")
    page.locator("#nc2-schedule-time").fill("20:00")
    page.locator("#nc2-verifier").select_option(label="Frank B. (sponsor)")
    page.get_by_role("button", name="Add commitment").click()
    page.get_by_text("Commitment “Call Frank” added.").wait_for()

    # The evening's call goes unconfirmed; after the grace period the engine raises an alert.
    _tick(app, clock, "2026-12-01T17:05:00Z", "2026-12-02T01:01:00Z", "2026-12-02T03:30:00Z",
          "2026-12-02T04:30:00Z")  # fmt: skip
    page.goto("/")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.closest('main') !== null")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    erin = page.locator(".alert-item", has_text="Erin T.")
    erin.first.wait_for()
    assert "Call Frank" in erin.first.inner_text()
    first = page.locator(".alert-item").first
    assert "alert-crisis" in (first.get_attribute("class") or "")
    _shot(page, "today")
    erin.first.get_by_role("button", name="Acknowledge").click()
    page.get_by_text("Alert acknowledged.").wait_for()
    assert "Acknowledged" in page.locator(".alert-item", has_text="Erin T.").first.inner_text()

    page.goto(client_url + "#feed")
    if page.locator("#feed-url").count() or page.get_by_role("button", name="Create link").count():
        page.get_by_role("button", name="Create link").or_(
            page.get_by_role("button", name="Rotate link")
        ).first.click()
        before = page.locator("#feed-url").input_value()
        page.get_by_role("button", name="Rotate link").click()
        page.get_by_text("A new feed link was made").wait_for()
        assert page.locator("#feed-url").input_value() != before

    page.goto("/clients")
    _shot(page, "clients")
    page.goto(f"/clients/{people.carol.id}")
    _shot(page, "client-top", full_page=False)
    page.goto(f"/clients/{people.carol.id}#history")
    page.locator("svg.heatmap").wait_for()
    assert page.locator("svg.heatmap rect.cell").count() == 84
    _shot(page, "client", full_page=False)
    page.goto("/meetings")
    _shot(page, "meetings")

    phone = browser(base, 390, 844)
    _sign_in(phone, "alice@riverside.example", "correct horse battery")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    _shot(phone, "today-phone")
    phone.goto(f"/clients/{people.carol.id}")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390

    bob = browser(base)
    _sign_in(bob, "bob@harbor.example", "correct horse battery")
    response = bob.goto(client_url)
    assert response is not None and response.status == 404
    bob.goto("/")
    assert "Erin" not in bob.content() and "Call Frank" not in bob.content()
