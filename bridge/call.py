"""The call as Twilio describes it in a voice webhook."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from bridge import phone

# Twilio's geographic webhook fields, which routing rules may match on.
GEO_FIELDS = tuple(
    f"{who}{what}"
    for who in ("From", "To", "Caller", "Called")
    for what in ("City", "State", "Zip", "Country")
)

# Call fields that dynamic-variable templates may use, e.g. "{from}" or "{call_sid}".
TEMPLATE_FIELDS = (
    "call_sid",
    "account_sid",
    "from",
    "to",
    "caller_name",
    "forwarded_from",
    "direction",
    "from_city",
    "from_state",
    "from_zip",
    "from_country",
    "to_city",
    "to_state",
    "to_zip",
    "to_country",
    "stir_verstat",
)


@dataclass(frozen=True)
class Call:
    call_sid: str
    from_number: str
    to_number: str
    account_sid: str = ""
    call_status: str = ""
    direction: str = "inbound"
    caller_name: str = ""
    forwarded_from: str = ""
    stir_verstat: str = ""
    geo: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_form(cls, form: Iterable[tuple[str, str]]) -> Call:
        # Twilio sends each field once; if one repeats, the first value wins.
        values: dict[str, str] = {}
        for key, value in form:
            values.setdefault(key, value)
        return cls(
            call_sid=values.get("CallSid", ""),
            from_number=values.get("From", values.get("Caller", "")),
            to_number=values.get("To", values.get("Called", "")),
            account_sid=values.get("AccountSid", ""),
            call_status=values.get("CallStatus", ""),
            direction=values.get("Direction", "inbound"),
            caller_name=values.get("CallerName", ""),
            forwarded_from=values.get("ForwardedFrom", ""),
            stir_verstat=values.get("StirVerstat", ""),
            geo={name: values[name] for name in GEO_FIELDS if values.get(name)},
        )

    @property
    def anonymous(self) -> bool:
        return phone.is_anonymous(self.from_number)

    @cached_property
    def caller_country(self) -> str | None:
        # Cached (parsing the number costs tens of microseconds): routing and the
        # lookup hook both ask.
        return phone.country_of(self.from_number)

    def template_values(self) -> dict[str, str]:
        return {
            "call_sid": self.call_sid,
            "account_sid": self.account_sid,
            "from": self.from_number,
            "to": self.to_number,
            "caller_name": self.caller_name,
            "forwarded_from": self.forwarded_from,
            "direction": self.direction,
            "from_city": self.geo.get("FromCity", ""),
            "from_state": self.geo.get("FromState", ""),
            "from_zip": self.geo.get("FromZip", ""),
            "from_country": self.geo.get("FromCountry", ""),
            "to_city": self.geo.get("ToCity", ""),
            "to_state": self.geo.get("ToState", ""),
            "to_zip": self.geo.get("ToZip", ""),
            "to_country": self.geo.get("ToCountry", ""),
            "stir_verstat": self.stir_verstat,
        }


@dataclass(frozen=True)
class LookupNote:
    """What the lookup hook did for a call: its result (ok, timeout, http_error,
    invalid, error), how long it took, and the names of what it changed (never values)."""

    result: str
    latency: float
    changed: tuple[str, ...] = ()
    status: int | None = None


@dataclass(frozen=True)
class Answer:
    """What the bridge answered a call with, and why (the call log and metrics keep it)."""

    twiml: str
    rule: str
    action: str
    # "connected": agent TwiML from register-call; "handled": the rule's own TwiML;
    # "fallback": something failed and the caller got the fallback.
    outcome: str
    agent_id: str | None = None
    upstream_status: int | None = None
    upstream_latency: float | None = None
    attempts: int = 0
    reason: str | None = None
    conversation_id: str | None = None
    lookup: LookupNote | None = None
