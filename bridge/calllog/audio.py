"""The audio of one call: its post-call audio from ElevenLabs and its voicemails and
recordings from Twilio (the `recordings` rows whose audio is stored).

What `GET /calls/{sid}`, `callbridge calls show` and `GET /calls/{sid}/audio/{file}`
share. The route finds the file it is asked for in this list, so no object name is
ever built from a URL: `file` is only the last segment of a name the bridge made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import and_, or_, select
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.calllog.keys import call_by_key
from bridge.storage.database import Database
from bridge.storage.tables import call_events, recordings

POST_CALL = "post_call"


@dataclass(frozen=True, slots=True)
class CallAudio:
    """One stored audio of a call. `name` is the audio store's object name (or, for
    post-call audio stored before the audio store, the file's absolute path)."""

    kind: str  # "post_call", "voicemail" or "recording"
    name: str
    bytes: int | None = None
    sha256: str | None = None
    duration: int | None = None  # seconds, when Twilio said

    @property
    def file(self) -> str:
        """The name's last segment: `RE123.mp3`, `<conversation_id>.mp3`."""
        return self.name.replace("\\", "/").rsplit("/", 1)[-1]


async def audio_of_call(database: Database, call_sid: str) -> list[CallAudio] | None:
    """The call's audio, post-call audio first, then recordings in the order they were
    made. The call is found as `GET /calls/{key}` finds it (call SID, the bridge's id,
    then conversation id); None when there is no such call."""
    engine = await database.engine()
    async with engine.connect() as connection:
        row = await call_by_key(connection, call_sid)
        if row is None:
            return None
        return await listed(connection, row)


async def listed(connection: AsyncConnection, call: Row[Any]) -> list[CallAudio]:
    """The audio of the call record `call` (a row of `calls`)."""
    found: list[CallAudio] = []
    if call.audio_path:
        found.append(CallAudio(POST_CALL, call.audio_path, call.audio_bytes, call.audio_sha256))
    mine = call_events.c.call_id == call.id
    if call.conversation_id:
        # Post-call audio that arrived before the call was matched to its conversation.
        mine = or_(
            mine,
            and_(
                call_events.c.call_id.is_(None),
                call_events.c.conversation_id == call.conversation_id,
            ),
        )
    events = await connection.execute(
        select(call_events.c.data)
        .where(and_(mine, call_events.c.kind == "elevenlabs:post_call_audio"))
        .order_by(call_events.c.at, call_events.c.id)
    )
    for (data,) in events:
        audio = _full_audio(data)
        if audio is not None and all(audio.name != known.name for known in found):
            found.append(audio)
    theirs = recordings.c.call_id == call.id
    if call.call_sid:
        theirs = or_(theirs, recordings.c.call_sid == call.call_sid)
    rows = await connection.execute(
        select(recordings)
        .where(and_(theirs, recordings.c.status == "stored", recordings.c.audio_name.is_not(None)))
        .order_by(recordings.c.created_at, recordings.c.recording_sid)
    )
    for row in rows:
        found.append(
            CallAudio(row.kind, row.audio_name, row.audio_bytes, row.audio_sha256, row.duration)
        )
    return found


def links(call: Row[Any] | str, audio: list[CallAudio]) -> list[dict[str, Any]]:
    """What the API shows: `[{kind, file, url, bytes, sha256, duration}]`, each url
    `/calls/{call_sid}/audio/{file}` (the call's id when it has no SID)."""
    key = call if isinstance(call, str) else (call.call_sid or call.id)
    return [
        {
            "kind": item.kind,
            "file": item.file,
            "url": f"/calls/{quote(key, safe='')}/audio/{quote(item.file, safe='')}",
            "bytes": item.bytes,
            "sha256": item.sha256,
            "duration": item.duration,
        }
        for item in audio
    ]


def _full_audio(data: Any) -> CallAudio | None:
    """The audio a stored post-call audio event names (`data.full_audio`), if stored:
    `name` (the audio store) or `path` (a file, before there was a store)."""
    inner = data.get("data") if isinstance(data, dict) else None
    audio = inner.get("full_audio") if isinstance(inner, dict) else None
    if not isinstance(audio, dict):
        return None
    name = audio.get("name") or audio.get("path")
    if not isinstance(name, str) or not name:
        return None
    size, digest = audio.get("bytes"), audio.get("sha256")
    return CallAudio(
        POST_CALL,
        name,
        size if isinstance(size, int) else None,
        digest if isinstance(digest, str) else None,
    )
