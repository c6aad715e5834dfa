"""ElevenLabs' post-call webhooks into the call log (after `POST /elevenlabs/webhook`
has checked their signature).

A webhook becomes one `call_events` row whose `dedupe_key` is
`elevenlabs:{type}:{conversation_id}:{event_timestamp}`, so a replay changes
nothing. It is matched to a call by `data.conversation_id`, else by the Twilio call
SID that ElevenLabs reports in `data.metadata`; an event that matches no call is
kept with `call_id` NULL and its `conversation_id`, never dropped.

- `post_call_transcription`: transcript, analysis and metadata go on the call, and
  the metadata completes it (`CallEnd`: status from `data.status`, duration, start
  and end times, numbers from `metadata.phone_call`), which is all a call placed in
  `elevenlabs` or `sip` mode ever hears of its end. Its dedupe key is
  `elevenlabs:post_call_transcription:{conversation_id}`, one per conversation, so
  the same transcription fetched by reconciliation (bridge.reconcile, through
  `from_conversation`) and a late webhook are stored once, whichever comes first.
- `post_call_audio`: the base64 MP3 goes into the audio store (bridge.audio,
  AUDIO_STORE) as `post-call/<conversation_id>.mp3`; the call (`audio_path`) and the
  event (`full_audio`) keep its object name, size and sha256, never the audio itself.
  When the store fails, the event is stored all the same with `full_audio.error` (and
  the audio's size and sha256) and the failure is logged: ElevenLabs never sends a
  webhook again, so the transcript and the record of what was lost are kept.
- `call_initiation_failure`: the call is marked failed (a final status stays).
- Other types are stored as received.

`secret__` dynamic variables are removed before anything is stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bridge.audio import names
from bridge.audio.store import AudioStore, AudioStoreError
from bridge.calllog.log_lines import logfmt
from bridge.calllog.records import STATUS_RANK, CallEnd, CallRecords, Stored
from bridge.secret import is_secret_variable
from bridge.storage.database import Database

logger = logging.getLogger("bridge.calllog")
_CALL_SID_KEYS = ("call_sid", "callSid", "CallSid", "system__call_sid")


async def record(
    database: Database,
    payload: dict[str, Any],
    raw: bytes,
    *,
    store: AudioStore,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Stored:
    """Store one verified webhook (`payload`, parsed from `raw`) idempotently and
    apply it to its call."""
    event = await prepare(payload, raw, store=store)
    return await event.store(CallRecords(database, now=now))


@dataclass(frozen=True, slots=True)
class PostCallEvent:
    """A webhook ready to store (its audio already in the audio store); storing it twice is
    storing it once, so a failed store can be retried."""

    kind: str
    dedupe_key: str
    payload: dict[str, Any]
    conversation_id: str | None
    call_sid: str | None
    changes: dict[str, Any]
    failure: str | None
    # Its audio could not be put in the audio store (`full_audio.error` says why).
    audio_lost: bool = False
    end: CallEnd | None = None

    async def store(self, records: CallRecords) -> Stored:
        return await records.record_elevenlabs_event(
            kind=self.kind,
            dedupe_key=self.dedupe_key,
            payload=self.payload,
            conversation_id=self.conversation_id,
            call_sid=self.call_sid,
            changes=self.changes,
            failure=self.failure,
            end=self.end,
        )


async def prepare(payload: dict[str, Any], raw: bytes, *, store: AudioStore) -> PostCallEvent:
    """What to store for a verified webhook: secrets stripped, audio put in the store."""
    payload = strip_secret_variables(payload)
    kind = str(payload.get("type") or "unknown")
    data = payload.get("data")
    data = data if isinstance(data, dict) else {}
    conversation_id = _text(data.get("conversation_id"))
    dedupe_key = _dedupe_key(kind, conversation_id, payload.get("event_timestamp"), raw)

    changes: dict[str, Any] = {}
    audio_lost = False
    end = None
    if kind == "post_call_audio" and "full_audio" in data:
        audio = await _store_audio(store, data["full_audio"], conversation_id)
        data = {key: value for key, value in data.items() if key != "full_audio"}
        data["full_audio"] = audio
        payload = {**payload, "data": data}
        audio_lost = "sha256" in audio and "name" not in audio
        if "error" not in audio:
            changes = {
                "audio_path": audio["name"],
                "audio_bytes": audio["bytes"],
                "audio_sha256": audio["sha256"],
            }
    elif kind == "post_call_transcription":
        changes = _transcription(data)
        end = call_end(data)
    failure = None
    if kind == "call_initiation_failure":
        failure = _text(data.get("failure_reason")) or _text(data.get("reason")) or "unknown"
    return PostCallEvent(
        kind=kind,
        dedupe_key=dedupe_key,
        payload=payload,
        conversation_id=conversation_id,
        call_sid=_call_sid(data),
        changes=changes,
        failure=failure,
        audio_lost=audio_lost,
        end=end,
    )


def from_conversation(conversation: dict[str, Any]) -> PostCallEvent:
    """A conversation as `GET /v1/convai/conversations/{id}` returns it (the same object
    as a transcription webhook's `data`), ready to store exactly as that webhook."""
    payload = {"type": "post_call_transcription", "data": conversation}
    raw = json.dumps(conversation, sort_keys=True, default=str).encode()
    # No audio in a transcription: nothing is written, so no audio store is needed.
    data = strip_secret_variables(conversation)
    conversation_id = _text(data.get("conversation_id"))
    return PostCallEvent(
        kind="post_call_transcription",
        dedupe_key=_dedupe_key("post_call_transcription", conversation_id, None, raw),
        payload={**payload, "data": data, "source": "reconcile"},
        conversation_id=conversation_id,
        call_sid=_call_sid(data),
        changes=_transcription(data),
        failure=None,
        end=call_end(data),
    )


# A conversation's `status` when it is over: done, or failed.
_ENDED_AS = {"done": "completed", "failed": "failed"}


def call_end(data: dict[str, Any]) -> CallEnd | None:
    """How the call ended, from a transcription's `status` and `metadata`."""
    metadata = data.get("metadata")
    metadata = metadata if isinstance(metadata, dict) else {}
    status = _ENDED_AS.get(str(data.get("status") or ""))
    started = _number(metadata.get("start_time_unix_secs"))
    duration = _number(metadata.get("call_duration_secs"))
    phone_call = metadata.get("phone_call")
    phone_call = phone_call if isinstance(phone_call, dict) else {}
    ours, theirs = _text(phone_call.get("agent_number")), _text(phone_call.get("external_number"))
    outbound = _text(phone_call.get("direction")) == "outbound"
    end = CallEnd(
        status=status if status in STATUS_RANK else None,
        duration=int(duration) if duration is not None else None,
        answered_at=_moment(started),
        ended_at=_moment(started + duration)
        if started is not None and duration is not None
        else None,
        from_number=ours if outbound else theirs,
        to_number=theirs if outbound else ours,
    )
    return end if end != CallEnd() else None


def _number(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
        if 0 <= number < 1e11:  # finite, and a time before the year 5138
            return number
    return None


def _moment(stamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(stamp, UTC) if stamp is not None else None


def strip_secret_variables(value: Any) -> Any:
    """`value` without `secret__*` keys in any mapping named `dynamic_variables`.

    Iterative, so that no nesting depth can exhaust Python's stack."""
    root: list[Any] = [None]
    # (the original container, the copy being filled, and where the copy goes)
    stack: list[tuple[Any, list[Any] | dict[Any, Any], Any, Any]] = []

    def place(item: Any, parent: Any, slot: Any) -> None:
        if isinstance(item, dict):
            copy: dict[Any, Any] = {}
            stack.append((item, copy, parent, slot))
        elif isinstance(item, list):
            copy_list: list[Any] = []
            stack.append((item, copy_list, parent, slot))
        else:
            _put(parent, slot, item)

    place(value, root, 0)
    while stack:
        original, copy, parent, slot = stack.pop()
        _put(parent, slot, copy)
        if isinstance(original, dict):
            for key, item in original.items():
                if key == "dynamic_variables" and isinstance(item, dict):
                    item = {k: v for k, v in item.items() if not is_secret_variable(k)}
                assert isinstance(copy, dict)
                copy[key] = None  # keeps the keys in order
                place(item, copy, key)
        else:
            assert isinstance(copy, list)
            copy.extend([None] * len(original))
            for index, item in enumerate(original):
                place(item, copy, index)
    return root[0]


def _put(parent: Any, slot: Any, item: Any) -> None:
    parent[slot] = item


def nesting_depth(value: Any) -> int:
    """How deeply lists and dicts nest in `value` (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            stack.extend((child, depth + 1) for child in item.values())
        elif isinstance(item, list):
            stack.extend((child, depth + 1) for child in item)
        else:
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
    return deepest


def _dedupe_key(kind: str, conversation_id: str | None, stamp: object, raw: bytes) -> str:
    if isinstance(stamp, float) and stamp.is_integer():
        stamp = int(stamp)
    if conversation_id and kind == "post_call_transcription":
        # One transcription per conversation, however it arrived (webhook or fetched).
        key = f"elevenlabs:{kind}:{conversation_id}"
    elif conversation_id and isinstance(stamp, int | str) and not isinstance(stamp, bool):
        key = f"elevenlabs:{kind}:{conversation_id}:{stamp}"
    else:  # not enough to name the event: the exact body names it
        key = f"elevenlabs:{kind}:body:{hashlib.sha256(raw).hexdigest()}"
    if len(key) > 255:
        key = f"elevenlabs:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
    return key


def _call_sid(data: dict[str, Any]) -> str | None:
    """The Twilio (or SIP) call id ElevenLabs reports, wherever it put it."""
    metadata = data.get("metadata")
    places: list[Any] = []
    if isinstance(metadata, dict):
        places += [metadata.get("phone_call"), metadata, metadata.get("body")]
    client_data = data.get("conversation_initiation_client_data")
    if isinstance(client_data, dict):
        places.append(client_data.get("dynamic_variables"))
    for place in places:
        if isinstance(place, dict):
            for key in _CALL_SID_KEYS:
                found = _text(place.get(key))
                if found:
                    return found
    return None


def _transcription(data: dict[str, Any]) -> dict[str, Any]:
    transcript = data.get("transcript")
    analysis = data.get("analysis")
    metadata = data.get("metadata")
    changes: dict[str, Any] = {
        "transcript": transcript if isinstance(transcript, list) else None,
        "analysis": analysis if isinstance(analysis, dict) else None,
        "post_call_metadata": metadata if isinstance(metadata, dict) else None,
    }
    if isinstance(analysis, dict):
        changes["summary"] = _text(analysis.get("transcript_summary"))
        successful = _text(analysis.get("call_successful"))
        changes["call_successful"] = successful[:16] if successful else None
    return changes


async def _store_audio(
    store: AudioStore, encoded: object, conversation_id: str | None
) -> dict[str, Any]:
    """Decode the MP3 and put it in the store; what to keep about it instead of it."""
    if not isinstance(encoded, str):
        return {"error": "full_audio is not a base64 string"}
    try:
        audio = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return {"error": "full_audio is not valid base64", "encoded_chars": len(encoded)}
    digest = hashlib.sha256(audio).hexdigest()
    name = names.post_call_audio(conversation_id, digest)
    try:
        stored = await store.put(name, audio)
    except AudioStoreError as exc:
        fields = {
            "event": "audio_store_failed",
            "audio": "post_call",
            "conversation_id": conversation_id or "-",
            "bytes": len(audio),
            "sha256": digest,
            "error": str(exc),
        }
        logger.error("%s", logfmt(fields))
        return {"error": f"the audio store failed: {exc}", "bytes": len(audio), "sha256": digest}
    return {"name": stored.name, "bytes": stored.bytes, "sha256": stored.sha256}


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None
