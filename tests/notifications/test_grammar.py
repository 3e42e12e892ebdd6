"""The inbound reply grammar, table-driven, plus properties over arbitrary text."""

from __future__ import annotations

import random
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.notifications.grammar import (
    ALL_CODES,
    CODE_LETTERS,
    CRISIS_PHRASES,
    INTENTS,
    KEYWORDS,
    OPT_IN_WHEN_OPTED_OUT,
    Reply,
    is_code,
    new_code,
    normalize,
    parse_reply,
)

CASES: list[tuple[str, str, str | None, str]] = [
    # (message, intent, code, text)
    ("1", "confirm", None, "1"),
    ("Y", "confirm", None, "Y"),
    ("yes", "confirm", None, "YES"),
    ("Yes!", "confirm", None, "YES"),
    ("YES 👍", "confirm", None, "YES"),
    ("Done.", "confirm", None, "DONE"),
    ("yes, thank you", "confirm", None, "YES"),
    ("ok 1", "confirm", None, "1"),
    ("1️⃣", "confirm", None, "1"),
    ("Sí", "confirm", None, "YES"),
    ("2", "decline", None, "2"),
    ("２", "decline", None, "2"),
    ("n", "decline", None, "N"),
    ("No.", "decline", None, "NO"),
    ("MISSED", "decline", None, "MISSED"),
    # opt-out keywords: whole message, any case, punctuation and spacing ignored
    ("STOP", "opt_out", None, "STOP"),
    ("stop.", "opt_out", None, "STOP"),
    ("  Stop!!! ", "opt_out", None, "STOP"),
    ("ＳＴＯＰ", "opt_out", None, "STOP"),
    ("STOP please", "opt_out", None, "STOP"),
    ("stopall", "opt_out", None, "STOPALL"),
    ("Stop all", "opt_out", None, "STOPALL"),
    ("Unsubscribe", "opt_out", None, "UNSUBSCRIBE"),
    ("cancel", "opt_out", None, "CANCEL"),
    ("END", "opt_out", None, "END"),
    ("quit", "opt_out", None, "QUIT"),
    ("Revoke", "opt_out", None, "REVOKE"),
    ("optout", "opt_out", None, "OPTOUT"),
    ("opt-out", "opt_out", None, "OPTOUT"),
    ("Opt out", "opt_out", None, "OPTOUT"),
    ("parar", "opt_out", None, "STOP"),
    ("BAJA", "opt_out", None, "BAJA"),
    # opt-out in free text: any reasonable means counts
    ("stop texting me", "opt_out", None, "stop texting me"),
    ("Please stop", "opt_out", None, "STOP"),
    ("please stop!!", "opt_out", None, "STOP"),
    ("stop messaging me", "opt_out", None, "stop messaging me"),
    ("unsubscribe me", "opt_out", None, "unsubscribe me"),
    ("opt me out", "opt_out", None, "opt me out"),
    ("leave me alone", "opt_out", None, "leave me alone"),
    ("Leave me alone.", "opt_out", None, "Leave me alone"),
    ("stop it", "opt_out", None, "stop it"),
    ("stop now", "opt_out", None, "stop now"),
    ("STOP K7", "opt_out", None, "STOP K7"),
    ("Stop. Who is this?", "opt_out", None, "Stop. Who is this"),
    ("Stop sending me these", "opt_out", None, "Stop sending me these"),
    ("can you stop texting me", "opt_out", None, "can you stop texting me"),
    ("the texts won't stop", "opt_out", None, "the texts won't stop"),
    ("I want you to stop", "opt_out", None, "I want you to stop"),
    ("I want to stop", "opt_out", None, "I want to stop"),
    ("i need these to stop", "opt_out", None, "i need these to stop"),
    ("stop getting these", "opt_out", None, "stop getting these"),
    ("stop the reminders", "opt_out", None, "stop the reminders"),
    ("wrong number", "opt_out", None, "wrong number"),
    ("take me off your list", "opt_out", None, "take me off your list"),
    ("remove me", "opt_out", None, "remove me"),
    ("no more texts pls", "opt_out", None, "no more texts pls"),
    ("don't text me", "opt_out", None, "don't text me"),
    ("Don’t text me again", "opt_out", None, "Don't text me again"),
    ("do not contact me", "opt_out", None, "do not contact me"),
    ("cancel these messages", "opt_out", None, "cancel these messages"),
    ("I don't want these texts", "opt_out", None, "I don't want these texts"),
    ("no me escribas", "opt_out", None, "no me escribas"),
    ("dejen de escribirme", "opt_out", None, "dejen de escribirme"),
    # "stop" that clearly talks about something else
    ("I can't stop drinking", "unknown", None, "I can't stop drinking"),
    ("I can’t stop", "unknown", None, "I can't stop"),
    ("don't stop", "unknown", None, "don't stop"),
    ("stop sign", "unknown", None, "stop sign"),
    ("stop thinking about it", "unknown", None, "stop thinking about it"),
    ("I'm trying to stop", "unknown", None, "I'm trying to stop"),
    ("I'll stop by later", "unknown", None, "I'll stop by later"),
    ("I have to stop at the pharmacy", "unknown", None, "I have to stop at the pharmacy"),
    ("missed the bus stop", "unknown", None, "missed the bus stop"),
    ("I stopped drinking", "unknown", None, "I stopped drinking"),
    ("I can't stop texting my ex", "unknown", None, "I can't stop texting my ex"),
    ("stop me from using", "unknown", None, "stop me from using"),
    ("Stop the car", "unknown", None, "Stop the car"),
    # opt-in, help, urge, lapse
    ("START", "opt_in", None, "START"),
    ("unstop", "opt_in", None, "UNSTOP"),
    ("help", "help", None, "HELP"),
    ("Info?", "help", None, "INFO"),
    ("help please", "help", None, "HELP"),
    ("ayuda", "help", None, "AYUDA"),
    ("URGE", "urge", None, "URGE"),
    ("craving", "urge", None, "CRAVING"),
    ("apoyo", "urge", None, "APOYO"),
    ("SLIP", "lapse", None, "SLIP"),
    ("lapse.", "lapse", None, "LAPSE"),
    # crisis beats everything
    ("SOS", "crisis", None, "SOS"),
    ("crisis", "crisis", None, "CRISIS"),
    ("988", "crisis", None, "988"),
    ("sos please", "crisis", None, "SOS"),
    ("sos I need help", "crisis", None, "sos I need help"),
    ("call 988 now", "crisis", None, "call 988 now"),
    ("I want to die", "crisis", None, "I want to die"),
    ("stop texting me I want to die", "crisis", None, "stop texting me I want to die"),
    ("STOP. I'm going to kill myself", "crisis", None, "STOP. I'm going to kill myself"),
    ("thinking about suicide", "crisis", None, "thinking about suicide"),
    ("I feel SUICIDAL", "crisis", None, "I feel SUICIDAL"),
    ("think I took an overdose", "crisis", None, "think I took an overdose"),
    ("I might end my life", "crisis", None, "I might end my life"),
    ("i want to hurt myself", "crisis", None, "i want to hurt myself"),
    ("self-harm again", "crisis", None, "self-harm again"),
    ("1 but I want to die", "crisis", None, "1 but I want to die"),
    ("quiero morir", "crisis", None, "quiero morir"),
    ("call 555-988-1234", "unknown", None, "call 555-988-1234"),
    # coded answers
    ("1 K7", "confirm", "K7", "1"),
    ("K7 1", "confirm", "K7", "1"),
    ("k7 yes", "confirm", "K7", "YES"),
    ("2 K7", "decline", "K7", "2"),
    ("K7: no", "decline", "K7", "NO"),
    ("k7, done!", "confirm", "K7", "DONE"),
    ("1K7", "confirm", "K7", "1"),
    ("k72", "decline", "K7", "2"),
    ("Yes M3 thanks", "confirm", "M3", "YES"),
    ("1 O7", "unknown", None, "1 O7"),  # O, I and L are never code letters
    ("1 I7", "unknown", None, "1 I7"),
    ("1 L7", "unknown", None, "1 L7"),
    ("1 K", "unknown", None, "1 K"),
    ("1 2", "unknown", None, "1 2"),
    ("1 K7 M3", "unknown", None, "1 K7 M3"),
    # nothing we know
    ("", "unknown", None, ""),
    ("   ", "unknown", None, ""),
    ("🙏", "unknown", None, ""),
    ("ok", "unknown", None, "ok"),
    ("thanks", "unknown", None, "thanks"),
    ("what?", "unknown", None, "what"),
    ("See   you\u00a0 there ", "unknown", None, "See you there"),
]


@pytest.mark.parametrize(("message", "intent", "code", "text"), CASES)
def test_table(message: str, intent: str, code: str | None, text: str) -> None:
    assert parse_reply(message) == Reply(intent, code, text)


def test_reply_is_frozen() -> None:
    reply = parse_reply("1")
    with pytest.raises(AttributeError):
        reply.intent = "decline"  # type: ignore[misc]


def test_yes_is_a_confirm_the_caller_may_turn_into_opt_in() -> None:
    assert {"YES"} == OPT_IN_WHEN_OPTED_OUT
    reply = parse_reply("Yes!")
    assert reply.intent == "confirm" and reply.text in OPT_IN_WHEN_OPTED_OUT
    assert parse_reply("1").text not in OPT_IN_WHEN_OPTED_OUT
    assert parse_reply("y").text not in OPT_IN_WHEN_OPTED_OUT


def test_the_briefs_danger_phrases_are_all_listed() -> None:
    for phrase in (
        "kill myself",
        "want to die",
        "suicide",
        "suicidal",
        "overdose",
        "end my life",
        "hurt myself",
    ):
        assert phrase in CRISIS_PHRASES


@pytest.mark.parametrize(
    "message", ["  +1 ", "...2...", "#1", "1\n", "\t2\t", "“1”", "1 🙂", "2 🙁🙁", "1\u200b"]
)
def test_surrounding_noise_is_ignored(message: str) -> None:
    assert parse_reply(message).intent in ("confirm", "decline")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  a   b\n\tc  ", "a b c"),
        ("¡Hola!", "Hola"),
        ("“quoted”", "quoted"),
        ("ｆｕｌｌ width", "full width"),
        ("zero\u200bwidth", "zerowidth"),
        ("🙂 hi 🙂", "hi"),
    ],
)
def test_normalize(text: str, expected: str) -> None:
    assert normalize(text) == expected


# ---- properties -----------------------------------------------------------------


@given(st.text())
def test_never_raises_on_arbitrary_text(body: str) -> None:
    reply = parse_reply(body)
    assert reply.intent in INTENTS
    assert reply.code is None or is_code(reply.code)
    assert isinstance(reply.text, str)


@given(
    prefix=st.text(),
    phrase=st.sampled_from(CRISIS_PHRASES),
    suffix=st.text(),
    case=st.sampled_from([str, str.upper, str.title, str.capitalize]),
)
def test_any_text_containing_a_danger_phrase_is_crisis(
    prefix: str, phrase: str, suffix: str, case
) -> None:
    assert parse_reply(prefix + case(phrase) + suffix).intent == "crisis"


_SEPARATORS = st.text(alphabet=" \t\n.!?,;:-\"'()*", max_size=4)


@given(
    keyword=st.sampled_from(sorted(KEYWORDS)),
    before=_SEPARATORS,
    after=_SEPARATORS,
    case=st.sampled_from([str, str.upper, str.lower, str.title]),
)
def test_every_keyword_survives_case_and_punctuation(
    keyword: str, before: str, after: str, case
) -> None:
    intent, canonical = KEYWORDS[keyword]
    reply = parse_reply(before + case(keyword) + after)
    assert (reply.intent, reply.code, reply.text) == (intent, None, canonical)


@given(
    code=st.sampled_from(ALL_CODES),
    answer=st.sampled_from(["1", "2", "yes", "no", "Y", "N", "done", "missed"]),
    code_first=st.booleans(),
    lower=st.booleans(),
)
def test_every_code_parses_in_either_order(
    code: str, answer: str, code_first: bool, lower: bool
) -> None:
    written = code.lower() if lower else code
    message = f"{written} {answer}" if code_first else f"{answer} {written}"
    reply = parse_reply(message)
    assert reply.code == code
    assert reply.intent == ("confirm" if answer.lower() in ("1", "yes", "y", "done") else "decline")


# ---- codes -----------------------------------------------------------------------


def test_code_alphabet() -> None:
    assert not set("OIL") & set(CODE_LETTERS)
    assert set(CODE_LETTERS) <= set(string.ascii_uppercase)
    assert len(ALL_CODES) == len(set(ALL_CODES)) == len(CODE_LETTERS) * 10
    assert all(len(c) == 2 and c[0] in CODE_LETTERS and c[1].isdigit() for c in ALL_CODES)


def test_new_code_avoids_taken_codes_and_is_reproducible() -> None:
    taken = {"K7", "m3"}
    codes = [new_code(taken, random.Random(5)) for _ in range(3)]
    assert len(set(codes)) == 1  # same seed, same code
    rng = random.Random(1)
    issued: set[str] = set()
    for _ in range(len(ALL_CODES)):
        code = new_code(issued, rng)
        assert is_code(code) and code not in issued
        issued.add(code)
    assert issued == set(ALL_CODES)
    with pytest.raises(ValueError):
        new_code(issued, rng)
    assert new_code({"k7"} | (set(ALL_CODES) - {"K7", "A1"}), rng) == "A1"


@pytest.mark.parametrize(
    ("value", "ok"), [("K7", True), ("k7", True), ("O7", False), ("7K", False)]
)
def test_is_code(value: str, ok: bool) -> None:
    assert is_code(value) is ok
