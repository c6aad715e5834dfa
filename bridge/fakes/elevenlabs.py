"""A stand-in for the ElevenLabs API: `register-call`, the native outbound calls
(`POST /v1/convai/twilio/outbound-call` and `/v1/convai/sip-trunk/outbound-call`
in the ElevenLabs API reference) and reading and patching agents
(`GET`/`PATCH /v1/convai/agents/{agent_id}`), conversations (`GET
/v1/convai/conversations/{id}` and the list, filtered by `agent_id` and
`call_start_after_unix`, paged by `cursor`), rejecting malformed bodies with
FastAPI's 422 `{"detail": [{"loc": ["body", ...], "msg": ..., "type": ...}]}`.

Like the real API, register-call does not look at the agent's audio formats: an
agent that does not speak ulaw_8000 is accepted there and fails later, as silence
on the line (Twilio error 31951).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import quoteattr

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TWILIO_OUTBOUND_PATH = "/v1/convai/twilio/outbound-call"
SIP_OUTBOUND_PATH = "/v1/convai/sip-trunk/outbound-call"
AGENT_PATH = "/v1/convai/agents/{agent_id}"
CONVERSATIONS_PATH = "/v1/convai/conversations"
CONVERSATION_PATH = "/v1/convai/conversations/{conversation_id}"
MAX_CONVERSATIONS_PAGE = 100
# The ASRInputFormat and TTSOutputFormat enums of the agents API.
AUDIO_FORMATS = (
    "pcm_8000",
    "pcm_16000",
    "pcm_22050",
    "pcm_24000",
    "pcm_44100",
    "pcm_48000",
    "ulaw_8000",
)
REGISTER_FIELDS = {
    "agent_id": str,
    "from_number": str,
    "to_number": str,
}
OPTIONAL_FIELDS = {"direction", "conversation_initiation_client_data"}

Loc = tuple[str, ...]
Problem = tuple[Loc, str, str]  # (where in the body, message, pydantic error type)


@dataclass
class FakeElevenLabs:
    """Configure `latency` and `script` (one entry used per valid request, then "ok"):

    "ok", "status:NNN", "hang", "html", "json", "empty", "invalid_xml"; for the
    outbound calls also "unsuccessful" (200 with `success: false`).
    """

    api_key: str = "test-elevenlabs-key"
    latency: float = 0.0
    script: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)  # register-call bodies
    # Outbound calls: {"path": ..., "body": ...} for each valid request.
    outbound_requests: list[dict[str, Any]] = field(default_factory=list)
    keep_requests: bool = True
    # Agent documents by agent_id, as GET /v1/convai/agents/{agent_id} returns them.
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    # {"agent_id": ..., "body": ...} for each valid PATCH, applied or not.
    agent_patches: list[dict[str, Any]] = field(default_factory=list)
    # False: a valid PATCH answers 200 with the unchanged agent (a change that did not
    # stick, which a client must notice by reading the agent again).
    apply_agent_patches: bool = True
    # Conversations by id, as GET /v1/convai/conversations/{id} returns them
    # (add_conversation); `conversation_requests` has the path and query of each
    # authenticated conversations request.
    conversations: dict[str, dict[str, Any]] = field(default_factory=dict)
    conversation_requests: list[str] = field(default_factory=list)

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/convai/twilio/register-call", self.register_call, methods=["POST"]),
                Route(TWILIO_OUTBOUND_PATH, self.twilio_outbound_call, methods=["POST"]),
                Route(SIP_OUTBOUND_PATH, self.sip_outbound_call, methods=["POST"]),
                Route(AGENT_PATH, self.get_agent, methods=["GET"]),
                Route(AGENT_PATH, self.patch_agent, methods=["PATCH"]),
                Route(CONVERSATIONS_PATH, self.list_conversations, methods=["GET"]),
                Route(CONVERSATION_PATH, self.get_conversation, methods=["GET"]),
            ]
        )

    def add_agent(
        self,
        agent_id: str | None = None,
        *,
        name: str = "Support agent",
        input_format: str = "ulaw_8000",
        output_format: str = "ulaw_8000",
    ) -> dict[str, Any]:
        """Store an agent with these audio formats (the real default is pcm_16000)."""
        agent_id = agent_id or "agent_" + uuid.uuid4().hex[:26]
        document = agent_document(agent_id, name, input_format, output_format)
        self.agents[agent_id] = document
        return document

    async def get_agent(self, request: Request) -> Response:
        if (denied := _key_problem(request, self.api_key)) is not None:
            return denied
        agent = self.agents.get(request.path_params["agent_id"])
        if agent is None:
            return _agent_not_found(request.path_params["agent_id"])
        step = await self._next_step()
        if step != "ok":
            return await _scripted(step, {})
        return JSONResponse(agent)

    async def patch_agent(self, request: Request) -> Response:
        agent_id = request.path_params["agent_id"]
        body = await self._receive(request, _check_agent_patch)
        if isinstance(body, Response):
            return body
        agent = self.agents.get(agent_id)
        if agent is None:
            return _agent_not_found(agent_id)
        step = await self._next_step()
        if step != "ok":
            return await _scripted(step, body)
        self.agent_patches.append({"agent_id": agent_id, "body": body})
        if self.apply_agent_patches:
            _merge(agent, body)
            agent["metadata"]["updated_at_unix_secs"] = int(time.time())
        return JSONResponse(agent)

    async def register_call(self, request: Request) -> Response:
        body = await self._receive(request, _check_register_body)
        if isinstance(body, Response):
            return body
        if self.keep_requests:
            self.requests.append(body)
        step = await self._next_step()
        return await _scripted(step, body)

    async def twilio_outbound_call(self, request: Request) -> Response:
        return await self._outbound(request, _check_twilio_outbound, "callSid", "CA", "Success")

    async def sip_outbound_call(self, request: Request) -> Response:
        return await self._outbound(
            request,
            _check_sip_outbound,
            "sip_call_id",
            "sipcall_",
            "Outbound call initiated successfully.",
        )

    async def _outbound(
        self, request: Request, check: Check, id_name: str, id_prefix: str, message: str
    ) -> Response:
        body = await self._receive(request, check)
        if isinstance(body, Response):
            return body
        if self.keep_requests:
            self.outbound_requests.append({"path": request.url.path, "body": body})
        step = await self._next_step()
        if step == "ok":
            return JSONResponse(
                {
                    "success": True,
                    "message": message,
                    "conversation_id": "conv_" + uuid.uuid4().hex[:20],
                    id_name: id_prefix + uuid.uuid4().hex,
                }
            )
        if step == "unsuccessful":
            return JSONResponse(
                {
                    "success": False,
                    "message": "Failed to initiate the call",
                    "conversation_id": None,
                    id_name: None,
                }
            )
        return await _scripted(step, body)

    # --- conversations (read back by reconciliation) ------------------------------

    def add_conversation(
        self,
        conversation_id: str | None = None,
        *,
        agent_id: str = "agent_default",
        call_sid: str | None = None,
        status: str = "done",
        start_time_unix_secs: int | None = None,
        call_duration_secs: int = 42,
        direction: str = "outbound",
        agent_number: str = "+14155550100",
        external_number: str = "+14155550123",
        summary: str = "A short call.",
    ) -> dict[str, Any]:
        """Store a conversation as the API returns it: the object a
        post_call_transcription webhook carries as `data`."""
        conversation_id = conversation_id or "conv_" + uuid.uuid4().hex[:20]
        start = (
            int(time.time()) - call_duration_secs
            if start_time_unix_secs is None
            else (start_time_unix_secs)
        )
        document = conversation_document(
            conversation_id,
            agent_id=agent_id,
            call_sid=call_sid,
            status=status,
            start=start,
            duration=call_duration_secs,
            direction=direction,
            agent_number=agent_number,
            external_number=external_number,
            summary=summary,
        )
        self.conversations[conversation_id] = document
        return document

    async def get_conversation(self, request: Request) -> Response:
        if (denied := _key_problem(request, self.api_key)) is not None:
            return denied
        self.conversation_requests.append(str(request.url.path))
        conversation_id = request.path_params["conversation_id"]
        step = await self._next_step()
        if step != "ok":
            return await _scripted(step, {})
        document = self.conversations.get(conversation_id)
        if document is None:
            return JSONResponse(
                {
                    "detail": {
                        "status": "conversation_not_found",
                        "message": f"Conversation with id {conversation_id} not found",
                    }
                },
                status_code=404,
            )
        return JSONResponse(document)

    async def list_conversations(self, request: Request) -> Response:
        """Newest first, `page_size` (1-100, default 30) at a time; `cursor` is opaque
        (here: where the next page starts), `has_more` and `next_cursor` say what is left."""
        if (denied := _key_problem(request, self.api_key)) is not None:
            return denied
        self.conversation_requests.append(f"{request.url.path}?{request.url.query}")
        query = request.query_params
        problems: list[Problem] = []
        size_text = query.get("page_size", "30")
        if not size_text.isdigit() or not 1 <= int(size_text) <= MAX_CONVERSATIONS_PAGE:
            problems.append(
                (("page_size",), "Input should be between 1 and 100", "less_than_equal")
            )
        after_text = query.get("call_start_after_unix")
        if after_text is not None and not after_text.lstrip("-").isdigit():
            problems.append(
                (("call_start_after_unix",), "Input should be an integer", "int_parsing")
            )
        offset = _cursor_offset(query.get("cursor"))
        if offset is None:
            problems.append((("cursor",), "Invalid cursor", "value_error"))
        if problems:
            return _query_errors(problems)
        step = await self._next_step()
        if step != "ok":
            return await _scripted(step, {})
        assert offset is not None
        agent_id = query.get("agent_id")
        after = int(after_text) if after_text is not None else None
        found = sorted(
            (
                document
                for document in self.conversations.values()
                if (agent_id is None or document["agent_id"] == agent_id)
                and (after is None or document["metadata"]["start_time_unix_secs"] > after)
            ),
            key=lambda document: (
                -document["metadata"]["start_time_unix_secs"],
                document["conversation_id"],
            ),
        )
        size = int(size_text)
        page = found[offset : offset + size]
        more = offset + size < len(found)
        return JSONResponse(
            {
                "conversations": [conversation_summary(document) for document in page],
                "has_more": more,
                "next_cursor": _cursor(offset + size) if more else None,
            }
        )

    async def _receive(self, request: Request, check: Check) -> dict[str, Any] | Response:
        """The request's JSON body once the key and the body check out; else the error."""
        if (denied := _key_problem(request, self.api_key)) is not None:
            return denied
        raw = await request.body()
        try:
            body = json.loads(raw)
        except ValueError:
            return _field_errors([((), "Invalid JSON body", "json_invalid")])
        problems = check(body, ())
        if problems:
            return _field_errors(problems)
        assert isinstance(body, dict)
        return body

    async def _next_step(self) -> str:
        step = self.script.pop(0) if self.script else "ok"
        if self.latency:
            await asyncio.sleep(self.latency)
        return step


def _key_problem(request: Request, api_key: str) -> Response | None:
    given = request.headers.get("xi-api-key", "")
    if hmac.compare_digest(given.encode(), api_key.encode()):
        return None
    return JSONResponse(
        {"detail": {"status": "invalid_api_key", "message": "Invalid API key"}},
        status_code=401,
    )


def _agent_not_found(agent_id: str) -> JSONResponse:
    # The {"detail": {"status", "message"}} shape of the API's other errors.
    return JSONResponse(
        {
            "detail": {
                "status": "agent_not_found",
                "message": f"Agent with id {agent_id} not found",
            }
        },
        status_code=404,
    )


def _merge(target: dict[str, Any], changes: dict[str, Any]) -> None:
    """PATCH semantics: objects merge key by key, null leaves a field as it is, anything
    else replaces."""
    for key, value in changes.items():
        if value is None:
            continue
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def agent_document(
    agent_id: str, name: str, input_format: str, output_format: str
) -> dict[str, Any]:
    """An agent as GET /v1/convai/agents/{agent_id} returns it (the common fields)."""
    now = int(time.time())
    return {
        "agent_id": agent_id,
        "name": name,
        "conversation_config": {
            "asr": {
                "quality": "high",
                "provider": "elevenlabs",
                "user_input_audio_format": input_format,
                "keywords": [],
            },
            "turn": {"turn_timeout": 7.0, "silence_end_call_timeout": -1.0, "mode": "turn"},
            "tts": {
                "model_id": "eleven_turbo_v2",
                "voice_id": "cjVigY5qzO86Huf0OWal",
                "supported_voices": [],
                "agent_output_audio_format": output_format,
                "optimize_streaming_latency": 3,
                "stability": 0.5,
                "speed": 1.0,
                "similarity_boost": 0.8,
                "pronunciation_dictionary_locators": [],
            },
            "conversation": {
                "text_only": False,
                "max_duration_seconds": 600,
                "client_events": ["audio", "interruption"],
            },
            "language_presets": {},
            "agent": {
                "first_message": "Hello! How can I help you today?",
                "language": "en",
                "dynamic_variables": {"dynamic_variable_placeholders": {}},
                "prompt": {
                    "prompt": "You are a helpful support agent.",
                    "llm": "gemini-2.0-flash",
                    "temperature": 0.0,
                    "max_tokens": -1,
                    "tool_ids": [],
                    "knowledge_base": [],
                },
            },
        },
        "metadata": {"created_at_unix_secs": now, "updated_at_unix_secs": now},
        "platform_settings": {
            "auth": {"enable_auth": False, "allowlist": []},
            "call_limits": {"agent_concurrency_limit": -1, "daily_limit": 100000},
            "privacy": {"record_voice": True, "retention_days": -1, "delete_audio": False},
        },
        "phone_numbers": [],
        "access_info": {"is_creator": True, "creator_name": "Test User", "role": "admin"},
        "tags": [],
    }


def _check_register_body(body: Any, loc: Loc) -> list[Problem]:
    if not isinstance(body, dict):
        return [(loc, "Input should be a valid dictionary", "dict_type")]
    problems: list[Problem] = []
    for name, kind in REGISTER_FIELDS.items():
        if name not in body:
            problems.append(((name,), "Field required", "missing"))
        elif not isinstance(body[name], kind):
            problems.append(((name,), "Input should be a valid string", "string_type"))
    direction = body.get("direction", "inbound")
    if direction not in ("inbound", "outbound"):
        problems.append((("direction",), "Input should be 'inbound' or 'outbound'", "enum"))
    data = body.get("conversation_initiation_client_data")
    if data is not None and not isinstance(data, dict):
        problems.append(
            (
                ("conversation_initiation_client_data",),
                "Input should be a valid dictionary",
                "dict_type",
            )
        )
    for name in body:
        if name not in REGISTER_FIELDS and name not in OPTIONAL_FIELDS:
            problems.append(((name,), "Extra inputs are not permitted", "extra_forbidden"))
    return problems


# --- the outbound-call bodies, per ElevenLabs' OpenAPI schema (api.elevenlabs.io) -----
# A check takes a value and where it is, and returns what is wrong with it. Types are
# checked strictly (no "1" for 1, no 1 for true) so that the bridge's bugs show here.

Check = Callable[[Any, Loc], list[Problem]]


def _string(value: Any, loc: Loc) -> list[Problem]:
    return (
        [] if isinstance(value, str) else [(loc, "Input should be a valid string", "string_type")]
    )


def _number(value: Any, loc: Loc) -> list[Problem]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return []
    return [(loc, "Input should be a valid number", "float_type")]


def _boolean(value: Any, loc: Loc) -> list[Problem]:
    return (
        [] if isinstance(value, bool) else [(loc, "Input should be a valid boolean", "bool_type")]
    )


def _dynamic_value(value: Any, loc: Loc) -> list[Problem]:
    if value is None or isinstance(value, str | int | float | bool):
        return []
    return [(loc, "Input should be a valid string, number or boolean", "union_type")]


def _nullable(check: Check) -> Check:
    return lambda value, loc: [] if value is None else check(value, loc)


def _enum(what: str, options: frozenset[str]) -> Check:
    def check(value: Any, loc: Loc) -> list[Problem]:
        return [] if value in options else [(loc, f"Input should be a valid {what}", "enum")]

    return check


def _list_of(item: Check) -> Check:
    def check(value: Any, loc: Loc) -> list[Problem]:
        if not isinstance(value, list):
            return [(loc, "Input should be a valid list", "list_type")]
        return [problem for i, v in enumerate(value) for problem in item(v, (*loc, str(i)))]

    return check


def _mapping(item: Check) -> Check:
    """An object with any keys, each value checked by `item`."""

    def check(value: Any, loc: Loc) -> list[Problem]:
        if not isinstance(value, dict):
            return [(loc, "Input should be a valid dictionary", "dict_type")]
        return [problem for k, v in value.items() for problem in item(v, (*loc, k))]

    return check


def _object(fields: dict[str, Check], *, required: tuple[str, ...] = ()) -> Check:
    """An object with these fields only (`fields` empty: any fields)."""

    def check(value: Any, loc: Loc) -> list[Problem]:
        if not isinstance(value, dict):
            return [(loc, "Input should be a valid dictionary", "dict_type")]
        problems: list[Problem] = [
            ((*loc, name), "Field required", "missing") for name in required if name not in value
        ]
        for name, item in value.items():
            if name in fields:
                problems += fields[name](item, (*loc, name))
            elif fields:
                problems.append(((*loc, name), "Extra inputs are not permitted", "extra_forbidden"))
        return problems

    return check


# Whitespace-separated: a list literal would take one line per name.
_LLM_NAMES = """gpt-4o-mini gpt-4o gpt-4 gpt-4-turbo gpt-4.1 gpt-4.1-mini gpt-4.1-nano gpt-5 gpt-5.1
    gpt-5.2 gpt-5.2-chat-latest gpt-5-mini gpt-5-nano gpt-3.5-turbo gemini-1.5-pro
    gemini-1.5-flash gemini-2.0-flash gemini-2.0-flash-lite gemini-2.5-flash-lite
    gemini-2.5-flash gemini-3-pro-preview gemini-3-flash-preview claude-sonnet-4-5
    claude-sonnet-4 claude-haiku-4-5 claude-3-7-sonnet claude-3-5-sonnet claude-3-5-sonnet-v1
    claude-3-haiku grok-beta custom-llm qwen3-4b qwen3-30b-a3b gpt-oss-20b gpt-oss-120b
    glm-45-air-fp8 gemini-2.5-flash-preview-09-2025 gemini-2.5-flash-lite-preview-09-2025
    gemini-2.5-flash-preview-05-20 gemini-2.5-flash-preview-04-17
    gemini-2.5-flash-lite-preview-06-17 gemini-2.0-flash-lite-001 gemini-2.0-flash-001
    gemini-1.5-flash-002 gemini-1.5-flash-001 gemini-1.5-pro-002 gemini-1.5-pro-001
    claude-sonnet-4@20250514 claude-sonnet-4-5@20250929 claude-haiku-4-5@20251001
    claude-3-7-sonnet@20250219 claude-3-5-sonnet@20240620 claude-3-5-sonnet-v2@20241022
    claude-3-haiku@20240307 gpt-5-2025-08-07 gpt-5.1-2025-11-13 gpt-5.2-2025-12-11
    gpt-5-mini-2025-08-07 gpt-5-nano-2025-08-07 gpt-4.1-2025-04-14 gpt-4.1-mini-2025-04-14
    gpt-4.1-nano-2025-04-14 gpt-4o-mini-2024-07-18 gpt-4o-2024-11-20 gpt-4o-2024-08-06
    gpt-4o-2024-05-13 gpt-4-0613 gpt-4-0314 gpt-4-turbo-2024-04-09 gpt-3.5-turbo-0125
    gpt-3.5-turbo-1106 watt-tool-8b watt-tool-70b"""
_SOURCE_NAMES = """unknown android_sdk node_js_sdk react_native_sdk react_sdk js_sdk python_sdk
    widget sip_trunk twilio genesys swift_sdk whatsapp flutter_sdk"""
LLMS = frozenset(_LLM_NAMES.split())
SOURCES = frozenset(_SOURCE_NAMES.split())

_optional_string = _nullable(_string)
_optional_number = _nullable(_number)
_PROMPT = _object(
    {
        "prompt": _optional_string,
        "llm": _nullable(_enum("LLM", LLMS)),
        "native_mcp_server_ids": _nullable(_list_of(_string)),
    }
)
_CONFIG_OVERRIDE = _object(
    {
        "turn": _nullable(
            _object({"soft_timeout_config": _nullable(_object({"message": _optional_string}))})
        ),
        "tts": _nullable(
            _object(
                {
                    "voice_id": _optional_string,
                    "stability": _optional_number,
                    "speed": _optional_number,
                    "similarity_boost": _optional_number,
                }
            )
        ),
        "conversation": _nullable(_object({"text_only": _nullable(_boolean)})),
        "agent": _nullable(
            _object(
                {
                    "first_message": _optional_string,
                    "language": _optional_string,
                    "prompt": _nullable(_PROMPT),
                }
            )
        ),
    }
)
CLIENT_DATA = _object(
    {
        "conversation_config_override": _CONFIG_OVERRIDE,
        "custom_llm_extra_body": _object({}),
        "user_id": _optional_string,
        "source_info": _object(
            {"source": _nullable(_enum("source", SOURCES)), "version": _optional_string}
        ),
        "dynamic_variables": _mapping(_dynamic_value),
    }
)
_OUTBOUND_FIELDS: dict[str, Check] = {
    "agent_id": _string,
    "agent_phone_number_id": _string,
    "to_number": _string,
    "conversation_initiation_client_data": _nullable(CLIENT_DATA),
}
_REQUIRED = ("agent_id", "agent_phone_number_id", "to_number")
_check_twilio_outbound = _object(_OUTBOUND_FIELDS, required=_REQUIRED)
_check_sip_outbound = _object(
    {**_OUTBOUND_FIELDS, "telephony_call_config": _object({})}, required=_REQUIRED
)


# --- PATCH /v1/convai/agents/{agent_id}: every field optional, objects merged --------
# Strict where the bridge writes (asr, tts formats); any keys in the objects it never
# touches, so that the fake does not reject what the real API takes.
_any_object = _object({})
_AUDIO_FORMAT = _enum("audio format", frozenset(AUDIO_FORMATS))
_ASR = _object(
    {
        "quality": _enum("ASR quality", frozenset({"high"})),
        "provider": _enum("ASR provider", frozenset({"elevenlabs", "scribe_realtime"})),
        "user_input_audio_format": _AUDIO_FORMAT,
        "keywords": _list_of(_string),
    }
)
_TTS = _object(
    {
        "model_id": _string,
        "voice_id": _string,
        "supported_voices": _list_of(_any_object),
        "agent_output_audio_format": _AUDIO_FORMAT,
        "optimize_streaming_latency": _number,
        "stability": _number,
        "speed": _number,
        "similarity_boost": _number,
        "pronunciation_dictionary_locators": _list_of(_any_object),
    }
)
_CONVERSATION_CONFIG = _object(
    {
        "asr": _nullable(_ASR),
        "tts": _nullable(_TTS),
        "turn": _nullable(_any_object),
        "conversation": _nullable(_any_object),
        "language_presets": _nullable(_any_object),
        "vad": _nullable(_any_object),
        "agent": _nullable(_any_object),
    }
)
_check_agent_patch = _object(
    {
        "name": _optional_string,
        "tags": _nullable(_list_of(_string)),
        "conversation_config": _nullable(_CONVERSATION_CONFIG),
        "platform_settings": _nullable(_any_object),
        "workflow": _nullable(_any_object),
    }
)


def conversation_document(
    conversation_id: str,
    *,
    agent_id: str,
    call_sid: str | None,
    status: str,
    start: int,
    duration: int,
    direction: str,
    agent_number: str,
    external_number: str,
    summary: str,
) -> dict[str, Any]:
    """A conversation in the shape of GET /v1/convai/conversations/{id} (and of a
    post_call_transcription webhook's `data`)."""
    phone_call: dict[str, Any] | None = None
    if call_sid is not None:
        phone_call = {
            "direction": direction,
            "phone_number_id": "phnum_fake",
            "agent_number": agent_number,
            "external_number": external_number,
            "type": "twilio",
            "stream_sid": "MZ" + uuid.uuid4().hex,
            "call_sid": call_sid,
        }
    return {
        "agent_id": agent_id,
        "conversation_id": conversation_id,
        "status": status,
        "user_id": None,
        "transcript": [
            {"role": "agent", "message": "Hello, how can I help?", "time_in_call_secs": 0},
            {"role": "user", "message": "Just checking my order.", "time_in_call_secs": 4},
        ],
        "metadata": {
            "start_time_unix_secs": start,
            "accepted_time_unix_secs": start,
            "call_duration_secs": duration,
            "cost": 300,
            "termination_reason": "Call ended by remote party",
            "main_language": "en",
            "phone_call": phone_call,
        },
        "analysis": {
            "evaluation_criteria_results": {},
            "data_collection_results": {},
            "call_successful": "success",
            "transcript_summary": summary,
        },
        "conversation_initiation_client_data": {"dynamic_variables": {}},
        "has_audio": True,
        "has_user_audio": True,
        "has_response_audio": True,
    }


def conversation_summary(document: dict[str, Any]) -> dict[str, Any]:
    """A conversation as the list returns it."""
    metadata = document["metadata"]
    phone_call = metadata.get("phone_call") or {}
    return {
        "agent_id": document["agent_id"],
        "agent_name": "Support agent",
        "conversation_id": document["conversation_id"],
        "start_time_unix_secs": metadata["start_time_unix_secs"],
        "call_duration_secs": metadata["call_duration_secs"],
        "message_count": len(document["transcript"]),
        "status": document["status"],
        "call_successful": document["analysis"]["call_successful"],
        "transcript_summary": document["analysis"]["transcript_summary"],
        "direction": phone_call.get("direction"),
    }


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _cursor_offset(cursor: str | None) -> int | None:
    if cursor is None:
        return 0
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    kind, _, number = text.partition(":")
    return int(number) if kind == "offset" and number.isdigit() else None


def _query_errors(problems: list[Problem]) -> JSONResponse:
    return JSONResponse(
        {
            "detail": [
                {"loc": ["query", *loc], "msg": msg, "type": kind} for loc, msg, kind in problems
            ]
        },
        status_code=422,
    )


def _field_errors(problems: list[Problem]) -> JSONResponse:
    return JSONResponse(
        {
            "detail": [
                {"loc": ["body", *loc], "msg": msg, "type": kind} for loc, msg, kind in problems
            ]
        },
        status_code=422,
    )


def register_twiml(agent_id: str, conversation_id: str) -> str:
    url = f"wss://api.elevenlabs.io/v1/convai/conversation/twilio?agent_id={agent_id}&conversation_signature=fake"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Response>\n  <Connect>\n"
        f"    <Stream url={quoteattr(url)}>\n"
        f'      <Parameter name="conversation_id" value={quoteattr(conversation_id)}/>\n'
        "    </Stream>\n  </Connect>\n</Response>\n"
    )


async def _scripted(step: str, body: dict[str, Any]) -> Response:
    if step == "ok":
        conversation_id = "conv_" + uuid.uuid4().hex[:20]
        # The real endpoint labels its TwiML text/html; clients must not trust that.
        return Response(register_twiml(body["agent_id"], conversation_id), media_type="text/html")
    if step.startswith("status:"):
        status = int(step.split(":", 1)[1])
        return JSONResponse({"detail": f"fake error {status}"}, status_code=status)
    if step == "hang":
        await asyncio.sleep(3600)
    if step == "html":
        return Response(
            "<html><body><h1>502 Bad Gateway</h1></body></html>", media_type="text/html"
        )
    if step == "json":
        return JSONResponse({"twiml": "<Response/>"})
    if step == "empty":
        return Response(b"", media_type="text/html")
    if step == "invalid_xml":
        return Response("<Response><Connect><Stream url='wss://x'>", media_type="text/html")
    raise ValueError(f"unknown fake step {step!r}")
