"""Phone number facts the bridge needs: validity, country, anonymity, masking."""

from __future__ import annotations

import re
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

# The E.164 shape the AI caller API states (`^\+[1-9]\d{7,14}$`), ASCII digits only:
# Python's and pydantic's `\d` also match other scripts' digits, such as "٤".
E164_PATTERN = r"^\+[1-9][0-9]{7,14}$"
E164 = re.compile(E164_PATTERN)
PREFIX = re.compile(r"^\+[0-9]{1,14}$")
E164_HINT = "an E.164 number like +14155550123"
SIP_HINT = "a SIP URI like sip:alice@example.com"

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


def is_sip_uri(value: str) -> bool:
    """A `sip:` destination as `forward` rules take it: the scheme and a user@host."""
    return value[:4].lower() == "sip:" and "@" in value


def _e164_number(value: str) -> str:
    if not is_e164(value):
        # A custom error: pydantic's own would show the regular expression.
        raise PydanticCustomError("e164", f"should be {E164_HINT}")
    return value


def _dial_target(value: str) -> str:
    if value[:4].lower() == "sip:":
        if not is_sip_uri(value):
            raise PydanticCustomError("sip_uri", f"should be {SIP_HINT}")
        return value
    if not is_e164(value):
        raise PydanticCustomError("dial_target", f"should be {E164_HINT} or {SIP_HINT}")
    return value


# Field types for request models; their errors say what to write, not a pattern.
E164Number = Annotated[str, AfterValidator(_e164_number)]
DialTarget = Annotated[str, AfterValidator(_dial_target)]


# What people put between digit groups: "+1 (415) 555-0123", "+1.415.555.0123".
_SEPARATORS = re.compile(r"[\s().\-]")


def without_separators(value: str) -> str:
    """A number as people write it, without its spaces, dashes, dots and parentheses."""
    return _SEPARATORS.sub("", value)


def suggestion(value: str) -> str | None:
    """The valid E.164 number someone probably meant by `value`, or None: separators
    dropped, and a missing `+` (or an international `00`) put right. None when the
    digits make no valid number, such as a national number without its country code."""
    digits = without_separators(value.strip())
    if digits.startswith("00"):
        digits = digits[2:]
    candidate = digits if digits.startswith("+") else "+" + digits
    if candidate == value or not is_e164(candidate):
        return None
    try:
        valid = phonenumbers.is_valid_number(phonenumbers.parse(candidate, None))
    except phonenumbers.NumberParseException:
        return None
    return candidate if valid else None
