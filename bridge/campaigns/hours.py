"""Calling hours in the callee's own local time.

A number's time zones come from phonenumbers' time zone data. A number that spans
several zones (a US mobile number, an Australian one) gets the most restrictive
reading: it may be called only while the hours are open in every one of them. The
campaign's `timezone` option overrides the number's zones.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as number_zones

from bridge.campaigns.options import CallingHours
from bridge.routing.schedule import WEEKDAYS

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


class NeverOpen(ValueError):
    """The calling hours are never open in all of a number's zones at once."""


# Enough to cross a week of closed days in every zone, and a few zone disagreements.
_MAX_STEPS = 64
_DAYS_AHEAD = 8
_SHOWN_ZONES = 4


def is_open(at: datetime, zones: Sequence[str], hours: CallingHours) -> bool:
    """Whether `at` (aware) is within `hours` in every one of `zones`."""
    return all(_open_in(at, zone, hours) for zone in zones)


def next_opening(at: datetime, zones: Sequence[str], hours: CallingHours) -> datetime:
    """The first instant at or after `at` (aware) when `hours` are open in every zone,
    in UTC: `at` itself when they are open already."""
    moment = at.astimezone(UTC)
    for _ in range(_MAX_STEPS):
        later = max(_next_open_in(moment, zone, hours) for zone in zones)
        if later == moment:
            return moment
        moment = later
    raise NeverOpen(
        f"the calling hours {hours.open:%H:%M}-{hours.close:%H:%M} are never open in all of "
        f"{_some(zones)} at once: set options.timezone"
    )


def _some(zones: Sequence[str]) -> str:
    """The zones for a message: a toll-free +1 number has 42 of them."""
    if len(zones) <= _SHOWN_ZONES:
        return ", ".join(zones)
    return f"{', '.join(zones[:_SHOWN_ZONES])} and {len(zones) - _SHOWN_ZONES} more zones"


def _open_in(at: datetime, zone: str, hours: CallingHours) -> bool:
    local = at.astimezone(ZoneInfo(zone))
    return hours.opened_on(local) is not None


def _next_open_in(at: datetime, zone: str, hours: CallingHours) -> datetime:
    """The first instant at or after `at` when `hours` are open in `zone` (UTC)."""
    if _open_in(at, zone, hours):
        return at
    tz = ZoneInfo(zone)
    today = at.astimezone(tz).date()
    for ahead in range(_DAYS_AHEAD):
        day = today + timedelta(days=ahead)
        if WEEKDAYS[day.weekday()] not in hours.days:
            continue
        # A local opening time that a DST change skips is read as after the change.
        opening = datetime.combine(day, hours.open, tzinfo=tz).astimezone(UTC)
        if opening >= at:
            return opening
    raise NeverOpen(f"no calling hours in {zone} within a week: check calling_hours.days")
