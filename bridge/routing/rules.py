"""The routing file's shape: conditions, actions and rules, validated by pydantic.

Every model forbids unknown keys so that a typo is an error at load time, not a
call that silently goes to the wrong place.
"""

from __future__ import annotations

import math
import re
import string
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainValidator

from bridge import phone
from bridge.call import GEO_FIELDS, TEMPLATE_FIELDS
from bridge.routing.schedule import Schedule
from bridge.settings.reader import is_loopback_host

DEFAULT_NO_ANSWER_MESSAGE = "Sorry, nobody is available to take your call. Please try again later."


E164_EXAMPLE = "an E.164 number like +14155550123"
# Spaces, dashes, dots and brackets people write in a number: "+1 (415) 555-0123".
_NUMBER_PUNCTUATION = re.compile(r"[\s().-]")


def _e164(value: str) -> str:
    if not phone.is_possible_e164(value):
        meant = _NUMBER_PUNCTUATION.sub("", value)
        hint = f"; did you mean {meant}?" if phone.is_possible_e164(meant) else ""
        raise ValueError(f"{value!r} is not {E164_EXAMPLE}{hint}")
    return value


def _quoted_number(value: object) -> object:
    # TOML reads an unquoted 14155550123 as an integer.
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(f"{value} is not {E164_EXAMPLE}, in quotes")
    return value


def _prefix(value: str) -> str:
    if not phone.PREFIX.fullmatch(value):
        raise ValueError(f"{value!r} is not a number prefix like +1 or +4420")
    return value


def _region(value: str) -> str:
    if not phone.is_region(value):
        raise ValueError(f"{value!r} is not an ISO 3166 country code like US or GB")
    return value.upper()


def _dial_target(value: str) -> str:
    if value.lower().startswith("sip:"):
        if "@" not in value:
            raise ValueError(f"{value!r} is not a SIP URI like sip:alice@example.com")
        return value
    return _e164(value)


def _geo_field(value: str) -> str:
    if value not in GEO_FIELDS:
        raise ValueError(f"{value!r} is not a Twilio geo field ({', '.join(GEO_FIELDS)})")
    return value


_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _variable_name(value: str) -> str:
    if not _VARIABLE_NAME.fullmatch(value):
        raise ValueError(f"{value!r} is not a variable name (letters, digits, underscore)")
    return value


def _template(value: str) -> str:
    """A dynamic-variable value may name call fields: "{from}", "{call_sid}"; "{{" is a brace."""
    try:
        parts = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise ValueError(f"bad template {value!r}: {exc}; write {{{{ for a literal brace") from None
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in TEMPLATE_FIELDS or spec or conversion:
            raise ValueError(
                f"unknown placeholder {{{name}}} in {value!r}; "
                f"known: {', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}"
            )
    return value


def _dynamic_value(value: object) -> str | int | float | bool:
    if isinstance(value, str):
        return _template(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number (JSON has no NaN or Infinity)")
    if isinstance(value, bool | int | float):
        return value
    raise ValueError("must be a string, number or boolean")


def _lookup_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.hostname and (
        parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname))
    ):
        return value
    raise ValueError(f"{value!r} must be an https URL (plain http only to loopback)")


def _lookup_setting(value: object) -> object:
    # `lookup = false` turns the global LOOKUP_URL off; `true` means nothing of its own.
    if value is False or isinstance(value, dict):
        return value
    raise ValueError('must be a table like { url = "https://...", timeout = 1.5 } or false')


E164Number = Annotated[str, BeforeValidator(_quoted_number), AfterValidator(_e164)]
NumberPrefix = Annotated[str, AfterValidator(_prefix)]
Region = Annotated[str, AfterValidator(_region)]
DialTarget = Annotated[str, BeforeValidator(_quoted_number), AfterValidator(_dial_target)]
GeoField = Annotated[str, AfterValidator(_geo_field)]
VariableName = Annotated[str, AfterValidator(_variable_name)]
DynamicValue = Annotated[str | int | float | bool, PlainValidator(_dynamic_value)]
Message = Annotated[str, Field(min_length=1, max_length=4000)]
LookupURL = Annotated[str, AfterValidator(_lookup_url)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class When(_Strict):
    """Conditions; all that are given must hold (AND). A list matches any of its entries."""

    called: list[E164Number] = Field(default_factory=list)
    callers: list[E164Number] = Field(default_factory=list)
    caller_prefixes: list[NumberPrefix] = Field(default_factory=list)
    caller_countries: list[Region] = Field(default_factory=list)
    anonymous: bool | None = None
    during: str | None = None
    outside: str | None = None
    geo: dict[GeoField, list[str]] = Field(default_factory=dict)


class _Spoken(_Strict):
    voice: str | None = None
    language: str | None = None


class SayAction(_Spoken):
    action: Literal["say"]
    message: Message


class HangupAction(_Strict):
    action: Literal["hangup"]


class RejectAction(_Strict):
    action: Literal["reject"]
    reason: Literal["busy", "rejected"] = "rejected"


class VoicemailAction(_Spoken):
    action: Literal["voicemail"]
    message: Message | None = None
    max_length: int = Field(default=120, ge=1, le=14400)
    play_beep: bool = True


class AgentAction(_Strict):
    action: Literal["agent"]
    agent_id: str | None = Field(default=None, min_length=1)
    dynamic_variables: dict[VariableName, DynamicValue] = Field(default_factory=dict)
    first_message: str | None = None
    language: str | None = None
    prompt: str | None = None
    voice_id: str | None = None


NoAnswerAction = Annotated[
    SayAction | VoicemailAction | HangupAction | AgentAction, Field(discriminator="action")
]


class ForwardAction(_Spoken):
    action: Literal["forward"]
    to: list[DialTarget] = Field(min_length=1, max_length=10)
    timeout: int = Field(default=20, ge=5, le=600)
    caller_id: E164Number | None = None
    message: Message | None = None
    on_no_answer: NoAnswerAction = Field(
        default_factory=lambda: SayAction(action="say", message=DEFAULT_NO_ANSWER_MESSAGE)
    )


FallbackAction = Annotated[
    SayAction | ForwardAction | VoicemailAction | RejectAction | HangupAction,
    Field(discriminator="action"),
]
Action = AgentAction | ForwardAction | VoicemailAction | RejectAction | SayAction | HangupAction


# A tagged union: what the lookup hook's `action` key is validated as, like a rule.
TaggedAction = Annotated[
    AgentAction | ForwardAction | VoicemailAction | RejectAction | SayAction | HangupAction,
    Field(discriminator="action"),
]


class RuleLookup(_Strict):
    """A rule's own lookup hook; `timeout` None means LOOKUP_TIMEOUT_SECONDS."""

    url: LookupURL
    timeout: float | None = Field(default=None, gt=0, le=10)


class _RuleFields(_Strict):
    name: str = Field(min_length=1, max_length=100)
    when: When = Field(default_factory=When)
    fallback: FallbackAction | None = None
    # None: the global LOOKUP_URL (if any); False: no lookup for this rule.
    lookup: Annotated[
        RuleLookup | Literal[False] | None,
        BeforeValidator(_lookup_setting),
    ] = None


class AgentRule(AgentAction, _RuleFields):
    pass


class ForwardRule(ForwardAction, _RuleFields):
    pass


class VoicemailRule(VoicemailAction, _RuleFields):
    pass


class RejectRule(RejectAction, _RuleFields):
    pass


class SayRule(SayAction, _RuleFields):
    pass


class HangupRule(HangupAction, _RuleFields):
    pass


Rule = Annotated[
    AgentRule | ForwardRule | VoicemailRule | RejectRule | SayRule | HangupRule,
    Field(discriminator="action"),
]
ACTION_NAMES = ("agent", "forward", "voicemail", "reject", "say", "hangup")


class RoutesDocument(_Strict):
    schedules: dict[str, Schedule] = Field(default_factory=dict)
    fallback: FallbackAction | None = None
    rules: list[Rule] = Field(default_factory=list)
