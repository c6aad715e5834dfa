"""The names audio is stored under. They are derived by the bridge from identifiers
it checked (a recording SID, a conversation id), never taken from request data, so
no name can climb out of the store's folder or prefix."""

from __future__ import annotations

import re

_SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_NAME = re.compile(r"(post-call|recordings)/[A-Za-z0-9_-]{1,128}\.mp3")


def post_call_audio(conversation_id: str | None, sha256: str) -> str:
    """ElevenLabs' post-call audio: named for its conversation, else its digest."""
    safe = conversation_id if conversation_id and _SAFE_ID.fullmatch(conversation_id) else sha256
    return f"post-call/{safe}.mp3"


def recording(recording_sid: str) -> str:
    """A Twilio recording (a voicemail or a recorded call)."""
    if not _SAFE_ID.fullmatch(recording_sid):
        raise ValueError("a recording SID is letters and digits")
    return f"recordings/{recording_sid}.mp3"


def is_audio_name(name: str) -> bool:
    """Whether `name` is one the bridge makes (to refuse anything else on read)."""
    return _NAME.fullmatch(name) is not None
