"""The inbound SMS reply grammar: keywords, coded answers, opt-out and crisis detection."""

from __future__ import annotations

import logging
import random
import re
import unicodedata
from dataclasses import dataclass

logger = logging.getLogger(__name__)

CONFIRM = "confirm"
DECLINE = "decline"
OPT_OUT = "opt_out"
OPT_IN = "opt_in"
HELP = "help"
URGE = "urge"
LAPSE = "lapse"
CRISIS = "crisis"
UNKNOWN = "unknown"

INTENTS = (CONFIRM, DECLINE, OPT_OUT, OPT_IN, HELP, URGE, LAPSE, CRISIS, UNKNOWN)

# Carriers (and Twilio's default opt-in handling) treat YES as "opt me back in"; we
# return it as confirm and let the caller decide, because only the caller knows
# whether the number is currently opted out.
OPT_IN_WHEN_OPTED_OUT = frozenset({"YES"})


@dataclass(frozen=True)
class Reply:
    """One parsed inbound text: the intent, the prompt code it answers, and its text."""

    intent: str
    code: str | None
    text: str


# Whole-message keywords, matched after normalising and dropping polite filler at the
# ends. Key: the message's words in lower case without accents; value: intent and the
# canonical keyword reported in Reply.text.
_KEYWORD_TABLE: dict[str, tuple[str, tuple[str, ...]]] = {
    "1": (CONFIRM, ("1",)),
    "Y": (CONFIRM, ("y",)),
    "YES": (CONFIRM, ("yes", "yep", "yeah", "yea", "si")),
    "DONE": (CONFIRM, ("done",)),
    "2": (DECLINE, ("2",)),
    "N": (DECLINE, ("n",)),
    "NO": (DECLINE, ("no", "nope", "nah")),
    "MISSED": (DECLINE, ("missed",)),
    "STOP": (OPT_OUT, ("stop", "stop stop", "parar", "alto", "detener")),
    "STOPALL": (OPT_OUT, ("stopall", "stop all")),
    "UNSUBSCRIBE": (OPT_OUT, ("unsubscribe", "unsub")),
    "CANCEL": (OPT_OUT, ("cancel", "cancelar")),
    "END": (OPT_OUT, ("end",)),
    "QUIT": (OPT_OUT, ("quit",)),
    "REVOKE": (OPT_OUT, ("revoke",)),
    "OPTOUT": (OPT_OUT, ("optout", "opt out")),
    "BAJA": (OPT_OUT, ("baja", "darme de baja", "dar de baja")),
    "START": (OPT_IN, ("start",)),
    "UNSTOP": (OPT_IN, ("unstop",)),
    "HELP": (HELP, ("help",)),
    "INFO": (HELP, ("info",)),
    "AYUDA": (HELP, ("ayuda",)),
    "URGE": (URGE, ("urge",)),
    "CRAVING": (URGE, ("craving",)),
    "APOYO": (URGE, ("apoyo",)),
    "SLIP": (LAPSE, ("slip",)),
    "LAPSE": (LAPSE, ("lapse",)),
    "SOS": (CRISIS, ("sos",)),
    "CRISIS": (CRISIS, ("crisis",)),
    "988": (CRISIS, ("988",)),
}
KEYWORDS: dict[str, tuple[str, str]] = {
    alias: (intent, canonical)
    for canonical, (intent, aliases) in _KEYWORD_TABLE.items()
    for alias in aliases
}

# Danger phrases: any message containing one (anywhere, any case, even glued to other
# words) is a crisis. Substring matching is deliberate: a false alarm costs a kind
# reply and a page to the on-call clinician; a miss can cost a life.
CRISIS_PHRASES: tuple[str, ...] = (
    "kill myself",
    "killing myself",
    "want to die",
    "wanna die",
    "want to be dead",
    "wish i was dead",
    "wish i were dead",
    "better off dead",
    "suicide",
    "suicidal",
    "overdose",
    "overdosing",
    "end my life",
    "ending my life",
    "take my life",
    "take my own life",
    "end it all",
    "hurt myself",
    "hurting myself",
    "harm myself",
    "self harm",
    "selfharm",
    "cut myself",
    "cutting myself",
    "dont want to live",
    "do not want to live",
    "no reason to live",
    "cant go on",
    "can not go on",
    "cannot go on",
    # Spanish, for clients who get Spanish texts.
    "suicid",
    "matarme",
    "quiero morir",
    "quitarme la vida",
    "sobredosis",
    "hacerme dano",
    "no quiero vivir",
)
_CRISIS_RE = re.compile("|".join(re.escape(p) for p in CRISIS_PHRASES))
# Crisis keywords also count inside a sentence ("sos please"), but 988 only when it is
# not part of a longer number such as a phone number (555-988-1234, 555 988 1234).
_CRISIS_WORD_RE = re.compile(r"\b(?:sos|crisis)\b")
_CRISIS_988_RE = re.compile(r"(?<!\d)(?<!\d[-. ])988(?![-. ]?\d)")

# Polite words people put around a keyword ("Yes thanks", "STOP please").
_FILLERS_1 = frozenset({"please", "pls", "plz", "thanks", "thx", "ty", "ok", "okay", "gracias"})
_FILLERS_2 = frozenset({("thank", "you"), ("por", "favor")})

CODE_LETTERS = "ABCDEFGHJKMNPQRSTUVWXYZ"  # no O, I or L: they read as 0 and 1
CODE_DIGITS = "0123456789"
ALL_CODES: tuple[str, ...] = tuple(a + d for a in CODE_LETTERS for d in CODE_DIGITS)
_ALL_CODES_SET = frozenset(ALL_CODES)
_CODE = f"[{CODE_LETTERS.lower()}][0-9]"
_CODE_RE = re.compile(f"^{_CODE}$")
_GLUED_RE = re.compile(f"^(?:(?P<c1>{_CODE})(?P<a1>[12])|(?P<a2>[12])(?P<c2>{_CODE}))$")
_ANSWERS = {alias: hit for alias, hit in KEYWORDS.items() if hit[0] in (CONFIRM, DECLINE)}

_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201b": "'", "\u2032": "'", "`": "'"})
_TOKEN_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)*")

# ---- free-text opt-out -------------------------------------------------------------
_MSG_NOUNS = frozenset(
    {
        "text",
        "texts",
        "txt",
        "txts",
        "message",
        "messages",
        "msg",
        "msgs",
        "sms",
        "reminder",
        "reminders",
        "alert",
        "alerts",
        "notification",
        "notifications",
        "mensajes",
    }
)
_MSG_VERBS = frozenset(
    {
        "texting",
        "txting",
        "txt",
        "text",
        "texts",
        "messaging",
        "message",
        "messages",
        "msg",
        "msgs",
        "msging",
        "sending",
        "send",
        "contacting",
        "emailing",
        "spamming",
        "bothering",
        "pestering",
        "harassing",
        "reminding",
        "reminders",
        "notifying",
        "notifications",
        "alerts",
        "calling",
        "sms",
    }
)
_DETERMINERS = frozenset({"the", "these", "this", "those", "your", "ur", "all", "any", "my"})
_RECEIVE = frozenset({"getting", "receiving", "recieving"})
_NEGATIONS = frozenset(
    {
        "can't",
        "cant",
        "cannot",
        "couldn't",
        "couldnt",
        "don't",
        "dont",
        "won't",
        "wont",
        "didn't",
        "didnt",
        "doesn't",
        "doesnt",
        "wouldn't",
        "wouldnt",
        "shouldn't",
        "shouldnt",
        "never",
        "not",
        "can",
        "could",
        "will",
        "would",
        "should",
        "must",
        "might",
        "may",
        "i'll",
        "ill",
    }
)
# "<word> to stop" where the speaker describes their own struggle ("I'm trying to
# stop"). Wishes and decisions ("I want to stop", "I've decided to stop") are not on
# the list: they may well be about our texts, and doubt goes to the opt-out.
_SELF_EFFORT = frozenset(
    {"trying", "try", "tried", "struggle", "struggling", "hard", "able", "how", "learn", "learning"}
)
# "<word> stop" naming a place or thing: bus stop, next stop, the stop.
_NOUN_BEFORE = frozenset(
    {
        "bus",
        "the",
        "a",
        "an",
        "next",
        "last",
        "first",
        "pit",
        "full",
        "one",
        "rest",
        "truck",
        "whistle",
        "non",
        "my",
        "our",
        "your",
        "his",
        "her",
        "their",
        "train",
        "each",
        "every",
        "quick",
    }
)
# "stop <word>" about something other than our texts: stop sign, stop by, stop drinking.
_ELSEWHERE_AFTER = frozenset(
    {
        "sign",
        "signs",
        "light",
        "lights",
        "by",
        "at",
        "in",
        "into",
        "on",
        "over",
        "off",
        "for",
        "and",
        "to",
        "watch",
        "loss",
        "gap",
        "motion",
        "being",
        "worrying",
        "myself",
        "yourself",
        "him",
        "her",
        "them",
        "that",
        "there",
        "here",
        "when",
        "if",
        "until",
        "before",
        "after",
        "because",
        "cause",
        "since",
        "drinking",
        "using",
        "smoking",
        "vaping",
        "gambling",
    }
)
_OPT_OUT_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p)
    for p in (
        r"\b(?:unsubscribe|unsub|optout|opt out|opt me out)\b",
        r"\bleave me alone\b",
        r"\b(?:don't|dont|do not|never) (?:text|txt|message|msg|contact|sms|email) me\b",
        r"\bno more (?:texts?|txts?|messages?|msgs?|reminders?|sms|alerts?)\b",
        r"\b(?:take me off|remove me|remove my number|delete my number|lose my number)\b",
        r"\bwrong (?:number|person)\b",
        r"\b(?:quit|cease|end|cancel|halt) (?:(?:the|these|this|your|all|all the|my) )?"
        r"(?:texts?|txts?|messages?|msgs?|reminders?|sms|alerts?|notifications?|subscription)\b",
        r"\b(?:quit|cease) (?:texting|messaging|sending|contacting|bothering|reminding|spamming)\b",
        r"\b(?:don't|dont|do not|no longer) want (?:(?:these|the|your|any|any more|more) )?"
        r"(?:texts?|txts?|messages?|msgs?|reminders?)\b",
        r"\bno (?:me )?(?:escribas|escriban|mandes|manden|envies|envien|contactes|contacten"
        r"|molestes|molesten)\b",
        r"\b(?:deja|dejen|deje|dejes|dejan) de (?:escribirme|mandarme|enviarme|molestarme|contactarme)\b",
        r"\b(?:dar|darme|denme|dame) de baja\b",
        r"\bya no quiero (?:mensajes|recibir)\b",
    )
)


def normalize(body: str) -> str:
    """Return body NFKC-normalised, whitespace collapsed and edge punctuation/emoji stripped."""
    text = unicodedata.normalize("NFKC", body or "")
    # Format characters (zero-width joiners, BOMs, variation selectors' neighbours) and
    # control characters carry no meaning in a reply.
    text = "".join(
        ch for ch in text if unicodedata.category(ch) not in ("Cf", "Cc") or ch.isspace()
    )
    text = text.translate(_QUOTES)
    text = " ".join(text.split())
    start, end = 0, len(text)
    while start < end and not text[start].isalnum():
        start += 1
    while end > start and not text[end - 1].isalnum():
        end -= 1
    return text[start:end]


def _fold(text: str) -> str:
    """Return text lower-cased without accents, for matching only."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def _crisis_form(folded: str) -> str:
    """Return folded text with apostrophes removed and hyphens as spaces, for danger phrases."""
    text = folded.replace("'", "").replace("-", " ").replace("_", " ")
    return " ".join(text.split())


def _strip_fillers(tokens: list[str]) -> list[str]:
    """Drop polite filler words from both ends, keeping at least one word."""
    core = list(tokens)
    changed = True
    while changed and len(core) > 1:
        changed = False
        if len(core) > 2 and tuple(core[-2:]) in _FILLERS_2:
            core, changed = core[:-2], True
        elif len(core) > 2 and tuple(core[:2]) in _FILLERS_2:
            core, changed = core[2:], True
        elif core[-1] in _FILLERS_1:
            core, changed = core[:-1], True
        elif core[0] in _FILLERS_1:
            core, changed = core[1:], True
    return core


def _coded(core: list[str]) -> Reply | None:
    """Return the coded answer in core ("1 K7", "K7 yes", "1K7"), or None."""
    if len(core) == 2:
        first, second = core
        for code, answer in ((first, second), (second, first)):
            if _CODE_RE.match(code) and answer in _ANSWERS:
                intent, canonical = _ANSWERS[answer]
                return Reply(intent, code.upper(), canonical)
    if len(core) == 1:
        m = _GLUED_RE.match(core[0])
        if m:
            code = m.group("c1") or m.group("c2")
            intent, canonical = _ANSWERS[m.group("a1") or m.group("a2")]
            return Reply(intent, code.upper(), canonical)
    return None


def _stop_means_opt_out(tokens: list[str], i: int) -> bool:
    """Decide whether the word "stop" at tokens[i] asks us to stop texting."""

    def at(j: int) -> str | None:
        return tokens[j] if 0 <= j < len(tokens) else None

    prev, prev2, nxt, nxt2 = at(i - 1), at(i - 2), at(i + 1), at(i + 2)
    # 1. The object is our texts: "stop texting me", "stop the messages", "stop
    #    sending", "stop getting these". Only a negation right before overrides.
    about_texts = (
        nxt in _MSG_VERBS
        or (nxt in _DETERMINERS and nxt2 in _MSG_NOUNS)
        or (nxt in _RECEIVE and (nxt2 in _MSG_NOUNS or nxt2 in _DETERMINERS))
        or (nxt is not None and nxt.endswith("ing") and nxt2 == "me")
    )
    if about_texts:
        return prev not in _NEGATIONS
    # 2. "the texts won't stop": a complaint about the texts themselves.
    if prev in _NEGATIONS and prev2 in _MSG_NOUNS:
        return True
    # 3. The sentence is clearly about something else.
    if prev in _NEGATIONS or prev in _NOUN_BEFORE:
        return False
    if prev == "to" and prev2 in _SELF_EFFORT:
        return False
    if nxt is None:
        return True  # "please stop", "I said stop", "make it stop"
    if nxt in _ELSEWHERE_AFTER or (nxt.endswith("ing") and len(nxt) > 4):
        return False
    if nxt == "me" and nxt2 in ("from", "if", "when", "before", "going"):
        return False
    # "stop the car", "stop this madness" are about something else. Anything left
    # ("stop it", "stop now", "STOP k7", "stop!! who is this") is honoured: any
    # reasonable means of revoking consent counts.
    return not (nxt in _DETERMINERS and nxt2 is not None and nxt2 not in _FILLERS_1)


def _is_opt_out_text(folded: str, tokens: list[str]) -> bool:
    """Return True when free text asks us to stop texting."""
    spaced = " ".join(tokens)
    if any(p.search(spaced) for p in _OPT_OUT_PATTERNS):
        return True
    return any(tok == "stop" and _stop_means_opt_out(tokens, i) for i, tok in enumerate(tokens))


def parse_reply(body: str) -> Reply:
    """Parse an inbound text into a Reply; never raises."""
    text = normalize(body)
    folded = _fold(text)
    tokens = _TOKEN_RE.findall(folded)
    core = _strip_fillers(tokens)
    hit = KEYWORDS.get(" ".join(core))
    crisis_form = _crisis_form(folded)
    # Crisis beats everything, opt-out included: someone who writes "stop texting me I
    # want to die" needs the crisis line first.
    if (
        _CRISIS_RE.search(crisis_form)
        or _CRISIS_WORD_RE.search(crisis_form)
        or _CRISIS_988_RE.search(folded)
    ):
        return Reply(CRISIS, None, hit[1] if hit and hit[0] == CRISIS else text)
    if hit:
        return Reply(hit[0], None, hit[1])
    coded = _coded(core)
    if coded:
        return coded
    if _is_opt_out_text(folded, tokens):
        return Reply(OPT_OUT, None, text)
    return Reply(UNKNOWN, None, text)


def is_code(value: str) -> bool:
    """Return True when value is a well-formed prompt code such as "K7"."""
    return value.upper() in _ALL_CODES_SET


def new_code(taken: set[str], rng: random.Random | None = None) -> str:
    """Return a prompt code not in taken, chosen with rng; raise ValueError when none is left."""
    used = {code.upper() for code in taken}
    free = [code for code in ALL_CODES if code not in used]
    if not free:
        raise ValueError("every prompt code is taken")
    return (rng or random.Random()).choice(free)
