"""`POST /elevenlabs/webhook`: ElevenLabs' post-call webhooks, stored before they are
acknowledged.

Each webhook must carry a valid `ElevenLabs-Signature` (bridge.elevenlabs.webhook_signature);
anything else gets 401 and nothing is stored. A signed webhook becomes one
`call_events` row whose `dedupe_key` is `elevenlabs:{type}:{conversation_id}:
{event_timestamp}`, so a replay is answered 200 and changes nothing. It is
matched to a call by `data.conversation_id`, else by the Twilio call SID that
ElevenLabs reports in `data.metadata`; an event that matches no call is kept with
`call_id` NULL and its `conversation_id`, never dropped.

- `post_call_transcription`: transcript, analysis and metadata go on the call.
- `post_call_audio`: the base64 MP3 is written to `$CALL_AUDIO_DIR` (default
  `./call-audio`) as `<conversation_id>.mp3`; the call and the event keep its
  path, size and sha256, never the audio itself.
- `call_initiation_failure`: the call is marked failed (a final status stays).
- Other types are stored as received and acknowledged.

`secret__` dynamic variables are removed before anything is stored.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from bridge.calllog.records import FINAL, STATUS_RANK
from bridge.elevenlabs.client_data import is_secret_variable
from bridge.elevenlabs.webhook_signature import HEADER, secrets_from, verify
from bridge.settings import Settings
from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls

MAX_BODY_BYTES = 20 * 1024 * 1024  # audio webhooks carry a base64 MP3
NOT_CONFIGURED = "ELEVENLABS_WEBHOOK_SECRET is not set"
SIGNATURE_ERRORS = {
    "missing_header": f"Missing {HEADER} header.",
    "malformed_header": f"Malformed {HEADER} header.",
    "mismatch": "Signature does not match.",
    "stale_timestamp": "Signature timestamp is too old.",
    "future_timestamp": "Signature timestamp is in the future.",
}

_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_CALL_SID_KEYS = ("call_sid", "callSid", "CallSid", "system__call_sid")


@dataclass(frozen=True, slots=True)
class Outcome:
    duplicate: bool
    call_id: str | None


async def receive(request: Request) -> JSONResponse:
    settings: Settings = request.app.state.settings
    secrets = secrets_from(settings.elevenlabs_webhook_secret)
    if not secrets:
        return JSONResponse({"error": NOT_CONFIGURED}, status_code=503)
    if not settings.webhook_source_allowed(request.client.host if request.client else None):
        return JSONResponse(
            {"error": "This address may not post webhooks (ELEVENLABS_WEBHOOK_ALLOWED_IPS)."},
            status_code=403,
        )
    raw = await _read_capped(request)
    if raw is None:
        return JSONResponse(
            {"error": f"Request body is too large (at most {MAX_BODY_BYTES} bytes)."},
            status_code=413,
        )
    verdict = verify(request.headers.get(HEADER), raw, secrets)
    if not verdict.ok:
        request.app.state.metrics.signature_failures.labels(request.url.path).inc()
        return JSONResponse(
            {"error": SIGNATURE_ERRORS.get(verdict.reason, "Invalid signature.")},
            status_code=401,
        )
    payload = _json_object(raw)
    if payload is None:
        return JSONResponse({"error": "Request body must be a JSON object."}, status_code=400)
    database: Database = request.app.state.database
    audio_dir = settings.call_audio_dir
    outcome = await record(database, payload, raw, audio_dir=audio_dir)
    return JSONResponse({"received": True, "duplicate": outcome.duplicate})


routes = [Route("/elevenlabs/webhook", receive, methods=["POST"])]


async def record(
    database: Database,
    payload: dict[str, Any],
    raw: bytes,
    *,
    audio_dir: Path,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Outcome:
    """Store one verified webhook (idempotently) and apply it to its call."""
    payload = strip_secret_variables(payload)
    kind = str(payload.get("type") or "unknown")
    data = payload.get("data")
    data = data if isinstance(data, dict) else {}
    conversation_id = _text(data.get("conversation_id"))
    dedupe_key = _dedupe_key(kind, conversation_id, payload.get("event_timestamp"), raw)

    changes: dict[str, Any] = {}
    if kind == "post_call_audio" and "full_audio" in data:
        audio = await run_in_threadpool(_save_audio, data["full_audio"], audio_dir, conversation_id)
        data = {key: value for key, value in data.items() if key != "full_audio"}
        data["full_audio"] = audio
        payload = {**payload, "data": data}
        if "error" not in audio:
            changes = {f"audio_{name}": audio[name] for name in ("path", "bytes", "sha256")}
    elif kind == "post_call_transcription":
        changes = _transcription(data)

    engine = await database.engine()
    async with engine.begin() as connection:
        call_id, by_sid = await _match(connection, conversation_id, _call_sid(data))
        try:
            async with connection.begin_nested():
                await connection.execute(
                    insert(call_events).values(
                        call_id=call_id,
                        kind=f"elevenlabs:{kind}"[:64],
                        at=now(),
                        dedupe_key=dedupe_key,
                        data=payload,
                        conversation_id=conversation_id[:128] if conversation_id else None,
                    )
                )
        except IntegrityError:
            return Outcome(duplicate=True, call_id=call_id)
        if call_id is None:
            return Outcome(duplicate=False, call_id=None)
        if by_sid and conversation_id:
            changes["conversation_id"] = conversation_id[:128]
        if kind == "call_initiation_failure":
            changes.update(await _failure(connection, call_id, data))
        if changes:
            await connection.execute(update(calls).where(calls.c.id == call_id).values(changes))
    return Outcome(duplicate=False, call_id=call_id)


def strip_secret_variables(value: Any) -> Any:
    """`value` without `secret__*` keys in any mapping named `dynamic_variables`."""
    if isinstance(value, list):
        return [strip_secret_variables(item) for item in value]
    if not isinstance(value, dict):
        return value
    cleaned: dict[str, Any] = {}
    for key, item in value.items():
        if key == "dynamic_variables" and isinstance(item, dict):
            item = {k: v for k, v in item.items() if not is_secret_variable(k)}
        cleaned[key] = strip_secret_variables(item)
    return cleaned


async def _read_capped(request: Request) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, dict) else None


def _dedupe_key(kind: str, conversation_id: str | None, stamp: object, raw: bytes) -> str:
    if isinstance(stamp, float) and stamp.is_integer():
        stamp = int(stamp)
    if conversation_id and isinstance(stamp, int | str) and not isinstance(stamp, bool):
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


async def _match(
    connection: AsyncConnection, conversation_id: str | None, call_sid: str | None
) -> tuple[str | None, bool]:
    """(the call's id or None, whether it was found by call SID)."""
    if conversation_id:
        found = (
            await connection.execute(
                select(calls.c.id)
                .where(calls.c.conversation_id == conversation_id)
                .order_by(calls.c.created_at.desc())
                .limit(1)
            )
        ).scalar()
        if found is not None:
            return str(found), False
    if call_sid:
        found = (
            await connection.execute(
                select(calls.c.id)
                .where(or_(calls.c.call_sid == call_sid, calls.c.sip_call_id == call_sid))
                .limit(1)
            )
        ).scalar()
        if found is not None:
            return str(found), True
    return None, False


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


async def _failure(
    connection: AsyncConnection, call_id: str, data: dict[str, Any]
) -> dict[str, Any]:
    reason = _text(data.get("failure_reason")) or _text(data.get("reason")) or "unknown"
    row = (
        await connection.execute(select(calls.c.status, calls.c.error).where(calls.c.id == call_id))
    ).one()
    changes: dict[str, Any] = {}
    if row.status not in FINAL:
        changes.update(status="failed", status_rank=STATUS_RANK["failed"], error=reason)
    elif row.error is None:
        changes["error"] = reason
    return changes


def _save_audio(encoded: object, directory: Path, conversation_id: str | None) -> dict[str, Any]:
    """Decode and write the MP3 atomically; what to store about it instead of it."""
    if not isinstance(encoded, str):
        return {"error": "full_audio is not a base64 string"}
    try:
        audio = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return {"error": "full_audio is not valid base64", "encoded_chars": len(encoded)}
    digest = hashlib.sha256(audio).hexdigest()
    safe = conversation_id and _SAFE_NAME.fullmatch(conversation_id)
    target = (directory / f"{conversation_id if safe else digest}.mp3").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=".audio-", suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(audio)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return {"path": str(target), "bytes": len(audio), "sha256": digest}


def _text(value: object) -> str | None:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None
