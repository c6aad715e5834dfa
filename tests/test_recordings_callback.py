"""Reading a recording status callback: only checked values come out."""

from __future__ import annotations

import pytest

from bridge.recordings.callback import NotARecording, RecordingCallback, read_callback

SID = "RE" + "d" * 32
CALL = "CA" + "e" * 32


def form(**changes: str) -> dict[str, str]:
    values = {
        "RecordingSid": SID,
        "CallSid": CALL,
        "RecordingStatus": "completed",
        "RecordingDuration": "42",
        "RecordingChannels": "2",
        "RecordingSource": "RecordVerb",
        "RecordingUrl": "https://evil.example/x",
    }
    values.update(changes)
    return {name: value for name, value in values.items() if value != "-"}


@pytest.mark.parametrize(
    ("changes", "kind", "expected"),
    [
        (
            {},
            "voicemail",
            RecordingCallback(SID, CALL, "voicemail", "completed", 42, 2, "RecordVerb"),
        ),
        (
            {},
            "recording",
            RecordingCallback(SID, CALL, "recording", "completed", 42, 2, "RecordVerb"),
        ),
        ({}, "", RecordingCallback(SID, CALL, "recording", "completed", 42, 2, "RecordVerb")),
        ({}, "other", RecordingCallback(SID, CALL, "recording", "completed", 42, 2, "RecordVerb")),
        (
            {"RecordingStatus": "absent", "RecordingDuration": "-", "RecordingChannels": "x"},
            "voicemail",
            RecordingCallback(SID, CALL, "voicemail", "absent", None, None, "RecordVerb"),
        ),
        (
            {"CallSid": "-", "RecordingSource": "", "RecordingDuration": "9" * 12},
            "voicemail",
            RecordingCallback(SID, None, "voicemail", "completed", None, 2, None),
        ),
    ],
)
def test_read(changes: dict[str, str], kind: str, expected: RecordingCallback) -> None:
    assert read_callback(form(**changes), kind) == expected


@pytest.mark.parametrize(
    "changes",
    [
        {"RecordingStatus": "in-progress"},
        {"RecordingStatus": "-"},
        {"RecordingSid": "-"},
        {"RecordingSid": "RE123"},
        {"RecordingSid": SID + "/x"},
    ],
)
def test_not_acted_on(changes: dict[str, str]) -> None:
    with pytest.raises(NotARecording):
        read_callback(form(**changes), "voicemail")
