"""What a campaign may ask for, validated: start time, calling hours in the callee's own
time zone (08:00-21:00 local unless `allow_outside_legal_hours`, as the US TCPA wants),
pace, retries by outcome, and the call options of `POST /calls`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from bridge.campaigns.states import RETRY_OUTCOMES, RetryOutcome
from bridge.routing.schedule import TimeZoneName, Weekday, Window

Mode = Literal["twilio", "elevenlabs", "sip"]
DEFAULT_DAYS: list[Weekday] = ["mon", "tue", "wed", "thu", "fri", "sat"]
# The US TCPA: no calls before 8 a.m. or after 9 p.m. at the called party's location.
LEGAL_OPEN = time(8, 0)
LEGAL_CLOSE = time(21, 0)
MAX_RATE = 100.0
DEFAULT_RETRY_ON: tuple[RetryOutcome, ...] = ("busy", "no-answer")
# What a <Say> cannot carry, as POST /calls refuses it (bridge.outbound.dialer): a
# campaign must be refused up front rather than fail at every recipient.
_NOT_SPEAKABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


class CallingHours(Window):
    """When a callee may be called, in their local time: one window a day, not
    past midnight."""

    days: list[Weekday] = Field(default_factory=lambda: list(DEFAULT_DAYS), min_length=1)
    open: time = time(9, 0)
    close: time = time(20, 0)

    @model_validator(mode="after")
    def _same_day(self) -> CallingHours:
        if self.close < self.open:
            raise ValueError("close must be after open: calling hours do not run past midnight")
        return self

    @property
    def within_legal_hours(self) -> bool:
        return self.open >= LEGAL_OPEN and self.close <= LEGAL_CLOSE


class RetryPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    on: list[RetryOutcome] = Field(default_factory=lambda: list(DEFAULT_RETRY_ON))
    # Retries after the first attempt.
    attempts: int = Field(default=2, ge=0, le=10)
    # Seconds between an attempt's end and the next try (then moved into calling hours).
    delay: int = Field(default=3600, ge=0, le=7 * 86_400)


class CampaignOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    start_at: AwareDatetime | None = None
    calling_hours: CallingHours = Field(default_factory=CallingHours)
    # Read the calling hours here instead of the number's own zones.
    timezone: TimeZoneName | None = None
    allow_outside_legal_hours: bool = False
    # Calls started per second, across every worker.
    rate: float = Field(default=1.0, gt=0, le=MAX_RATE)
    # Calls of this campaign dialling or in progress at once, across every worker.
    max_in_flight: int = Field(default=10, ge=1, le=10_000)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    # The call options of POST /calls.
    machine_detection: bool = False
    on_machine: Literal["hangup", "message", "agent"] = "hangup"
    machine_message: str | None = Field(default=None, min_length=1, max_length=2000)
    ring_timeout: int = Field(default=30, ge=5, le=600)
    mode: Mode | None = None

    @field_validator("machine_message")
    @classmethod
    def _speakable(cls, value: str | None) -> str | None:
        if value is not None:
            if not value.strip():
                raise ValueError("must not be blank")
            if _NOT_SPEAKABLE.search(value):
                raise ValueError("must not contain control characters")
        return value

    @model_validator(mode="after")
    def _lawful(self) -> CampaignOptions:
        if not self.allow_outside_legal_hours and not self.calling_hours.within_legal_hours:
            raise ValueError(
                "calling_hours must be within 08:00-21:00 in the callee's local time (US TCPA); "
                "set allow_outside_legal_hours to true to call outside them"
            )
        if self.on_machine == "message" and not self.machine_message:
            raise ValueError("machine_message is required when on_machine is 'message'")
        if "machine" in self.retry.on and not self.machine_detection:
            raise ValueError("retry.on 'machine' needs machine_detection: true")
        return self

    def starts_at(self, now: datetime) -> datetime:
        return self.start_at.astimezone(UTC) if self.start_at else now


__all__ = ["RETRY_OUTCOMES", "CallingHours", "CampaignOptions", "Mode", "RetryPolicy"]
