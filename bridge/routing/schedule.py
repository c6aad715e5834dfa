"""Opening hours in an IANA time zone, with holidays."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

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


class Window(BaseModel):
    """Open from `open` to `close` on each of `days`; a close before open runs past midnight."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: list[Weekday] = Field(min_length=1)
    open: time
    close: time

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
