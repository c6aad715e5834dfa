"""Calling hours in the callee's own local time.

A number's time zones come from phonenumbers' time zone data. A number that spans
several zones (a US mobile number, an Australian one) gets the most restrictive
reading: it may be called only while the hours are open in every one of them. The
campaign's `timezone` option overrides the number's zones.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import timezone as number_zones

UNKNOWN_ZONE = "Etc/Unknown"


class NoTimeZone(ValueError):
    """Neither the number nor its country says where the callee is."""


def zones_for(number: str, override: str | None = None) -> tuple[str, ...]:
    """The IANA zones `number`'s calling hours are read in (sorted, never empty).

    A number with no zone of its own gets its country calling code's zones."""
    if override:
        return (override,)
    parsed = phonenumbers.parse(number)
    zones = [zone for zone in number_zones.time_zones_for_number(parsed) if zone != UNKNOWN_ZONE]
    if not zones:
        country = number_zones.time_zones_for_geographical_number(
            phonenumbers.PhoneNumber(country_code=parsed.country_code, national_number=0)
        )
        zones = [zone for zone in country if zone != UNKNOWN_ZONE]
    if not zones:
        raise NoTimeZone(f"no time zone is known for {number}: set options.timezone")
    return tuple(sorted(set(zones)))
