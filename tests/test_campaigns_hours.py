"""Calling hours in the callee's local time (bridge.campaigns.hours) with a clock the
test sets: three zones, DST both ways in the US and the EU, weekdays, a number that
spans several zones, the `timezone` override, NeverOpen; and which CampaignOptions
are refused (bridge.campaigns.options)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from bridge.campaigns.hours import NeverOpen, NoTimeZone, is_open, next_opening, zones_for
from bridge.campaigns.options import CallingHours, CampaignOptions

NEW_YORK = "+12125550123"
LONDON = "+442071234567"
SYDNEY = "+61212345678"
AUSTRALIAN_MOBILE = "+61412345678"  # every Australian zone, Cocos (+6:30) to Lord Howe
TOLL_FREE = "+18005550123"  # all of +1: Pago Pago (-11) to Guam (+10)
DEFAULT = CallingHours()  # 09:00-20:00, mon-sat
EVERY_DAY = CallingHours(days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"])


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def test_a_numbers_zones_come_from_its_digits_or_the_override() -> None:
    assert zones_for(NEW_YORK) == ("America/New_York",)
    assert zones_for(LONDON) == ("Europe/London",)
    assert zones_for(SYDNEY) == ("Australia/Sydney",)
    mobile = zones_for(AUSTRALIAN_MOBILE)
    assert {"Australia/Perth", "Australia/Sydney", "Indian/Cocos"} <= set(mobile)
    assert list(mobile) == sorted(set(mobile))
    assert zones_for(AUSTRALIAN_MOBILE, "Australia/Perth") == ("Australia/Perth",)


def test_a_number_with_no_zone_gets_its_countrys_and_one_without_a_country_none() -> None:
    # +1 555 is no real area: it gets every zone of +1.
    assert "Pacific/Guam" in zones_for("+15555550123")
    with pytest.raises(NoTimeZone, match=r"\+80012345678: set options.timezone"):
        zones_for("+80012345678")  # international freephone: no country
    assert zones_for("+80012345678", "Europe/Paris") == ("Europe/Paris",)


def test_three_zones_at_one_instant() -> None:
    # Wednesday 3 June 2026, 14:00 UTC: 10:00 in New York, 15:00 in London, midnight
    # in Sydney.
    at = utc(2026, 6, 3, 14, 0)
    assert is_open(at, zones_for(NEW_YORK), DEFAULT)
    assert is_open(at, zones_for(LONDON), DEFAULT)
    assert not is_open(at, zones_for(SYDNEY), DEFAULT)
    assert not is_open(at, [*zones_for(NEW_YORK), *zones_for(SYDNEY)], DEFAULT)
    assert next_opening(at, zones_for(NEW_YORK), DEFAULT) == at
    # 09:00 in Sydney (AEST, +10) is 23:00 UTC the day before.
    assert next_opening(at, zones_for(SYDNEY), DEFAULT) == utc(2026, 6, 3, 23, 0)
    # London closes at 20:00 BST (19:00 UTC) and opens at 08:00 UTC the next day.
    assert not is_open(utc(2026, 6, 3, 19, 0), zones_for(LONDON), DEFAULT)
    assert is_open(utc(2026, 6, 3, 18, 59), zones_for(LONDON), DEFAULT)
    assert next_opening(utc(2026, 6, 3, 19, 0), zones_for(LONDON), DEFAULT) == utc(2026, 6, 4, 8, 0)


def test_the_answer_is_in_utc_whatever_zone_the_clock_is_in() -> None:
    from zoneinfo import ZoneInfo

    local = datetime(2026, 6, 3, 22, 0, tzinfo=ZoneInfo("America/New_York"))
    opening = next_opening(local, zones_for(NEW_YORK), DEFAULT)
    assert opening == utc(2026, 6, 4, 13, 0)
    assert opening.tzinfo is UTC


@pytest.mark.parametrize(
    ("at", "hours", "expected", "why"),
    [
        # US spring forward, Sunday 8 March 2026: Saturday evening after close, Sunday
        # closed, so Monday 09:00 EDT (-4) = 13:00 UTC, not EST's 14:00.
        (utc(2026, 3, 8, 2, 0), DEFAULT, utc(2026, 3, 9, 13, 0), "us spring, mon-sat"),
        (utc(2026, 3, 8, 2, 0), EVERY_DAY, utc(2026, 3, 8, 13, 0), "us spring, the day itself"),
        # US fall back, Sunday 1 November 2026: Monday 09:00 EST (-5) = 14:00 UTC.
        (utc(2026, 11, 1, 1, 0), DEFAULT, utc(2026, 11, 2, 14, 0), "us fall, mon-sat"),
        (utc(2026, 11, 1, 1, 0), EVERY_DAY, utc(2026, 11, 1, 14, 0), "us fall, the day itself"),
    ],
)
def test_new_york_across_dst(
    at: datetime, hours: CallingHours, expected: datetime, why: str
) -> None:
    assert next_opening(at, zones_for(NEW_YORK), hours) == expected, why
    assert is_open(expected, zones_for(NEW_YORK), hours)
    assert not is_open(expected - timedelta(seconds=1), zones_for(NEW_YORK), hours)


@pytest.mark.parametrize(
    ("at", "expected", "why"),
    [
        # EU spring forward, Sunday 29 March 2026: 09:00 BST (+1) = 08:00 UTC.
        (utc(2026, 3, 28, 21, 0), utc(2026, 3, 29, 8, 0), "eu spring"),
        # EU fall back, Sunday 25 October 2026: 09:00 GMT = 09:00 UTC.
        (utc(2026, 10, 24, 21, 0), utc(2026, 10, 25, 9, 0), "eu fall"),
    ],
)
def test_london_across_dst(at: datetime, expected: datetime, why: str) -> None:
    assert next_opening(at, zones_for(LONDON), EVERY_DAY) == expected, why


def test_between_the_us_and_eu_changes_new_york_and_london_are_four_hours_apart() -> None:
    # 17-28 March 2026 the US is on summer time and the EU is not: both open from
    # 13:00 UTC (09:00 EDT) to 20:00 UTC (20:00 GMT); a week later, 13:00 to 19:00.
    both = [*zones_for(NEW_YORK), *zones_for(LONDON)]
    assert next_opening(utc(2026, 3, 18, 0, 0), both, DEFAULT) == utc(2026, 3, 18, 13, 0)
    assert is_open(utc(2026, 3, 18, 19, 30), both, DEFAULT)
    assert not is_open(utc(2026, 3, 18, 20, 0), both, DEFAULT)
    assert not is_open(utc(2026, 4, 1, 19, 30), both, DEFAULT)


def test_an_opening_time_that_dst_skips_is_read_as_after_the_change() -> None:
    # 02:30 does not exist in New York on 8 March 2026: the hours open at 03:00 EDT.
    night = CallingHours(
        open=time(2, 30), close=time(5, 0), days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    )
    opening = next_opening(utc(2026, 3, 8, 5, 0), zones_for(NEW_YORK), night)
    assert opening == utc(2026, 3, 8, 7, 30)
    assert is_open(opening, zones_for(NEW_YORK), night)


def test_weekdays_closed_days_are_skipped() -> None:
    mondays = CallingHours(days=["mon"])
    # Tuesday 2 June 2026 noon in New York: the next Monday, 8 June, 09:00 EDT.
    assert next_opening(utc(2026, 6, 2, 16, 0), zones_for(NEW_YORK), mondays) == utc(
        2026, 6, 8, 13, 0
    )
    # Sunday is not in the default days.
    assert not is_open(utc(2026, 6, 7, 16, 0), zones_for(NEW_YORK), DEFAULT)
    assert next_opening(utc(2026, 6, 7, 16, 0), zones_for(NEW_YORK), DEFAULT) == utc(
        2026, 6, 8, 13, 0
    )
    # Monday after close: the same Monday is past, the next one comes.
    assert next_opening(utc(2026, 6, 9, 1, 0), zones_for(NEW_YORK), mondays) == utc(
        2026, 6, 15, 13, 0
    )


def test_a_number_in_several_zones_gets_the_most_restrictive_reading() -> None:
    zones = zones_for(AUSTRALIAN_MOBILE)
    # June (no DST in Australia's winter): open in every zone only from 02:30 UTC
    # (09:00 on Cocos, +6:30) to 09:30 UTC (20:00 on Lord Howe, +10:30).
    assert next_opening(utc(2026, 6, 3, 0, 0), zones, DEFAULT) == utc(2026, 6, 3, 2, 30)
    assert is_open(utc(2026, 6, 3, 9, 29), zones, DEFAULT)
    assert not is_open(utc(2026, 6, 3, 9, 30), zones, DEFAULT)
    # Sydney alone is open at 01:00 UTC (11:00 AEST); the mobile number is not.
    assert is_open(utc(2026, 6, 3, 1, 0), zones_for(SYDNEY), DEFAULT)
    assert not is_open(utc(2026, 6, 3, 1, 0), zones, DEFAULT)
    # The override reads them in one zone only.
    perth = zones_for(AUSTRALIAN_MOBILE, "Australia/Perth")
    assert next_opening(utc(2026, 6, 3, 0, 0), perth, DEFAULT) == utc(2026, 6, 3, 1, 0)


def test_hours_never_open_in_all_zones_at_once_raise_never_open() -> None:
    with pytest.raises(NeverOpen, match=r"never open in all of .* and \d+ more zones"):
        next_opening(utc(2026, 6, 3, 0, 0), zones_for(TOLL_FREE), DEFAULT)
    # 09:00-20:00 in Tokyo is 00:00-11:00 UTC, in New York (EDT) 13:00-00:00 UTC.
    with pytest.raises(NeverOpen, match="America/New_York, Asia/Tokyo at once"):
        next_opening(utc(2026, 6, 3), ["America/New_York", "Asia/Tokyo"], DEFAULT)
    # With the override, the same number is fine.
    assert next_opening(
        utc(2026, 6, 3, 2, 0), zones_for(TOLL_FREE, "America/Chicago"), DEFAULT
    ) == utc(2026, 6, 3, 14, 0)


# --- CampaignOptions: what is refused, and why ---------------------------------


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"calling_hours": {"open": "07:00", "close": "20:00"}}, "08:00-21:00"),
        ({"calling_hours": {"open": "09:00", "close": "21:30"}}, "allow_outside_legal_hours"),
        ({"calling_hours": {"open": "20:00", "close": "09:00"}}, "past midnight"),
        ({"calling_hours": {"open": "10:00", "close": "10:00"}}, "the same time"),
        ({"calling_hours": {"open": "9am", "close": "20:00"}}, "did you mean 09:00"),
        ({"calling_hours": {"days": []}}, "at least 1"),
        ({"calling_hours": {"days": ["funday"]}}, "'mon'"),
        ({"calling_hours": {"open": "09:00+02:00"}}, "without an offset"),
        ({"retry": {"on": ["machine"]}}, "needs machine_detection"),
        ({"retry": {"on": ["completed"]}}, "'busy'"),
        ({"retry": {"attempts": 11}}, "less than or equal to 10"),
        ({"retry": {"delay": -1}}, "greater than or equal to 0"),
        ({"on_machine": "message", "machine_detection": True}, "machine_message is required"),
        ({"machine_message": "   "}, "must not be blank"),
        ({"machine_message": "call us\x00 back"}, "control characters"),
        ({"rate": 0}, "greater than 0"),
        ({"rate": 101}, "less than or equal to 100"),
        ({"max_in_flight": 0}, "greater than or equal to 1"),
        ({"ring_timeout": 2}, "greater than or equal to 5"),
        ({"timezone": "Mars/Olympus"}, "unknown time zone"),
        ({"start_at": "2026-06-03T09:00:00"}, "timezone"),
        ({"mode": "fax"}, "'twilio'"),
        ({"colour": "blue"}, "Extra inputs"),
    ],
)
def test_options_that_are_refused(options: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError) as refused:
        CampaignOptions.model_validate(options)
    assert words in str(refused.value)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"calling_hours": {"open": "08:00", "close": "21:00"}},
        {
            "calling_hours": {"open": "07:00", "close": "22:00"},
            "allow_outside_legal_hours": True,
        },
        {"retry": {"on": ["machine", "busy"]}, "machine_detection": True},
        {"retry": {"on": [], "attempts": 0}},
        {"start_at": "2026-06-03T09:00:00-04:00", "timezone": "America/New_York"},
        {"on_machine": "message", "machine_detection": True, "machine_message": "Call us back."},
        {"rate": 0.5, "max_in_flight": 3, "ring_timeout": 45, "mode": "twilio"},
    ],
)
def test_options_that_are_accepted(options: dict[str, Any]) -> None:
    CampaignOptions.model_validate(options)


def test_defaults_and_the_start_time() -> None:
    options = CampaignOptions()
    assert (options.calling_hours.open, options.calling_hours.close) == (time(9), time(20))
    assert options.calling_hours.days == ["mon", "tue", "wed", "thu", "fri", "sat"]
    assert (options.rate, options.retry.attempts, options.retry.delay) == (1.0, 2, 3600)
    assert options.retry.on == ["busy", "no-answer"]
    now = utc(2026, 6, 3, 12, 0)
    assert options.starts_at(now) == now
    later = CampaignOptions.model_validate({"start_at": "2026-06-04T09:00:00-04:00"})
    assert later.starts_at(now) == utc(2026, 6, 4, 13, 0)
    assert later.starts_at(now).tzinfo is UTC
