"""Opening hours in an IANA time zone, with holidays."""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name like 'America/New_York'"
        ) from None
    return name


TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]

EXPECTED_TIME = "a 24-hour time like 09:00 or 21:30"
# What people write instead of 09:00: "9am", "9:30 p.m.", "9.30", "9h30", "0930".
_LOOSE_TIME = re.compile(
    r"(?P<hour>\d{1,2})(?:[:.h]?(?P<minute>\d{2}))?(?:(?P<half>[ap])\.?(?:m\.?)?)?"
)
_WORDS = {"noon": "12:00", "midday": "12:00", "midnight": "00:00"}


def _meant_time(written: str) -> str | None:
    """The HH:MM that `written` obviously means, if it does."""
    text = written.strip().replace(" ", "").lower()
    if text in _WORDS:
        return _WORDS[text]
    match = _LOOSE_TIME.fullmatch(text)
    if match is None:
        return None
    hour, minute = int(match["hour"]), int(match["minute"] or 0)
    if match["half"]:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if match["half"] == "p" else 0)
    elif (hour, minute) == (24, 0):
        hour = 0  # a close of 00:00 is midnight
    if hour > 23 or minute > 59:
        return None
    return f"{hour:02d}:{minute:02d}"


def _bad_time(value: object) -> str:
    if isinstance(value, bool | int | float):
        # TOML reads an unquoted 9 as a number, which pydantic takes for seconds.
        meant = _meant_time(str(value)) if isinstance(value, int) and value >= 0 else None
        hint = f'; did you mean "{meant}"?' if meant else ""
        return f"{value} is not {EXPECTED_TIME}, in quotes{hint}"
    if not isinstance(value, str):
        return f"{value} is not {EXPECTED_TIME}"  # a TOML date or date-time
    meant = _meant_time(value)
    return f"{value!r} is not {EXPECTED_TIME}" + (f"; did you mean {meant}?" if meant else "")


class Window(BaseModel):
    """Open from `open` to `close` on each of `days`; a close before open runs past midnight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: list[Weekday] = Field(min_length=1)
    open: time
    close: time

    @field_validator("open", "close", mode="wrap")
    @classmethod
    def _clock_time(cls, value: object, parse: ValidatorFunctionWrapHandler) -> time:
        if isinstance(value, bool | int | float):
            raise ValueError(_bad_time(value))
        try:
            parsed: time = parse(value)
        except ValidationError:
            raise ValueError(_bad_time(value)) from None
        return parsed

    @field_validator("open", "close")
    @classmethod
    def _local_time(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError("must be a local time like 09:00, without an offset")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> Window:
        if self.open == self.close:
            raise ValueError("open and close are the same time: the window would be empty")
        return self

    def opened_on(self, local: datetime) -> date | None:
        """The local date this window opened on if it is open at `local`, else None."""
        clock = local.time().replace(tzinfo=None)
        today = local.date()
        if self.open < self.close:
            opened = today if self.open <= clock < self.close else None
        elif clock >= self.open:
            opened = today  # overnight, the evening part
        elif clock < self.close:
            opened = today - timedelta(days=1)  # overnight, the early hours
        else:
            opened = None
        if opened is None or WEEKDAYS[opened.weekday()] not in self.days:
            return None
        return opened


class Schedule(BaseModel):
    """Opening hours, minus holidays.

    A window belongs to the local date it opens on. A holiday closes every window that
    opens on it, all of it: Friday 22:00-06:00 with Friday a holiday stays closed until
    Saturday 06:00. A window that opened the day before runs to its close: Thursday
    22:00-06:00 is open until 06:00 on a Friday holiday.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: TimeZoneName
    hours: list[Window] = Field(min_length=1)
    holidays: list[date] = Field(default_factory=list)

    def is_open(self, at: datetime) -> bool:
        """Whether `at` (an aware datetime) is in a window that did not open on a holiday."""
        local = at.astimezone(ZoneInfo(self.timezone))
        for window in self.hours:
            opened = window.opened_on(local)
            if opened is not None and opened not in self.holidays:
                return True
        return False
