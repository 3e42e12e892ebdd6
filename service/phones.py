"""Phone numbers: parse what people type, store and compare E.164."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers


class PhoneError(ValueError):
    """The text is not a valid phone number."""


def normalize_phone(value: str, default_region: str = "US") -> str:
    """Return `value` as E.164, accepting E.164 or a national number of `default_region`."""
    if not isinstance(value, str) or not value.strip():
        raise PhoneError("a phone number is required")
    if len(value) > 40:
        raise PhoneError("too long to be a phone number")
    return _normalized(value, default_region)


@lru_cache(maxsize=4096)
def _normalized(value: str, default_region: str) -> str:
    # Cached: every inbound text parses its sender's number, and numbers repeat. A PhoneError
    # is not cached (lru_cache keeps results only), so junk costs a parse each time.
    try:
        parsed = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException as exc:
        raise PhoneError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise PhoneError("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=4096)
def region_of(e164: str) -> str | None:
    """Return the two-letter region of an E.164 number (e.g. "US", "GB"), or None."""
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return None


def mask(e164: str | None) -> str:
    """Return a number safe for logs: only its last four digits."""
    if not e164:
        return "-"
    return f"…{e164[-4:]}"
