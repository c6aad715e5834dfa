"""Which numbers the bridge may dial: a guard against toll fraud.

A stolen bearer token (or a prompt-injected agent asking for a transfer) must not
be able to make the callbridge call premium-rate lines or far-away countries on the
account's bill.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import PhoneNumberType

REFUSED_TYPES = {
    PhoneNumberType.PREMIUM_RATE: "a premium-rate number",
    PhoneNumberType.SHARED_COST: "a shared-cost number",
    # Personal numbers forward anywhere at the caller's cost: a classic toll-fraud route.
    PhoneNumberType.PERSONAL_NUMBER: "a personal (follow-me) number",
}


def destination_problem(number: str, allowed_countries: tuple[str, ...]) -> str | None:
    """Why `number` may not be dialled, or None when it may."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return f"{number} is not a phone number"
    if not phonenumbers.is_valid_number(parsed):
        return f"{number} is not a valid phone number"
    kind = phonenumbers.number_type(parsed)
    if kind in REFUSED_TYPES:
        return f"{number} is {REFUSED_TYPES[kind]}; the bridge never dials those"
    region = phonenumbers.region_code_for_number(parsed)
    if not allowed_countries:
        return (
            "no destination country is allowed: set OUTBOUND_ALLOWED_COUNTRIES "
            "(or TWILIO_PHONE_NUMBER, whose country is the default)"
        )
    if region not in allowed_countries:
        return (
            f"{number} is in {region}, which is not in the allowed countries "
            f"({', '.join(allowed_countries)}; see OUTBOUND_ALLOWED_COUNTRIES)"
        )
    return None
