"""Every outbound SMS, in English and Spanish, and the renderer that keeps them GSM-7 and discreet."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from service.notifications import gsm
from service.notifications.grammar import is_code

logger = logging.getLogger(__name__)

LANGUAGES = ("en", "es")
DEFAULT_LANGUAGE = "en"

# Recovery paths whose own vocabulary includes "step work". Everyone else gets neutral
# words ("tools", "practice"), and so does an unknown path.
TWELVE_STEP_PATHS = frozenset({"aa", "na", "ca", "celebrate"})
OTHER_PATHS = frozenset({"smart", "refuge", "recovery_dharma", "lifering", "other"})
PATHS = TWELVE_STEP_PATHS | OTHER_PATHS

COMMITMENT_KINDS = ("call", "step_work", "practice", "homework", "checkin")
_KIND_ALIASES = {
    "check-in": "checkin",
    "check_in": "checkin",
    "step work": "step_work",
    "step-work": "step_work",
    "stepwork": "step_work",
}

# Hard caps on free-text fields, in characters, so no field can push a text over its
# segment budget. The coping plan is the only field that is shortened to fit instead.
_NAME_MAX = 20
_PHONE_MAX = 20
_LINK_MAX = 120
_FIELD_MAX = 40
_MAX_CODES_LISTED = 8

# Template text. Spanish avoids á í ó ú (not in GSM-7): either a word without them or
# the unaccented spelling, as people commonly text. é ñ ü ¿ ¡ are GSM-7 and are kept.
TEMPLATES: dict[str, dict[str, str]] = {
    "optin_confirmation": {
        "en": "Steadfast: you're signed up for reminders. Msg frequency varies. "
        "Msg & data rates may apply. Reply HELP for help, STOP to opt out.",
        "es": "Steadfast: te inscribiste para recibir recordatorios. La cantidad de mensajes "
        "puede cambiar. Pueden aplicar tarifas de mensajes y datos. Responde AYUDA para "
        "ayuda o STOP para cancelar.",
    },
    "reminder_meeting": {
        "en": "Steadfast reminder: meeting at {time} {day}.",
        "es": "Steadfast: recordatorio de tu reunion {day} a las {time}.",
    },
    "reminder_commitment": {
        "en": "Steadfast reminder: {action} {day}.",
        "es": "Steadfast: recordatorio: {action} {day}.",
    },
    "prompt_meeting_self": {
        "en": "Steadfast: did you make it to your {time} meeting? Reply 1 = yes, 2 = no{code}",
        "es": "Steadfast: ¿fuiste a tu reunion de las {time}? Responde 1 = si, 2 = no{code}",
    },
    "prompt_commitment_self": {
        "en": "Steadfast: did you {action} today? Reply 1 = yes, 2 = no{code}",
        "es": "Steadfast: ¿pudiste {action} hoy? Responde 1 = si, 2 = no{code}",
    },
    "prompt_contact": {
        "en": "Steadfast: did {client} call you today? Reply 1 = yes, 2 = no{code}",
        "es": "Steadfast: ¿recibiste hoy una llamada de {client}? Responde 1 = si, 2 = no{code}",
    },
    "miss_notice_contact": {
        "en": "Steadfast: {client} asked us to let you know they missed a planned check-in "
        "today. A call or text from you could help.",
        "es": "Steadfast: {client} quiere que sepas que hoy no pudo hacer un compromiso "
        "planeado. Una llamada o un mensaje tuyo puede ayudar.",
    },
    "help_client": {
        "en": "Steadfast: reminders from your care team. Reply 1 = yes, 2 = no to check-ins. "
        "Text URGE for support or SOS in a crisis. Msg frequency varies. "
        "Msg & data rates may apply.{phone} Reply STOP to opt out.",
        "es": "Steadfast: recordatorios de tu equipo de apoyo. Responde 1 = si, 2 = no a las "
        "preguntas. Escribe APOYO si necesitas apoyo o SOS en una crisis. Pueden aplicar "
        "tarifas de mensajes y datos.{phone} Responde STOP para cancelar.",
    },
    "help_contact": {
        "en": "Steadfast: someone who listed you as a support contact asked us to check in "
        "with you about calls. Reply 1 = yes, 2 = no to questions. Msg frequency varies. "
        "Msg & data rates may apply. Reply STOP to opt out.",
        "es": "Steadfast: alguien te puso como su contacto de apoyo y te preguntamos por sus "
        "llamadas. Responde 1 = si, 2 = no. La cantidad de mensajes puede cambiar. Pueden "
        "aplicar tarifas. Responde STOP para cancelar.",
    },
    "help_unknown": {
        "en": "This number sends reminders for a care program. Reply STOP to opt out.",
        "es": "Este teléfono manda recordatorios de un programa de apoyo. Responde STOP para "
        "cancelar.",
    },
    "didnt_understand": {
        "en": "Steadfast: sorry, we didn't understand. Reply 1 = yes, 2 = no, HELP for help "
        "or STOP to opt out.",
        "es": "Steadfast: disculpa, no entendimos. Responde 1 = si, 2 = no, AYUDA para ayuda "
        "o STOP para cancelar.",
    },
    "clarify_codes": {
        "en": "Steadfast: you have more than one open question. Reply 1 = yes, 2 = no with "
        "its code, e.g. 1 {example}. Open codes: {codes}",
        "es": "Steadfast: tienes varias preguntas abiertas. Responde 1 = si, 2 = no con su "
        "clave, por ejemplo 1 {example}. Claves: {codes}",
    },
    "urge_client": {
        "en": "Steadfast: thanks for reaching out. This feeling will pass. "
        "{plan_part}{contact_part}If you're in danger, text SOS.",
        "es": "Steadfast: gracias por escribir. Estas ganas van a pasar. "
        "{plan_part}{contact_part}Si corres peligro, escribe SOS.",
    },
    "urge_sponsor_request": {
        "en": "Steadfast: {client} asked for a call. Can you call them now?",
        "es": "Steadfast: {client} quiere hablar contigo. ¿Puedes llamarle ahora?",
    },
    "lapse_reply": {
        "en": "Steadfast: thank you for telling us. One hard day doesn't erase your progress. "
        "Be kind to yourself, and reach out to someone you trust today. "
        "If you're in danger, text SOS.",
        "es": "Steadfast: gracias por contarnos. Un mal momento no borra tu progreso. Sé "
        "amable contigo y habla hoy con alguien de confianza. Si corres peligro, escribe SOS.",
    },
    "crisis_reply": {
        "en": "Steadfast: you matter and help is there. If you're in danger or thinking of "
        "hurting yourself, please {line} now.{notified}",
        "es": "Steadfast: importas y hay ayuda. Si corres peligro o piensas hacerte daño, "
        "{line} ahora.{notified}",
    },
    "alert_batch_therapist": {
        "en": "Steadfast: {count} new {alerts}. {link}",
        "es": "Steadfast: {count} {alerts}. {link}",
    },
    "crisis_therapist": {
        "en": "Steadfast URGENT: a client texted a crisis keyword. {link}",
        "es": "Steadfast URGENTE: mensaje de crisis de un cliente. {link}",
    },
    "crisis_oncall": {
        "en": "Steadfast URGENT (on call): a client texted a crisis keyword and their "
        "therapist has not responded{minutes}. {link}",
        "es": "Steadfast URGENTE (guardia): mensaje de crisis de un cliente y su terapeuta "
        "no ha respondido{minutes}. {link}",
    },
    "digest_therapist": {
        "en": "Steadfast daily summary: {confirmed} check-ins confirmed, {missed} missed, "
        "{alerts} open alerts. {link}",
        "es": "Steadfast resumen de hoy: {confirmed} confirmados, {missed} no cumplidos, "
        "{alerts} alertas abiertas. {link}",
    },
    "test_message": {
        "en": "Steadfast: this is a test message. No reply needed.",
        "es": "Steadfast: este es un mensaje de prueba. No hace falta responder.",
    },
    "unknown_sender": {
        "en": "Steadfast: we don't recognize this number, so we can't act on your reply. "
        "Reply HELP for info or STOP to opt out.",
        "es": "Steadfast: no reconocemos este teléfono y no podemos usar tu respuesta. "
        "Responde AYUDA para info o STOP para cancelar.",
    },
}

# Pieces spliced into templates; scanned by the tests exactly like TEMPLATES.
PARTS: dict[str, dict[str, str]] = {
    "code": {"en": " (code {code})", "es": " (clave {code})"},
    "today": {"en": "today", "es": "hoy"},
    "tomorrow": {"en": "tomorrow", "es": "mañana"},
    "help_phone": {"en": " Questions: {phone}.", "es": " Preguntas: {phone}."},
    "plan": {"en": "Your plan: {plan} ", "es": "Tu plan: {plan} "},
    "plan_default": {
        "en": "Breathe slowly, take a walk, talk to someone. ",
        "es": "Respira despacio, sal a caminar, habla con alguien. ",
    },
    "sponsor": {"en": "Call {name}: {phone}. ", "es": "Llama a {name}: {phone}. "},
    "sponsor_no_phone": {"en": "Reach out to {name}. ", "es": "Busca a {name}. "},
    "sponsor_no_name": {
        "en": "Call your support contact: {phone}. ",
        "es": "Llama a tu contacto de apoyo: {phone}. ",
    },
    "notified": {
        "en": " We're letting your care team know.",
        "es": " Le estamos avisando a tu equipo de apoyo.",
    },
    "minutes": {"en": " in {minutes} min", "es": " en {minutes} min"},
    "alert_one": {"en": "alert", "es": "alerta nueva"},
    "alert_many": {"en": "alerts", "es": "alertas nuevas"},
    "no_initial": {"en": "the person you support", "es": "la persona que apoyas"},
}

# What each commitment kind asks the client to do, by language; step work only on
# 12-step paths.
ACTIONS: dict[str, dict[str, str]] = {
    "call": {"en": "make your call", "es": "hacer tu llamada"},
    "step_work": {"en": "do your step work", "es": "hacer tu trabajo de pasos"},
    "step_work_neutral": {"en": "work on your tools", "es": "usar tus herramientas"},
    "practice": {"en": "do your practice", "es": "hacer tus ejercicios"},
    "homework": {"en": "do your homework", "es": "hacer tu tarea"},
    "checkin": {"en": "do your check-in", "es": "hacer tu seguimiento"},
}

CRISIS_LINES: dict[str, dict[str, str]] = {
    "US": {"en": "call or text 988", "es": "llama al 988 y oprime 2, o manda AYUDA al 988"},
    "CA": {"en": "call or text 988", "es": "llama o manda un texto al 988"},
    "GB": {"en": "call 116 123 (Samaritans)", "es": "llama al 116 123 (Samaritans)"},
    "AU": {"en": "call 13 11 14 (Lifeline)", "es": "llama al 13 11 14 (Lifeline)"},
    "IN": {"en": "call 14416 (Tele-MANAS)", "es": "llama al 14416 (Tele-MANAS)"},
}
_CRISIS_FALLBACK = {"en": "call your local emergency number", "es": "llama a emergencias"}
_CRISIS_PRACTICE = {"en": " or your care team at {phone}", "es": " o a tu equipo al {phone}"}
_REGION_ALIASES = {"UK": "GB"}

# Texts that go to staff; every other template reaches a client, a contact or a
# stranger's lock screen and must not hint at what the program is.
STAFF_TEMPLATES = frozenset(
    {"alert_batch_therapist", "crisis_therapist", "crisis_oncall", "digest_therapist"}
)
CLIENT_OR_CONTACT_TEMPLATES = frozenset(TEMPLATES) - STAFF_TEMPLATES
PROMPT_TEMPLATES = frozenset({"prompt_meeting_self", "prompt_commitment_self", "prompt_contact"})

# Segment budget per text (GSM-7: 1 = 160, 2 = 306, 3 = 459 septets).
MAX_SEGMENTS: dict[str, int] = {key: 2 for key in TEMPLATES} | {"urge_client": 3}

# (required, optional) fields per template; anything else is refused so that, for
# example, a client's name can never be slipped into a staff alert.
FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    key: (frozenset(req), frozenset(opt))
    for key, req, opt in (
        ("optin_confirmation", (), ()),
        ("reminder_meeting", ("time",), ("day",)),
        ("reminder_commitment", ("kind",), ("path", "day")),
        ("prompt_meeting_self", ("time",), ("code",)),
        ("prompt_commitment_self", ("kind",), ("path", "code")),
        ("prompt_contact", ("client_name",), ("code",)),
        ("miss_notice_contact", ("client_name",), ()),
        ("help_client", (), ("practice_phone",)),
        ("help_contact", (), ()),
        ("help_unknown", (), ()),
        ("didnt_understand", (), ()),
        ("clarify_codes", ("codes",), ()),
        ("urge_client", (), ("plan", "sponsor_name", "sponsor_phone")),
        ("urge_sponsor_request", ("client_name",), ()),
        ("lapse_reply", (), ()),
        ("crisis_reply", ("region",), ("practice_phone", "notified")),
        ("alert_batch_therapist", ("count", "link"), ()),
        ("crisis_therapist", ("link",), ()),
        ("crisis_oncall", ("link",), ("minutes",)),
        ("digest_therapist", ("confirmed", "missed", "alerts", "link"), ()),
        ("test_message", (), ()),
        ("unknown_sender", (), ()),
    )
}

# Words that reveal treatment on a lock screen. Matched case-insensitively on whole
# words (with the listed stems) after accents are stripped. "meeting" is fine.
FORBIDDEN_STEMS: tuple[str, ...] = (
    r"recover\w*",
    r"sober\w*",
    r"sobriety",
    r"alcohol\w*",
    r"drugs?",
    r"drugged",
    r"narcotic\w*",
    r"addict\w*",
    r"rehab\w*",
    r"clinic\w*",
    r"therap\w*",
    r"relaps\w*",
    r"detox\w*",
    r"12[\s-]*steps?",
    r"twelve",
    r"fellowship\w*",
    r"anonymous",
    r"smart",
    r"refuge",
    r"dharma",
    r"life\s*ring",
    r"celebrate",
    r"treatment\w*",
    r"diagnos\w*",
    r"substance\w*",
    r"meth",
    r"opioid\w*",
    r"opiate\w*",
    r"heroin",
    r"cocaine",
    r"fentanyl",
    r"methadone",
    r"suboxone",
    r"buprenorphine",
    r"naloxone",
    r"narcan",
    r"counsel\w*",
    r"psych\w*",
    # Spanish (accents already stripped).
    r"recuperaci\w*",
    r"recuperar\w*",
    r"sobriedad",
    r"sobri[oa]s?",
    r"drogas?",
    r"adicci\w*",
    r"adict[oa]s?",
    r"tratamiento\w*",
    r"terapia\w*",
    r"terapeut\w*",
    r"rehabilitaci\w*",
    r"reca[iy]da\w*",
    r"desintoxicaci\w*",
    r"sustancia\w*",
    r"anonimos?",
    r"doce\s+pasos",
    r"consejer\w*",
    r"psicolog\w*",
    r"psiquiatr\w*",
)
# Program acronyms: in our own wording any case is forbidden; in user-written values
# only the capitalised acronym is (so "Na Li" or "Nana" survive).
FORBIDDEN_ACRONYMS = ("AA", "NA", "CA")
# Forbidden in our wording but left alone inside a client's own words.
TEMPLATE_ONLY_STEMS: tuple[str, ...] = (
    r"sponsor\w*",
    r"padrino\w*",
    r"madrina\w*",
    r"patients?",
    r"pacientes?",
)

_STEMS_RE = re.compile(r"\b(?:" + "|".join(FORBIDDEN_STEMS) + r")\b", re.IGNORECASE)


def _literal_head(stem: str) -> str:
    """Return the letters every match of stem starts with ("drugs?" -> "drug"), lower case."""
    head = re.match(r"[A-Za-z0-9]*", stem).group(0)  # type: ignore[union-attr]
    if stem[len(head) : len(head) + 1] in ("?", "*", "{"):
        head = head[:-1]  # the last letter is optional
    if not head or "|" in stem:
        raise ValueError(f"forbidden stem {stem!r} has no literal head")
    return head.lower()


# A stem can only match ASCII text that contains its head: a few substring tests settle
# most texts before the (much slower) alternation runs at every word boundary.
_HEADS = {_literal_head(stem) for stem in FORBIDDEN_STEMS}
_STEM_HEADS = tuple(sorted(h for h in _HEADS if not any(o != h and o in h for o in _HEADS)))
_ACRONYM_RE = re.compile(r"\b(?:" + "|".join(FORBIDDEN_ACRONYMS) + r")\b")
_STRICT_RE = re.compile(
    r"\b(?:" + "|".join((*FORBIDDEN_STEMS, *FORBIDDEN_ACRONYMS, *TEMPLATE_ONLY_STEMS)) + r")\b",
    re.IGNORECASE,
)
# "therapist" is allowed in staff texts, but nothing else on the list is.
_STAFF_ALLOWED = re.compile(r"^(?:therapist|therapists|terapeuta|terapeutas)$", re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def _base_letter(ch: str) -> str:
    """Return ch without its accent (é -> e), always exactly one character."""
    for part in unicodedata.normalize("NFKD", ch):
        if not unicodedata.combining(part):
            return part
    return ch


def _strip_accents(text: str) -> str:
    """Return text with accented letters reduced to base letters, character for character."""
    if text.isascii():
        return text  # no accents to strip (the common case: every template is ASCII)
    return "".join(_base_letter(ch) for ch in text)


def forbidden_words(text: str, *, strict: bool = True, staff: bool = False) -> list[str]:
    """Return the treatment-revealing words in text (strict: our wording; else user values)."""
    folded = _strip_accents(text)
    if strict:
        found = [m.group(0) for m in _STRICT_RE.finditer(folded)]
    else:
        found = [m.group(0) for m in _STEMS_RE.finditer(folded)]
        found += [m.group(0) for m in _ACRONYM_RE.finditer(folded)]
    if staff:
        found = [w for w in found if not _STAFF_ALLOWED.match(w)]
    return found


def scrub(value: str) -> str:
    """Return value with treatment-revealing words replaced by '...'."""
    # Match on an accent-free shadow of the same length but cut the original, so the
    # accents of the words that stay survive.
    shadow = _strip_accents(value)
    if shadow.isascii():
        # For ASCII text, case-insensitive matching is exactly matching on the lower case.
        folded = shadow.lower()
        if not any(head in folded for head in _STEM_HEADS) and not any(
            acronym in shadow for acronym in FORBIDDEN_ACRONYMS
        ):
            return value
    spans = sorted(
        [m.span() for m in _STEMS_RE.finditer(shadow)]
        + [m.span() for m in _ACRONYM_RE.finditer(shadow)]
    )
    if not spans:
        return value
    out, last = [], 0
    for start, end in spans:
        if start < last:
            continue
        out.append(value[last:start])
        out.append("...")
        last = end
    out.append(value[last:])
    return "".join(out)


def language_of(language: str | None) -> str:
    """Return the supported language for a tag such as 'es-MX' (English when unknown)."""
    base = (language or "").strip().lower().replace("_", "-").split("-")[0]
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


def _clean(value: Any, limit: int | None = _FIELD_MAX) -> str:
    """Return value as tidy GSM-7 text, whitespace collapsed and cut to limit characters."""
    text = " ".join(gsm.to_gsm7(str(value)).split())
    if limit is not None and len(text) > limit:
        text = text[:limit].rstrip()
    return text


def initial(display_name: str | None) -> str:
    """Return the first name's initial with a dot ("Jamie Smith" -> "J."), or '' if none."""
    for ch in gsm.to_gsm7(display_name or ""):
        if ch.isalnum():
            upper = ch.upper()
            letter = upper if len(upper) == 1 and gsm.is_gsm7(upper) else ch
            return f"{letter}."
    return ""


def first_name(display_name: str | None) -> str:
    """Return the first word of a display name, GSM-7 and at most 20 characters."""
    words = _clean(display_name or "", None).split()
    return words[0][:_NAME_MAX] if words else ""


def format_time(value: dt.time | dt.datetime | str, language: str = DEFAULT_LANGUAGE) -> str:
    """Return a local time as people write it: '7:00 PM' (en) or '7:00 pm' (es)."""
    if isinstance(value, str):
        return _clean(value, 16)
    hour = value.hour % 12 or 12
    if language_of(language) == "es":
        return f"{hour}:{value.minute:02d} {'am' if value.hour < 12 else 'pm'}"
    return f"{hour}:{value.minute:02d} {'AM' if value.hour < 12 else 'PM'}"


def _normalize_region(region: str | None) -> str:
    code = (region or "").strip().upper()
    return _REGION_ALIASES.get(code, code)


def crisis_line(region: str, practice_phone: str | None = None, language: str = "en") -> str:
    """Return how to reach crisis help in region, e.g. 'call or text 988' for the US."""
    lang = language_of(language)
    lines = CRISIS_LINES.get(_normalize_region(region))
    if lines:
        return lines[lang]
    text = _CRISIS_FALLBACK[lang]
    phone = _clean(practice_phone or "", _PHONE_MAX)
    if phone:
        text += _CRISIS_PRACTICE[lang].format(phone=phone)
    return text


def _kind(kind: str) -> str:
    """Return the canonical commitment kind, raising ValueError for an unknown one."""
    key = str(kind).strip().lower()
    key = _KIND_ALIASES.get(key, key)
    if key not in COMMITMENT_KINDS:
        raise ValueError(f"unknown commitment kind {kind!r}")
    return key


def action_for(kind: str, path: str | None, language: str = DEFAULT_LANGUAGE) -> str:
    """Return what the client is asked to do for a commitment kind on a recovery path."""
    key = _kind(kind)
    if key == "step_work" and (path or "").lower() not in TWELVE_STEP_PATHS:
        key = "step_work_neutral"
    return ACTIONS[key][language_of(language)]


def _day(value: Any, lang: str) -> str:
    key = str(value or "today").strip().lower()
    if key not in ("today", "tomorrow"):
        raise ValueError(f"day must be 'today' or 'tomorrow', not {value!r}")
    return PARTS[key][lang]


def _code(value: Any) -> str:
    """Return a prompt code in upper case, raising ValueError for a malformed one."""
    code = str(value).strip().upper()
    if not is_code(code):
        raise ValueError(f"malformed prompt code {value!r}")
    return code


def _prepare(template: str, lang: str, fields: Mapping[str, Any]) -> dict[str, str]:
    """Return the format values for template, derived from the caller's fields."""
    private = template in CLIENT_OR_CONTACT_TEMPLATES

    def user(value: Any, limit: int | None = _FIELD_MAX) -> str:
        # Everything a person typed is made GSM-7, tidied, capped and, for texts that
        # reach a client or contact, stripped of treatment words.
        cleaned = _clean(value if value is not None else "", limit)
        return scrub(cleaned) if private else cleaned

    required, _ = FIELDS[template]
    v: dict[str, str] = {}
    if "time" in required:
        raw = fields["time"]
        v["time"] = user(raw, 16) if isinstance(raw, str) else format_time(raw, lang)
    if template in ("reminder_meeting", "reminder_commitment"):
        v["day"] = _day(fields.get("day"), lang)
    if "kind" in required:
        v["action"] = action_for(fields["kind"], fields.get("path"), lang)
    if template in PROMPT_TEMPLATES:
        code = fields.get("code")
        v["code"] = PARTS["code"][lang].format(code=_code(code)) if code else ""
    if "client_name" in required:
        # One letter reveals nothing, so the initial is taken before any scrubbing.
        v["client"] = initial(_clean(fields["client_name"] or "")) or PARTS["no_initial"][lang]
    if template == "help_client":
        phone = user(fields.get("practice_phone"), _PHONE_MAX)
        v["phone"] = PARTS["help_phone"][lang].format(phone=phone) if phone else ""
    if template == "clarify_codes":
        codes = list(dict.fromkeys(_code(c) for c in _as_list(fields["codes"])))
        if not codes:
            raise ValueError("clarify_codes needs at least one code")
        shown = codes[:_MAX_CODES_LISTED]
        v["example"] = shown[0]
        v["codes"] = ", ".join(shown) + (", ..." if len(codes) > len(shown) else "")
    if template == "urge_client":
        plan = user(fields.get("plan"), None)
        if plan and plan[-1] not in ".!?":
            plan += "."
        v["plan"] = plan
        name = user(first_name(fields.get("sponsor_name")))
        if not any(ch.isalnum() for ch in name):
            name = ""  # nothing left once scrubbed: fall back to "your support contact"
        phone = user(fields.get("sponsor_phone"), _PHONE_MAX)
        if name and phone:
            v["contact_part"] = PARTS["sponsor"][lang].format(name=name, phone=phone)
        elif name:
            v["contact_part"] = PARTS["sponsor_no_phone"][lang].format(name=name)
        elif phone:
            v["contact_part"] = PARTS["sponsor_no_name"][lang].format(phone=phone)
        else:
            v["contact_part"] = ""
    if template == "crisis_reply":
        v["line"] = crisis_line(
            str(fields["region"]), user(fields.get("practice_phone"), _PHONE_MAX), lang
        )
        v["notified"] = PARTS["notified"][lang] if fields.get("notified", True) else ""
    if template == "alert_batch_therapist":
        count = _count(fields["count"])
        v["count"] = str(count)
        v["alerts"] = PARTS["alert_one" if count == 1 else "alert_many"][lang]
    if template == "digest_therapist":
        for name in ("confirmed", "missed", "alerts"):
            v[name] = str(_count(fields[name]))
    if template == "crisis_oncall":
        minutes = fields.get("minutes")
        v["minutes"] = (
            PARTS["minutes"][lang].format(minutes=_count(minutes)) if minutes is not None else ""
        )
    if "link" in required:
        v["link"] = _link(fields["link"])
    return v


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [part for part in re.split(r"[\s,]+", value) if part]
    if isinstance(value, Iterable):
        return list(value)
    raise ValueError("codes must be a list of codes")


def _count(value: Any) -> int:
    count = int(value)
    if count < 0:
        raise ValueError("counts cannot be negative")
    return count


def _link(value: Any) -> str:
    """Return a dashboard link as GSM-7 text; refuse one that would not fit."""
    link = _clean(value, None).replace(" ", "")
    if not link or len(link) > _LINK_MAX:
        raise ValueError(f"link must be 1..{_LINK_MAX} characters")
    return link


def _render_urge(lang: str, values: dict[str, str], budget: int) -> str:
    """Return the urge reply with the coping plan shortened, if need be, to fit budget septets."""
    template = TEMPLATES["urge_client"][lang]
    plan = values["plan"]
    if not plan:
        return template.format_map({**values, "plan_part": PARTS["plan_default"][lang]})
    rendered = template.format_map({**values, "plan_part": PARTS["plan"][lang].format(plan=plan)})
    if gsm.septets(rendered) <= budget:
        return rendered
    frame = template.format_map({**values, "plan_part": PARTS["plan"][lang].format(plan="")})
    room = budget - gsm.septets(frame)
    while True:
        # A cut can leave a forbidden prefix of an innocent word ("methods" -> "meth...").
        short = scrub(gsm.truncate_to_septets(plan, max(room, 3)))
        rendered = template.format_map(
            {**values, "plan_part": PARTS["plan"][lang].format(plan=short)}
        )
        # Septets alone can mislead: a part never ends on half an escape pair, so a
        # text full of extension characters may need a little more trimming.
        if gsm.segments(rendered) <= MAX_SEGMENTS["urge_client"] or room <= 3:
            return rendered
        room -= 2


def _budget(segments: int) -> int:
    """Return the septets that fit in the given number of GSM-7 segments."""
    return gsm.GSM7_SINGLE if segments == 1 else gsm.GSM7_MULTI * segments


def render(template: str, language: str, **fields: Any) -> str:
    """Render an outbound text in the recipient's language: GSM-7, discreet, within budget."""
    if template not in TEMPLATES:
        raise KeyError(f"unknown template {template!r}")
    required, optional = FIELDS[template]
    missing = sorted(required - fields.keys())
    if missing:
        raise ValueError(f"template {template!r} needs {', '.join(missing)}")
    unexpected = sorted(fields.keys() - required - optional)
    if unexpected:
        raise ValueError(f"template {template!r} does not take {', '.join(unexpected)}")
    lang = language_of(language)
    values = _prepare(template, lang, fields)
    budget = _budget(MAX_SEGMENTS[template])
    if template == "urge_client":
        text = _render_urge(lang, values, budget)
    else:
        text = TEMPLATES[template][lang].format_map(values)
    # Every value went through to_gsm7 already; this guards the templates themselves.
    text = gsm.to_gsm7(text)
    if template in CLIENT_OR_CONTACT_TEMPLATES:
        # Values were scrubbed one by one; this catches a word formed across a seam.
        text = scrub(text)
    if gsm.segments(text) > MAX_SEGMENTS[template]:
        raise ValueError(f"template {template!r} rendered longer than its budget")
    return text


def _code_comes_last(template: str) -> bool:
    """Whether every wording of template ends with its code, after fixed words of its own."""
    return template in PROMPT_TEMPLATES and all(
        text.endswith("{code}") and text.count("{code}") == 1 and not text.endswith("}{code}")
        for text in TEMPLATES[template].values()
    )


_CODE_LAST = frozenset(t for t in PROMPT_TEMPLATES if _code_comes_last(t))


def render_prompt(template: str, language: str, **fields: Any) -> str:
    """`render` for a prompt, its text without the code remembered per wording and fields.

    A prompt's code is its last part and follows the template's own words, so the coded
    text is the uncoded one plus the code's part, each made GSM-7 and scrubbed as `render`
    does the whole (no word runs across that seam). A busy minute asks thousands of people
    the same few questions, each with its own code: one rendering serves every code.
    """
    code = fields.get("code")
    if not code or template not in _CODE_LAST:
        return render(template, language, **fields)
    rest = tuple(sorted((k, v) for k, v in fields.items() if k != "code"))
    try:
        base = _uncoded(template, language, rest)
    except TypeError:  # a field that cannot be a cache key
        return render(template, language, **fields)
    text = base + _code_part(language_of(language), _code(code))
    if gsm.segments(text) > MAX_SEGMENTS[template]:
        return render(template, language, **fields)  # fails as render does
    return text


@functools.lru_cache(maxsize=1024)
def _uncoded(template: str, language: str, fields: tuple[tuple[str, Any], ...]) -> str:
    return render(template, language, **dict(fields))


@functools.lru_cache(maxsize=1024)
def _code_part(lang: str, code: str) -> str:
    return scrub(gsm.to_gsm7(PARTS["code"][lang].format(code=code)))
