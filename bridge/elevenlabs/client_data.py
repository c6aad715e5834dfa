"""`conversation_initiation_client_data`, validated against ElevenLabs' OpenAPI schema
(API reference: POST /v1/convai/twilio/outbound-call), so a typo is a 422 here rather
than a call that silently ignores an override."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictFloat,
    StrictStr,
)
from pydantic import ValidationError as ValidationError

# Dynamic variables named so reach the agent's tools but never the LLM; the bridge
# seals them in the database, keeps them out of post-call records and hides them
# when it prints a request.


def _dynamic_value(value: object) -> str | int | float | bool | None:
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise ValueError("must be a string, a finite number, a boolean or null")


DynamicValue = Annotated[str | int | float | bool | None, PlainValidator(_dynamic_value)]
Source = Literal[
    "unknown",
    "android_sdk",
    "node_js_sdk",
    "react_native_sdk",
    "react_sdk",
    "js_sdk",
    "python_sdk",
    "widget",
    "sip_trunk",
    "twilio",
    "genesys",
    "swift_sdk",
    "whatsapp",
    "flutter_sdk",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PromptOverride(_Strict):
    prompt: StrictStr | None = None
    # The LLM enum changes often upstream; a string keeps old bridges working.
    llm: StrictStr | None = None
    native_mcp_server_ids: list[StrictStr] | None = None


class AgentOverride(_Strict):
    first_message: StrictStr | None = None
    language: StrictStr | None = None
    prompt: PromptOverride | None = None


class TTSOverride(_Strict):
    voice_id: StrictStr | None = None
    stability: StrictFloat | None = None
    speed: StrictFloat | None = None
    similarity_boost: StrictFloat | None = None


class SoftTimeoutOverride(_Strict):
    message: StrictStr | None = None


class TurnOverride(_Strict):
    soft_timeout_config: SoftTimeoutOverride | None = None


class ConversationOverride(_Strict):
    text_only: StrictBool | None = None


class ConversationConfigOverride(_Strict):
    turn: TurnOverride | None = None
    tts: TTSOverride | None = None
    conversation: ConversationOverride | None = None
    agent: AgentOverride | None = None


class SourceInfo(_Strict):
    source: Source | None = None
    version: StrictStr | None = None


class ClientData(_Strict):
    conversation_config_override: ConversationConfigOverride | None = None
    custom_llm_extra_body: dict[str, Any] | None = None
    user_id: StrictStr | None = None
    source_info: SourceInfo | None = None
    dynamic_variables: dict[str, DynamicValue] | None = Field(default=None)

    def to_json(self) -> dict[str, Any]:
        """What ElevenLabs gets: only what the caller set."""
        return self.model_dump(exclude_none=True)


def field_errors(error: ValidationError, *, prefix: str = "") -> list[dict[str, str]]:
    """One entry per problem: the field's dotted path and what is wrong with it."""
    problems: list[dict[str, str]] = []
    seen: set[str] = set()
    for item in error.errors():
        parts = [str(part) for part in item["loc"] if not _is_branch(part)]
        field = ".".join(([prefix] if prefix else []) + parts) or prefix or "(body)"
        kind = item["type"]
        if kind == "extra_forbidden":
            message = "unknown field"
        elif kind == "missing":
            message = "required"
        else:
            message = str(item["msg"]).removeprefix("Value error, ")
        if field not in seen:  # one problem per field is enough to fix it
            seen.add(field)
            problems.append({"field": field, "problem": message})
    return problems


def _is_branch(part: int | str) -> bool:
    # pydantic names union branches in the location ("str", "int", "function-after[...]")
    return isinstance(part, str) and (
        part in ("str", "int", "float", "bool", "none") or "[" in part
    )
