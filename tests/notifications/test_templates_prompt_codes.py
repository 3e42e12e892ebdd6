"""render_prompt: a prompt built from its uncoded text plus the code equals `render`'s."""

from __future__ import annotations

import datetime as dt

import pytest

from service.notifications import templates
from service.notifications.grammar import ALL_CODES

FIELDS = {
    "prompt_meeting_self": [
        {"time": dt.time(19, 0)},
        {"time": dt.time(7, 5)},
        {"time": "noon-ish meeting"},
        {"time": "rehab at 7"},
    ],
    "prompt_commitment_self": [
        {"kind": "call"},
        {"kind": "step_work", "path": "aa"},
        {"kind": "practice", "path": "smart"},
        {"kind": "homework", "path": None},
        {"kind": "checkin", "path": "na"},
    ],
    "prompt_contact": [
        {"client_name": "J."},
        {"client_name": "Ñ."},
        {"client_name": ""},
        {"client_name": "Émile Zola"},
    ],
}
LANGUAGES = ["en", "es", "es-MX", "fr", None]


def test_every_prompt_template_puts_its_code_last():
    assert templates._CODE_LAST == templates.PROMPT_TEMPLATES


@pytest.mark.parametrize("template", sorted(FIELDS))
def test_render_prompt_equals_render_for_every_code(template):
    for language in LANGUAGES:
        for fields in FIELDS[template]:
            for code in (*ALL_CODES, "a1", " b2 ", None, ""):
                want = templates.render(template, language, **fields, code=code)
                got = templates.render_prompt(template, language, **fields, code=code)
                assert got == want, (template, language, fields, code)


def test_render_prompt_refuses_what_render_refuses():
    for bad in ("AA", "I1", "A10", "?"):
        with pytest.raises(ValueError) as want:
            templates.render("prompt_contact", "en", client_name="J.", code=bad)
        with pytest.raises(ValueError) as got:
            templates.render_prompt("prompt_contact", "en", client_name="J.", code=bad)
        assert str(got.value) == str(want.value)
    with pytest.raises(ValueError, match="needs"):
        templates.render_prompt("prompt_contact", "en", code="A1")
    with pytest.raises(KeyError):
        templates.render_prompt("no_such_template", "en", code="A1")


def test_render_prompt_leaves_other_templates_to_render():
    fields = {"time": dt.time(19, 0), "day": "today"}
    assert templates.render_prompt("reminder_meeting", "en", **fields) == templates.render(
        "reminder_meeting", "en", **fields
    )
