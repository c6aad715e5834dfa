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

    def contains(self, local: datetime) -> bool:
        clock = local.time().replace(tzinfo=None)
        today = WEEKDAYS[local.weekday()]
        if self.open < self.close:
            return today in self.days and self.open <= clock < self.close
        # Overnight: the evening part belongs to today, the early hours to yesterday.
        yesterday = WEEKDAYS[(local - timedelta(days=1)).weekday()]
        return (today in self.days and clock >= self.open) or (
            yesterday in self.days and clock < self.close
        )


class Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: TimeZoneName
    hours: list[Window] = Field(min_length=1)
    holidays: list[date] = Field(default_factory=list)

    def is_open(self, at: datetime) -> bool:
        """Whether `at` (an aware datetime) falls in opening hours, local time, not a holiday."""
        local = at.astimezone(ZoneInfo(self.timezone))
        if local.date() in self.holidays:
            return False
        return any(window.contains(local) for window in self.hours)
