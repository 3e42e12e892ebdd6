"""Meeting type code tables per fellowship, and code/label normalisation."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)

# Codes are stored uppercased, so table keys are uppercase too ("12x12" -> "12X12").
# Labels follow the 12 Step Meeting List plugin's English wording.
AA_TYPES: dict[str, str] = {
    "O": "Open",
    "C": "Closed",
    "D": "Discussion",
    "SP": "Speaker",
    "ST": "Step Study",
    "B": "Big Book",
    "BE": "Newcomer",
    "TR": "Tradition Study",
    "11": "11th Step Meditation",
    "12X12": "12 Steps & 12 Traditions",
    "MED": "Meditation",
    "LIT": "Literature",
    "DR": "Daily Reflections",
    "LS": "Living Sober",
    "GR": "Grapevine",
    "ABSI": "As Bill Sees It",
    "H": "Birthday",
    "A": "Secular",
    "M": "Men",
    "W": "Women",
    "Y": "Young People",
    "SEN": "Seniors",
    "LGBTQ": "LGBTQ",
    "G": "Gay",
    "L": "Lesbian",
    "BI": "Bisexual",
    "T": "Transgender",
    "NB": "Non-Binary",
    "POC": "People of Color",
    "N": "Native American",
    "NDG": "Indigenous",
    "P": "Professionals",
    "DD": "Dual Diagnosis",
    "X": "Wheelchair Access",
    "XB": "Wheelchair-Accessible Bathroom",
    "ASL": "American Sign Language",
    "BA": "Babysitting Available",
    "CF": "Child-Friendly",
    "BRK": "Breakfast",
    "CAN": "Candlelight",
    "OUT": "Outdoor Meeting",
    "FF": "Fragrance Free",
    "SM": "Smoking Permitted",
    "XT": "Cross Talk Permitted",
    "DB": "Digital Basket",
    "POA": "Proof of Attendance",
    "AL": "Concurrent with Alateen",
    "AL-AN": "Concurrent with Al-Anon",
    "TC": "Location Temporarily Closed",
    "ONL": "Online Meeting",
    # Language codes, as the plugin spells them.
    "EN": "English",
    "S": "Spanish",
    "FR": "French",
    "DE": "German",
    "POL": "Polish",
    "POR": "Portuguese",
    "RUS": "Russian",
    "KOR": "Korean",
    "JA": "Japanese",
    "ITA": "Italian",
    "HI": "Hindi",
    "HE": "Hebrew",
    "PUN": "Punjabi",
    "AR": "Arabic",
    "ZH": "Chinese",
    "FA": "Persian",
    "TL": "Tagalog",
    "UK": "Ukrainian",
    "VI": "Vietnamese",
}

# NA codes as commonly configured on BMLT servers (NAWS world format codes plus
# the usual local ones). Servers may define their own; unknown codes pass through.
NA_TYPES: dict[str, str] = {
    "O": "Open",
    "C": "Closed",
    "BEG": "Beginner/Newcomer",
    "B": "Beginners",
    "SPK": "Speaker",
    "STEP": "Step Meeting",
    "DISC": "Discussion/Participation",
    "TOP": "Topic",
    "TRAD": "Tradition",
    "BT": "Basic Text",
    "JFT": "Just for Today",
    "IW": "It Works: How and Why",
    "LC": "Living Clean",
    "SWG": "Step Working Guide",
    "SPAD": "A Spiritual Principle a Day",
    "GP": "Guiding Principles",
    "IP": "Informational Pamphlet",
    "LIT": "Literature Study",
    "CPT": "12 Concepts",
    "QA": "Questions & Answers",
    "VAR": "Format Varies",
    "MED": "Meditation",
    "CAN": "Candlelight",
    "CW": "Children Welcome",
    "NC": "No Children",
    "NS": "Non-Smoking",
    "SMOK": "Smoking",
    "WC": "Wheelchair Accessible",
    "W": "Women",
    "M": "Men",
    "GL": "Gay/Lesbian",
    "LGBTQ": "LGBTQ+",
    "Y": "Young People",
    "BL": "Bilingual",
    "RA": "Restricted Access",
    "CH": "Closed Holidays",
    "VM": "Virtual Meeting",
    "HY": "Hybrid Meeting",
    "TC": "Temporarily Closed",
    "ONL": "Online Meeting",
    "EN": "English",
    "ES": "Spanish",
    "S": "Spanish",
    "FR": "French",
    "DE": "German",
    "ASL": "American Sign Language",
}

# Recovery Dharma / Refuge Recovery publish no standard code list; this is a
# plausible small table of what their meeting lists use. Extend it when a real
# feed shows other codes (unknown codes still import, labelled with the code).
DHARMA_TYPES: dict[str, str] = {
    "MED": "Meditation",
    "INQ": "Inquiry",
    "BOOK": "Book Study",
    "DISC": "Discussion",
    "TOP": "Topic",
    "SPK": "Speaker",
    "NT": "Four Noble Truths",
    "EP": "Eightfold Path",
    "PRE": "Precepts",
    "BE": "Newcomer",
    "O": "Open",
    "C": "Closed",
    "W": "Women",
    "M": "Men",
    "LGBTQ": "LGBTQ+",
    "POC": "People of Color",
    "Y": "Young People",
    "X": "Wheelchair Access",
    "TC": "Location Temporarily Closed",
    "ONL": "Online Meeting",
}

FELLOWSHIP_TABLES: dict[str, dict[str, str]] = {
    "aa": AA_TYPES,
    "na": NA_TYPES,
    "rd": DHARMA_TYPES,
}

# Accepted spellings for the fellowship parameter; values are FELLOWSHIP_TABLES keys.
_FELLOWSHIP_ALIASES: dict[str, str] = {
    "aa": "aa",
    "alcoholics anonymous": "aa",
    "na": "na",
    "narcotics anonymous": "na",
    "rd": "rd",
    "recovery dharma": "rd",
    "rr": "rd",
    "refuge recovery": "rd",
}

# Extra label spellings seen in hand-made spreadsheets, mapped to codes.
_LABEL_ALIASES: dict[str, dict[str, str]] = {
    "aa": {"wheelchair accessible": "X", "newcomers": "BE", "beginners": "BE", "online": "ONL"},
    "na": {"beginners": "BEG", "newcomer": "BEG", "wheelchair access": "WC", "online": "VM"},
    "rd": {"newcomers": "BE", "online": "ONL"},
}

MAX_CODE_LENGTH = 64
MAX_TYPES = 100


def normalize_fellowship(fellowship: str) -> str:
    """Return the table key for a fellowship name, or raise ValueError."""
    if type(fellowship) is str and fellowship in FELLOWSHIP_TABLES:
        return fellowship  # already a table key (every per-row call after the first)
    key = " ".join(str(fellowship).replace("-", " ").replace("_", " ").split()).casefold()
    try:
        return _FELLOWSHIP_ALIASES[key]
    except KeyError:
        known = ", ".join(sorted(FELLOWSHIP_TABLES))
        raise ValueError(f"unknown fellowship {fellowship!r} (known: {known})") from None


def _label_index(fellowship: str) -> dict[str, str]:
    index = {label.casefold(): code for code, label in FELLOWSHIP_TABLES[fellowship].items()}
    index.update(_LABEL_ALIASES.get(fellowship, {}))
    return index


_LABEL_INDEXES: dict[str, dict[str, str]] = {f: _label_index(f) for f in FELLOWSHIP_TABLES}


def _scalar_pieces(value: Any) -> list[str]:
    """Split one raw `types` element into candidate code strings."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int):
        return [str(value)] if abs(value) < 10**6 else []
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) < 10**6:
            return [str(int(value))]
        return []
    if isinstance(value, str):
        return value.split(",")
    return []


# A feed repeats the same few type lists; short ones of plain strings are normalised once.
_CACHE_SIZE = 4096
_CACHED_ITEMS = 16
_CACHED_LENGTH = 64


# fellowship -> {an element seen in a `types` list: the one code it names}, for short strings
# naming exactly one code (nearly all of them: "O", "Open", "12x12"). A hit needs no type
# test, since only a string equals a string.
_ONE_CODE: dict[str, dict[str, str]] = {f: {} for f in FELLOWSHIP_TABLES}


def normalize_codes(raw: Any, fellowship: str) -> tuple[str, ...]:
    """Turn a feed's `types` value (list, comma string, numbers, labels) into codes."""
    fellowship = normalize_fellowship(fellowship)
    if type(raw) is list and len(raw) <= _CACHED_ITEMS:
        # Feeds combine a few dozen codes into thousands of distinct lists, so the list is
        # read element by element: one lookup each, when every element is known and the
        # codes come out distinct (else the general path, which also learns the elements).
        known = _ONE_CODE[fellowship]
        try:
            codes = tuple([known[item] for item in raw])
        except (KeyError, TypeError):  # an element not seen yet, or not hashable
            pass
        else:
            if len(set(codes)) == len(codes):
                return codes
        if all(type(item) is str and len(item) <= _CACHED_LENGTH for item in raw):
            if len(known) < _CACHE_SIZE:
                for item in raw:
                    item_codes = _item_codes_cached(item, fellowship)
                    if len(item_codes) == 1:
                        known[item] = item_codes[0]
            return _codes_cached(tuple(raw), fellowship)
    elif type(raw) is str and len(raw) <= _CACHED_LENGTH * _CACHED_ITEMS:
        return _codes_cached((raw,), fellowship)
    return _codes(raw if isinstance(raw, list) else [raw], fellowship)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _codes_cached(items: tuple[str, ...], fellowship: str) -> tuple[str, ...]:
    return _codes(items, fellowship)


def _codes(items: Iterable[Any], fellowship: str) -> tuple[str, ...]:
    codes: list[str] = []
    for item in items:
        item_codes = (
            _item_codes_cached(item, fellowship)
            if type(item) is str and len(item) <= _CACHED_LENGTH
            else _item_codes(item, fellowship)
        )
        for code in item_codes:
            if code not in codes:
                codes.append(code)
                if len(codes) >= MAX_TYPES:
                    return tuple(codes)
    return tuple(codes)


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _item_codes_cached(item: str, fellowship: str) -> tuple[str, ...]:
    return _item_codes(item, fellowship)


def _item_codes(item: Any, fellowship: str) -> tuple[str, ...]:
    """Return the codes one raw `types` element names, in order (repeats kept)."""
    codes = (_piece_code(piece, fellowship) for piece in _scalar_pieces(item))
    return tuple(code for code in codes if code is not None)


def _piece_code(piece: str, fellowship: str) -> str | None:
    """Return the code one comma-separated piece names, or None for an empty or overlong one."""
    # Keep only printable, non-space characters' worth of text.
    printable = piece if piece.isprintable() else "".join(ch for ch in piece if ch.isprintable())
    text = " ".join(printable.split())
    if not text or len(text) > MAX_CODE_LENGTH:
        return None
    return _LABEL_INDEXES[fellowship].get(text.casefold(), text.upper())


def labels_for(codes: Iterable[str], fellowship: str) -> tuple[str, ...]:
    """Return the display label for each code; unknown codes label as themselves."""
    return _labels(codes, normalize_fellowship(fellowship))


def _labels(codes: Iterable[str], fellowship: str) -> tuple[str, ...]:
    table = FELLOWSHIP_TABLES[fellowship]
    codes = tuple(codes)
    labels = tuple(map(table.get, codes))  # stored codes are uppercase already
    if None not in labels:
        return labels  # type: ignore[return-value]  # no None, so tuple[str, ...]
    return tuple(table.get(code.upper(), code) for code in codes)
