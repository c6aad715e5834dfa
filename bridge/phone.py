"""Phone number facts the bridge needs: validity, country, anonymity, masking."""

from __future__ import annotations

import re

import phonenumbers

# The E.164 shape the AI caller API states (`^\+[1-9]\d{7,14}$`), ASCII digits only:
# Python's and pydantic's `\d` also match other scripts' digits, such as "٤".
E164_PATTERN = r"^\+[1-9][0-9]{7,14}$"
E164 = re.compile(E164_PATTERN)
PREFIX = re.compile(r"^\+[0-9]{1,14}$")

# What carriers and Twilio put in `From` when caller ID is withheld: words, and the
# numbers that spell them on a keypad (ANONYMOUS, RESTRICTED, UNAVAILABLE, ...).
_ANONYMOUS_WORDS = {"", "anonymous", "restricted", "unknown", "unavailable", "private", "blocked"}
_ANONYMOUS_NUMBERS = {"+266696687", "+86282452253", "+8656696", "+2562533", "+7378742833"}


def is_e164(value: str) -> bool:
    return bool(E164.fullmatch(value))


def is_possible_e164(value: str) -> bool:
    """E.164 shape and a length that is possible for the country code."""
    if not is_e164(value):
        return False
    try:
        return phonenumbers.is_possible_number(phonenumbers.parse(value, None))
    except phonenumbers.NumberParseException:
        return False


def is_anonymous(value: str) -> bool:
    stripped = value.strip()
    return stripped.lower() in _ANONYMOUS_WORDS or stripped in _ANONYMOUS_NUMBERS


def country_of(value: str) -> str | None:
    """ISO 3166 alpha-2 region of an E.164 number, or None when it has none."""
    if not is_e164(value) or is_anonymous(value):
        return None
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(value, None))
    except phonenumbers.NumberParseException:
        return None
    return region if region and region != "ZZ" else None


def is_region(code: str) -> bool:
    return code.upper() in phonenumbers.SUPPORTED_REGIONS


def mask(value: str) -> str:
    """Enough of a number to tell calls apart in a log, not enough to dial it."""
    if not value or is_anonymous(value):
        return value or "-"
    if len(value) <= 7:
        return value[:1] + "*" * (len(value) - 1)
    return value[:3] + "*" * (len(value) - 7) + value[-4:]
