"""Every page for alice, 404 for bob, audit entries, tenancy, alerts and the Today inbox."""

from __future__ import annotations

import io
import json
from datetime import timedelta

from sqlalchemy import select

from service.alerts import raise_alert
from service.db import db
from service.models import Alert, AuditEntry, MeetingPlan
from tests.factories import make_client, make_meeting, make_therapist
from tests.web.conftest import post_form
from tests.web.seed import seed_history


def _alert(client, kind="missed", **kw):
    alert = raise_alert(kind=kind, client=client, source_type=kw.get("source_type"),
                        source_id=kw.get("source_id"), occurrence=kw.get("occurrence", "2026-12-01T20:00"),
                        detail=kw.get("detail", {}), now=kw.get("now"))  # fmt: skip
    db.session.commit()
    return alert


def _pages(carol_id):
    return ["/", "/clients", "/clients?scope=practice&q=car&status=active&path=aa", "/clients/new",
            f"/clients/{carol_id}", "/meetings", "/meetings?day=4&after=18:00&q=book", "/account"]  # fmt: skip


def test_every_page_answers_alice(web, people, clock):
    seed_history(people.carol, people.dave, clock.now.date())
    _alert(people.carol, now=clock.now)
    for url in _pages(people.carol.id):
        response = web.get(url)
        assert response.status_code == 200, url
        html = response.get_data(as_text=True)
        assert html.count("<h1") == 1, url
        assert '<a class="skip-link" href="#main">' in html and '<main id="main"' in html


def test_another_practice_gets_404_for_everything_of_alice(web_bob, people, clock):
    alert = _alert(people.carol, now=clock.now)
    carol = people.carol.id
    assert web_bob.get(f"/clients/{carol}").status_code == 404
    assert web_bob.get("/clients/cl_doesnotexist").status_code == 404
    for action in (f"/alerts/{alert.id}/acknowledge", f"/alerts/{alert.id}/resolve",
                   f"/clients/{carol}/profile", f"/clients/{carol}/feed/rotate",
                   f"/clients/{carol}/contacts/{people.dave.id}/archive",
                   f"/clients/{carol}/plans"):  # fmt: skip
        response = post_form(web_bob, "/", action, {"display_name": "x"})
        assert response.status_code == 404, action
    today = web_bob.get("/").get_data(as_text=True)
    assert "Carol" not in today and "No open alerts" in today
    assert "Carol" not in web_bob.get("/clients?scope=practice").get_data(as_text=True)
    db.session.refresh(alert)
    assert alert.status == "open"


def test_page_views_are_audited(web, people):
    web.get(f"/clients/{people.carol.id}")
    web.get("/clients")
    entry = db.session.scalars(
        select(AuditEntry).where(AuditEntry.action == "dashboard.client.view")
    ).one()
    assert entry.actor_type == "therapist" and entry.actor_id == people.alice.id
    assert entry.client_id == people.carol.id and entry.practice_id == people.alice.practice_id
    assert entry.remote_addr == "127.0.0.1"
    actions = set(db.session.scalars(select(AuditEntry.action)))
    assert {"dashboard.clients.view", "dashboard.client.view", "dashboard.sign_in"} <= actions
    page = web.get(f"/clients/{people.carol.id}").get_data(as_text=True)
    assert "dashboard.client.view" in page  # the client's audit trail is on their page


def test_today_pins_crisis_first_and_acknowledges(web, people, clock):
    _alert(people.carol, "missed", now=clock.now - timedelta(minutes=1))
    crisis = _alert(people.carol, "crisis", occurrence="ms_1", now=clock.now - timedelta(hours=3))
    html = web.get("/").get_data(as_text=True)
    assert html.index("alert-crisis") < html.index("alert-missed")
    response = post_form(web, "/", f"/alerts/{crisis.id}/acknowledge")
    assert response.status_code == 302
    db.session.refresh(crisis)
    assert crisis.status == "acknowledged" and crisis.acknowledged_by == people.alice.id
    post_form(web, "/", f"/alerts/{crisis.id}/resolve")
    db.session.refresh(crisis)
    assert crisis.status == "resolved"
    assert "Crisis reply received" not in web.get("/").get_data(as_text=True)
    actions = set(
        db.session.scalars(select(AuditEntry.action).where(AuditEntry.client_id == people.carol.id))
    )
    assert {"dashboard.alert.acknowledge", "dashboard.alert.resolve"} <= actions


def test_empty_states(web, people):
    html = web.get("/").get_data(as_text=True)
    assert "No open alerts" in html
    meetings = web.get("/meetings").get_data(as_text=True)
    assert "The directory is empty" in meetings
    none = web.get("/clients?q=zzz").get_data(as_text=True)
    assert "No clients match these filters." in none


def test_clients_table_shows_adherence_and_filters(web, people, clock):
    seed_history(people.carol, people.dave, clock.now.date())
    make_client(people.alice.therapist, display_name="Sam K.", phone="+15005550111",
                recovery_path="smart", status="paused")  # fmt: skip
    db.session.commit()
    html = web.get("/clients").get_data(as_text=True)
    assert "Carol S." in html and "Sam K." in html
    assert "ratio-bar" in html and "%" in html
    smart = web.get("/clients?path=smart").get_data(as_text=True)
    assert "Sam K." in smart and "Carol S." not in smart
    assert "Carol S." not in web.get("/clients?status=paused").get_data(as_text=True)
    assert "Sam K." in web.get("/clients?q=sam").get_data(as_text=True)


def test_a_colleague_sees_the_practice_but_not_in_their_caseload(app, people, passwords):
    from tests.web.conftest import PASSWORD, sign_in

    make_therapist(email="eve@riverside.example", name="Eve Park", password=PASSWORD)
    db.session.commit()
    eve = app.test_client()
    sign_in(eve, "eve@riverside.example")
    assert "Carol S." not in eve.get("/clients").get_data(as_text=True)
    assert "Carol S." in eve.get("/clients?scope=practice").get_data(as_text=True)
    assert eve.get(f"/clients/{people.carol.id}").status_code == 200


def test_client_page_shows_charts_messages_and_purged_bodies(web, people, clock):
    seed_history(people.carol, people.dave, clock.now.date())
    html = web.get(f"/clients/{people.carol.id}").get_data(as_text=True)
    assert html.count('class="cell cell-') == 84
    assert 'class="meetings-chart"' in html and 'class="target"' in html
    assert "Did Carol make it to Thursday Night Big Book?" in html
    assert "(purged)" in html and "An old message whose body was purged." not in html
    assert "Current step" in html  # AA is a 12-step path


def test_step_is_not_shown_for_other_paths(web, people):
    client = make_client(people.alice.therapist, display_name="Sam K.", phone="+15005550111",
                         recovery_path="smart")  # fmt: skip
    db.session.commit()
    html = web.get(f"/clients/{client.id}").get_data(as_text=True)
    assert "<dt>Current step</dt>" not in html


def test_feed_link_rotate_and_revoke(web, people):
    page = f"/clients/{people.carol.id}"
    assert "No feed link yet." in web.get(page).get_data(as_text=True)
    post_form(web, page, f"{page}/feed/rotate")
    first = web.get(page).get_data(as_text=True)
    assert "/feeds/" in first
    post_form(web, page, f"{page}/feed/rotate")
    second = web.get(page).get_data(as_text=True)
    link = lambda html: html.split('id="feed-url"', 1)[1].split('value="', 1)[1].split('"', 1)[0]  # noqa: E731
    assert link(first) != link(second)
    post_form(web, page, f"{page}/feed/revoke")
    assert "No feed link yet." in web.get(page).get_data(as_text=True)


def test_admin_pages_and_reassignment(app, web, people, passwords):
    from tests.web.conftest import PASSWORD, sign_in

    assert web.get("/admin/therapists").status_code == 403
    make_therapist(
        email="root@riverside.example", name="Ruth Admin", role="admin", password=PASSWORD
    )
    eve = make_therapist(email="eve@riverside.example", name="Eve Park")
    db.session.commit()
    admin = app.test_client()
    sign_in(admin, "root@riverside.example")
    html = admin.get("/admin/therapists").get_data(as_text=True)
    assert "Alice Moreno" in html and "Eve Park" in html and "Bob" not in html
    response = post_form(admin, "/admin/therapists", "/admin/reassign",
                         {"client_id": people.carol.id, "therapist_id": eve.id})  # fmt: skip
    assert response.status_code == 302
    db.session.refresh(people.carol)
    assert people.carol.therapist_id == eve.id
    other = post_form(admin, "/admin/therapists", "/admin/reassign",
                      {"client_id": people.carol.id, "therapist_id": people.bob.id})  # fmt: skip
    assert other.status_code == 302
    db.session.refresh(people.carol)
    assert people.carol.therapist_id == eve.id
    link = post_form(admin, "/admin/therapists", f"/admin/therapists/{eve.id}/password-link")
    assert "/set-password/" in link.get_data(as_text=True)


def test_meetings_search_add_to_plan_and_import(web, people):
    meeting = make_meeting(people.riverside.id)
    make_meeting(people.harbor.id, name="Harbor Only Meeting")
    db.session.commit()
    html = web.get("/meetings").get_data(as_text=True)
    assert "Thursday Night Big Book" in html and "Harbor Only Meeting" not in html
    assert "Thursday Night Big Book" not in web.get("/meetings?day=1").get_data(as_text=True)
    bad = web.get("/meetings?day=9&after=25:00").get_data(as_text=True)
    assert "field-error" in bad
    response = post_form(
        web, "/meetings", f"/meetings/{meeting.id}/plan", {"client_id": people.carol.id}
    )
    assert response.status_code == 302
    assert db.session.scalar(select(MeetingPlan).where(MeetingPlan.client_id == people.carol.id))
    again = post_form(
        web, "/meetings", f"/meetings/{meeting.id}/plan", {"client_id": people.carol.id}
    )
    assert again.status_code == 302
    assert "already on the client" in web.get("/meetings").get_data(as_text=True)

    feed = [{"name": "Sunday Serenity", "slug": "sunday-serenity", "day": 0, "time": "10:00",
             "address": "1 Elm St", "types": ["O"]},
            {"name": "Broken", "slug": "broken", "day": 9, "time": "xx"}]  # fmt: skip
    data = {"timezone": "America/Chicago", "fellowship": "aa",
            "file": (io.BytesIO(json.dumps(feed).encode()), "springfield.json")}  # fmt: skip
    report = post_form(
        web, "/meetings", "/meetings/import", data, content_type="multipart/form-data"
    )
    text = report.get_data(as_text=True)
    assert report.status_code == 200, text
    assert "Import report" in text and "Sunday Serenity" in text and "broken" in text.lower()
    missing = post_form(
        web, "/meetings", "/meetings/import", {"timezone": "Mars/Base", "fellowship": "aa"}
    )
    assert missing.status_code == 422
    body = missing.get_data(as_text=True)
    assert "give a feed URL or choose a file" in body and 'id="imp-timezone-error"' in body


def test_alert_ids_of_other_practices_are_404(web, people, clock):
    other = make_client(people.bob.therapist, display_name="Harbor Client", phone="+15005550999")
    alert = _alert(other, now=clock.now)
    assert post_form(web, "/", f"/alerts/{alert.id}/acknowledge").status_code == 404
    assert db.session.get(Alert, alert.id).status == "open"


def test_a_new_address_ends_the_session(web, people):
    """Session protection "strong": a stolen cookie used from elsewhere signs out."""
    response = web.get("/", environ_base={"REMOTE_ADDR": "198.51.100.23"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
