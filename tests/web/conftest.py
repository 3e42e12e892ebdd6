"""Dashboard fixtures: signed-in test clients for alice and bob, and a CSRF token reader."""

from __future__ import annotations

import re

import pytest

from service.db import db
from service.therapists import set_password

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """Return the first CSRF token on a page."""
    match = _TOKEN.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(client, email: str, password: str = PASSWORD, **extra):
    """Sign in through the form; return the POST response."""
    page = client.get("/login")
    data = {
        "email": email,
        "password": password,
        "csrf_token": csrf_of(page.get_data(as_text=True)),
    }
    data.update(extra)
    return client.post("/login", data=data)


def post_form(client, page_url: str, action: str, data: dict | None = None, **kwargs):
    """Load a page for its CSRF token, then POST a form to `action`."""
    token = csrf_of(client.get(page_url).get_data(as_text=True))
    return client.post(action, data={"csrf_token": token, **(data or {})}, **kwargs)


@pytest.fixture
def passwords(people):
    """Give alice and bob dashboard passwords."""
    set_password(people.alice.therapist, PASSWORD)
    set_password(people.bob.therapist, PASSWORD)
    db.session.commit()
    return PASSWORD


@pytest.fixture
def web(app, people, passwords):
    """A test client signed in as alice."""
    client = app.test_client()
    response = sign_in(client, people.alice.therapist.email)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def web_bob(app, people, passwords):
    """A test client signed in as bob (another practice)."""
    client = app.test_client()
    response = sign_in(client, people.bob.therapist.email)
    assert response.status_code == 302
    return client
