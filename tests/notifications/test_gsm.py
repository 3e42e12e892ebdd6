"""GSM-7 character tables, transliteration and segment arithmetic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.notifications import gsm


def test_tables_have_the_standard_sizes() -> None:
    assert len(gsm.GSM7_BASIC) == len(set(gsm.GSM7_BASIC)) == 127  # 128 minus the escape
    assert set(gsm.GSM7_EXTENSION) == set("\f^{}\\[~]|€")
    assert not set(gsm.GSM7_BASIC) & set(gsm.GSM7_EXTENSION)


@pytest.mark.parametrize("ch", list("éùìòÇØøÅåÄÖÑÜäöñüàÉ¿¡£¥§ßÆæΔΩ@$_\n\r"))
def test_accented_and_greek_letters_in_the_basic_table(ch: str) -> None:
    assert gsm.is_gsm7(ch)


@pytest.mark.parametrize("ch", list("áíóúÁÍÓÚçâêîôûãõ’“”–—…\u00a0😀✓`") + ["\t"])
def test_not_gsm7(ch: str) -> None:
    assert not gsm.is_gsm7(ch)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It’s “fine”", 'It\'s "fine"'),
        ("‘single’ ‚low‛", "'single' 'low'"),
        ("a – b — c ‐ d ‑ e − f", "a - b - c - d - e - f"),
        ("wait…", "wait..."),
        ("7:00\u00a0PM", "7:00 PM"),
        ("thin\u2009space\u202fnarrow", "thin space narrow"),
        ("¿Qué día, mamá? ¡Sí!", "¿Qué dia, mama? ¡Si!"),
        ("ÁÍÓÚ áíóú", "AIOU aiou"),
        ("Ñandú Über", "Ñandu Über"),
        ("façade", "facade"),
        ("e\u0301", "é"),  # combining accent composes to the GSM letter
        ("ﬁne ＡＢＣ", "fine ABC"),
        ("ok 👍🏽 ✓ done", "ok   done"),
        ("soft\u00adhyphen", "softhyphen"),
        ("tab\there", "tab here"),
        ("€5 {x}", "€5 {x}"),
        ("中文", ""),
    ],
)
def test_to_gsm7(text: str, expected: str) -> None:
    assert gsm.to_gsm7(text) == expected


@given(st.text())
def test_to_gsm7_always_gives_gsm7_and_is_idempotent(text: str) -> None:
    out = gsm.to_gsm7(text)
    assert gsm.is_gsm7(out)
    assert gsm.to_gsm7(out) == out


@given(st.text(alphabet=gsm.GSM7_BASIC + gsm.GSM7_EXTENSION))
def test_gsm7_text_is_left_alone(text: str) -> None:
    assert gsm.to_gsm7(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 1),
        ("a", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("a" * 459, 3),
        ("a" * 460, 4),
        ("€" * 80, 1),  # 160 septets
        ("€" * 81, 2),
        ("a" * 159 + "^", 2),  # 161 septets
        ("a" * 152 + "€" + "a" * 152, 3),  # the escape pair is never split across parts
        ("a" * 151 + "€" + "a" * 153, 2),
        ("é" * 70 + "a" * 90, 1),  # é is GSM-7: no switch to UCS-2
        ("á", 1),
        ("á" * 70, 1),
        ("á" * 71, 2),
        ("á" * 134, 2),
        ("á" * 135, 3),
        ("😀" * 35, 1),  # 70 UTF-16 units
        ("😀" * 36, 2),
        ("a" * 66 + "😀" + "a" * 66, 3),  # the surrogate pair moves whole to part two
    ],
)
def test_segments(text: str, expected: int) -> None:
    assert gsm.segments(text) == expected


def test_one_non_gsm_character_switches_the_whole_text_to_ucs2() -> None:
    text = "a" * 100
    assert gsm.segments(text) == 1
    assert gsm.segments(text + "’") == 2
    assert gsm.segments(gsm.to_gsm7(text + "’")) == 1


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 10, "short"),
        ("hello world", 8, "hello..."),
        ("{{{{{", 7, "{{..."),
        ("abc", 2, ".."),
    ],
)
def test_truncate_to_septets(text: str, limit: int, expected: str) -> None:
    out = gsm.truncate_to_septets(text, limit)
    assert out == expected
    assert gsm.septets(out) <= limit


@given(st.text(alphabet=gsm.GSM7_BASIC + gsm.GSM7_EXTENSION), st.integers(0, 400))
def test_truncate_never_exceeds_the_limit(text: str, limit: int) -> None:
    assert gsm.septets(gsm.truncate_to_septets(text, limit)) <= limit


def test_is_gsm7_is_table_membership_for_every_character() -> None:
    tables = set(gsm.GSM7_BASIC) | set(gsm.GSM7_EXTENSION)
    for cp in range(0x110000):
        ch = chr(cp)
        assert gsm.is_gsm7(ch) == (ch in tables), hex(cp)


@given(st.text(alphabet=st.sampled_from(list(gsm.GSM7_BASIC + gsm.GSM7_EXTENSION)), max_size=400))
def test_septets_and_segments_count_extension_characters_twice(text: str) -> None:
    units = [2 if ch in gsm.GSM7_EXTENSION else 1 for ch in text]
    assert gsm.septets(text) == sum(units)
    assert gsm.segments(text) == gsm._pack(units, gsm.GSM7_SINGLE, gsm.GSM7_MULTI)
