"""GSM 03.38 character sets, GSM-7 transliteration and SMS segment counting."""

from __future__ import annotations

import logging
import re
import unicodedata

logger = logging.getLogger(__name__)

# The 128 positions of the GSM 03.38 default alphabet, in table order, minus 0x1B
# (the escape into the extension table, not a character of its own).
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# Reached through the escape, so each costs two septets.
GSM7_EXTENSION = "\f^{}\\[~]|€"

_BASIC = frozenset(GSM7_BASIC)
_EXTENSION = frozenset(GSM7_EXTENSION)
_ALL = _BASIC | _EXTENSION
# One regex pass (in C) instead of a Python loop per character: the first character that is
# in neither table, and every extension character (each costs a second septet).
_NOT_GSM7 = re.compile("[^" + "".join(re.escape(ch) for ch in sorted(_ALL)) + "]")
_EXTENSION_CHARS = re.compile("[" + "".join(re.escape(ch) for ch in GSM7_EXTENSION) + "]")

GSM7_SINGLE = 160
GSM7_MULTI = 153  # the user-data header of a concatenated SMS takes 7 septets
UCS2_SINGLE = 70
UCS2_MULTI = 67

# Characters phones and word processors put into text that have a GSM look-alike.
_REPLACEMENTS: dict[str, str] = {
    "\u2018": "'",  # left single quotation mark
    "\u2019": "'",  # right single quotation mark / apostrophe
    "\u201a": "'",
    "\u201b": "'",
    "\u2032": "'",  # prime
    "\u00b4": "'",  # acute accent
    "`": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u201f": '"',
    "\u2033": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2039": "'",
    "\u203a": "'",
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2015": "-",  # horizontal bar
    "\u2212": "-",  # minus sign
    "\u00ad": "",  # soft hyphen: invisible, so drop it
    "\u2026": "...",
    "\u2022": "-",  # bullet
    "\u00b7": "-",
    "\t": " ",
    "\u00a0": " ",
    "\u2007": " ",
    "\u202f": " ",
    "\u205f": " ",
    "\u3000": " ",
    "\u2028": "\n",
    "\u2029": "\n",
    "\u00e7": "c",  # ç: the table's 0x09 is capital Ç; lower-casing it is closer in meaning
}
for _cp in range(0x2000, 0x200B):  # en quad .. hair space
    _REPLACEMENTS[chr(_cp)] = " "


def is_gsm7(text: str) -> bool:
    """Return True when every character of text is in the GSM-7 basic or extension table."""
    return _NOT_GSM7.search(text) is None


def _transliterate(ch: str) -> str:
    """Return the GSM-7 stand-in for one character, or '' when there is none."""
    if ch in _ALL:
        return ch
    if ch in _REPLACEMENTS:
        return _REPLACEMENTS[ch]
    # Decompose (á -> a + accent, ﬁ -> fi, full-width A -> A) and keep the GSM parts,
    # dropping the combining marks GSM-7 cannot carry.
    decomposed = unicodedata.normalize("NFKD", ch)
    if decomposed == ch:
        return ""
    out = []
    for part in decomposed:
        if unicodedata.combining(part):
            continue
        if part in _ALL:
            out.append(part)
        elif part in _REPLACEMENTS:
            out.append(_REPLACEMENTS[part])
        else:
            return ""
    return "".join(out)


def to_gsm7(text: str) -> str:
    """Return text with look-alikes replaced, accents stripped and anything else non-GSM-7 dropped."""
    if is_gsm7(text):
        return text
    # Compose first so that e + combining acute becomes the GSM character é.
    return "".join(_transliterate(ch) for ch in unicodedata.normalize("NFC", text))


def septets(text: str) -> int:
    """Return the GSM-7 length of text (extension characters count twice); text must be GSM-7."""
    return len(text) + len(_EXTENSION_CHARS.findall(text))


def _pack(units: list[int], single: int, multi: int) -> int:
    """Return how many parts units fill, never splitting one character across two parts."""
    if sum(units) <= single:
        return 1
    parts, used = 1, 0
    for size in units:
        if used + size > multi:
            parts += 1
            used = 0
        used += size
    return parts


def segments(text: str) -> int:
    """Return the number of SMS parts text needs (GSM-7 160/153, otherwise UCS-2 70/67)."""
    if is_gsm7(text):
        if septets(text) <= GSM7_SINGLE:
            return 1  # what _pack says of a text that fits one part, without the list
        return _pack([2 if ch in _EXTENSION else 1 for ch in text], GSM7_SINGLE, GSM7_MULTI)
    # UCS-2 counts UTF-16 code units; phones keep a surrogate pair in one part.
    return _pack([2 if ord(ch) > 0xFFFF else 1 for ch in text], UCS2_SINGLE, UCS2_MULTI)


def truncate_to_septets(text: str, limit: int, ellipsis: str = "...") -> str:
    """Return GSM-7 text cut (with ellipsis) so that its septet length is at most limit."""
    if septets(text) <= limit:
        return text
    room = limit - septets(ellipsis)
    out: list[str] = []
    used = 0
    for ch in text:
        cost = 2 if ch in _EXTENSION else 1
        if used + cost > room:
            break
        out.append(ch)
        used += cost
    return "".join(out).rstrip() + ellipsis if room > 0 else ellipsis[: max(limit, 0)]
