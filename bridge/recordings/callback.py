"""What a recording status callback says, checked: nothing from it is used unchecked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bridge.twilio.paths import RECORDING_KINDS
from bridge.twilio.recordings import is_recording_sid

# Twilio's RecordingStatus values that the bridge acts on.
COMPLETED = "completed"
NO_AUDIO = frozenset({"absent", "failed"})


@dataclass(frozen=True, slots=True)
class RecordingCallback:
    recording_sid: str
    call_sid: str | None
    kind: str  # "voicemail" or "recording"
    status: str  # "completed", "absent" or "failed"
    duration: int | None  # seconds
    channels: int | None
    source: str | None  # RecordingSource: RecordVerb, OutboundAPI, ...


class NotARecording(ValueError):
    """The callback names no valid recording, or a status the bridge does not act on."""


def read_callback(form: Mapping[str, str], kind: str) -> RecordingCallback:
    """The callback's facts, or NotARecording (e.g. an `in-progress` status: nothing to do).

    `kind` is the URL's `kind` query parameter, which the bridge itself set; an unknown
    or missing one counts as a recording (kept, never dropped)."""
    sid = form.get("RecordingSid") or ""
    if not is_recording_sid(sid):
        raise NotARecording("no valid RecordingSid")
    status = form.get("RecordingStatus") or ""
    if status != COMPLETED and status not in NO_AUDIO:
        raise NotARecording(f"status {status or '-'} is not acted on")
    call_sid = form.get("CallSid") or None
    return RecordingCallback(
        recording_sid=sid,
        call_sid=call_sid[:64] if call_sid else None,
        kind=kind if kind in RECORDING_KINDS else "recording",
        status=status,
        duration=_count(form.get("RecordingDuration")),
        channels=_count(form.get("RecordingChannels")),
        source=(form.get("RecordingSource") or None),
    )


def _count(value: str | None) -> int | None:
    if value is None or not value.isdigit() or len(value) > 9:
        return None
    return int(value)
