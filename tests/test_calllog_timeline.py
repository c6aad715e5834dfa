from __future__ import annotations

from typing import Any

import pytest

from bridge.calllog.timeline import MAX_TEXT, describe, duration, timeline

AUDIO = {"name": "recordings/RE1.mp3", "bytes": 6720, "sha256": "ab" * 32}


@pytest.mark.parametrize(
    ("kind", "data", "text"),
    [
        # answers
        (
            "inbound",
            {"rule": "office hours", "action": "agent", "outcome": "connected", "agent_id": "ag1"},
            "answered by rule office hours: connected to the agent ag1",
        ),
        (
            "inbound",
            {"rule": "blocklist", "action": "reject", "outcome": "handled"},
            ("answered by rule blocklist: reject"),
        ),
        ("inbound", {"rule": "-", "action": "-", "outcome": "fallback"}, "answered: - failed"),
        ("inbound", {"outcome": "connected"}, "answered: connected to the agent"),
        ("inbound", {}, "answered: handled"),
        (
            "outbound_answer",
            {"rule": "outbound", "action": "agent", "outcome": "connected"},
            ("outbound call answered by rule outbound: connected to the agent"),
        ),
        (
            "dial_complete",
            {"rule": "sales", "action": "voicemail", "outcome": "handled"},
            ("after the dial, answered by rule sales: voicemail"),
        ),
        (
            "placed",
            {"to": "+14155550123", "mode": "register"},
            ("call placed to +14155550123 (register mode)"),
        ),
        ("placed", {}, "call placed"),
        # statuses
        ("status", {"status": "completed", "duration": 190}, "completed 3:10"),
        ("status", {"status": "completed", "duration": 3723}, "completed 1:02:03"),
        ("status", {"status": "completed"}, "completed"),
        ("status", {"status": "ringing"}, "ringing"),
        (
            "status",
            {"status": "in-progress", "answered_by": "human"},
            ("in progress, answered by a person"),
        ),
        ("status", {"status": "no-answer", "duration": 0}, "no answer"),
        ("status", {}, "unknown status"),
        # transfers
        (
            "transfer",
            {"requested_by": "agent_tool", "to": "+14155550199", "transferred": True},
            ("transferred to +14155550199 by the agent"),
        ),
        (
            "transfer",
            {"requested_by": "api", "to": "sip:desk@example.com", "transferred": True},
            ("transferred to sip:desk@example.com by the API"),
        ),
        (
            "transfer",
            {"requested_by": "api", "to": "+881", "error": "country not allowed"},
            "transfer to +881 by the API failed: country not allowed",
        ),
        (
            "transfer",
            {"requested_by": "api", "to": "+1415", "transferred": False, "twilio_status": 404},
            "transfer to +1415 by the API failed",
        ),
        (
            "transfer",
            {"requested_by": "agent_tool", "to": "+1415", "transferred": "unknown", "error": "t/o"},
            "transfer to +1415 by the agent may not have happened: t/o",
        ),
        ("transfer", {}, "transfer to someone by someone failed"),
        # dial results
        (
            "dial_result",
            {"step": "0", "status": "no-answer", "duration": 20},
            ("dial no-answer after 20 s"),
        ),
        ("dial_result", {"status": "completed", "duration": 0}, "dial completed after 0 s"),
        ("dial_result", {"status": "busy"}, "dial busy"),
        ("dial_result", {"duration": True}, "dial ended"),
        # voicemail and recordings: the <Record action> step and the recording events
        ("voicemail", {"step": "1", "recording_sid": "RE1", "duration": 42}, "voicemail 0:42"),
        (
            "voicemail",
            {"recording_sid": "RE1", "duration": 42, "status": "stored", "audio": AUDIO},
            ("voicemail 0:42 with audio"),
        ),
        (
            "voicemail",
            {"recording_sid": "RE1", "duration": 42, "status": "completed", "audio": None},
            ("voicemail 0:42 recorded, audio not stored yet"),
        ),
        (
            "voicemail",
            {"duration": 42, "status": "failed", "audio": None},
            ("voicemail 0:42, its audio could not be fetched"),
        ),
        ("voicemail", {"duration": 7, "status": "absent"}, "voicemail 0:07, no audio at Twilio"),
        ("voicemail", {}, "voicemail"),
        (
            "recording",
            {"duration": 190, "status": "stored", "audio": AUDIO},
            ("recording 3:10 with audio"),
        ),
        ("recording", {"duration": -1, "status": "stored"}, "recording with audio"),
        # fallbacks and machine detection
        ("fallback", {"action": "agent", "reason": "timeout"}, "fallback: register-call timed out"),
        ("fallback", {"reason": "http_503"}, "fallback: http 503"),
        (
            "lookup",
            {"result": "ok", "changed": ["agent_id", "dynamic_variables.name"]},
            "lookup: changed agent_id, dynamic_variables.name",
        ),
        ("lookup", {"result": "ok", "ms": 3.1}, "lookup: nothing changed"),
        ("lookup", {"result": "http_error"}, "lookup http error: rule's own values used"),
        ("lookup", {}, "lookup unknown: rule's own values used"),
        ("fallback", {"reason": "no_agent_id"}, "fallback: no agent is configured"),
        ("fallback", {}, "fallback: reason unknown"),
        ("amd", {"answered_by": "machine_start"}, "answered by machine"),
        ("amd", {"answered_by": "human"}, "answered by a person"),
        ("amd", {"answered_by": "fax"}, "answered by a fax"),
        ("amd", {"answered_by": "robot"}, "answered by robot"),
        ("amd", {}, "answering machine detection could not tell who answered"),
        # ElevenLabs
        (
            "elevenlabs:post_call_transcription",
            {"type": "post_call_transcription"},
            ("transcript received"),
        ),
        ("elevenlabs:post_call_audio", {}, "post-call audio stored"),
        (
            "elevenlabs:call_initiation_failure",
            {"data": {"failure_reason": "busy"}},
            ("ElevenLabs could not start the call: busy"),
        ),
        (
            "elevenlabs:call_initiation_failure",
            {"data": "?"},
            "ElevenLabs could not start the call",
        ),
        ("elevenlabs:something_new", {}, "ElevenLabs: something new"),
        # kinds this module does not know
        ("reconciled", {"status": "completed"}, "reconciled: completed"),
        ("twilio_fetch", {"status": 5}, "twilio fetch"),
        ("", {}, "event"),
    ],
)
def test_wording(kind: str, data: dict[str, Any], text: str) -> None:
    assert describe(kind, data) == text


@pytest.mark.parametrize("data", [None, [], "text", 5])
def test_data_that_is_not_a_mapping(data: Any) -> None:
    assert describe("voicemail", data) == "voicemail"
    assert describe("transfer", data) == "transfer to someone by someone failed"


def test_long_text_is_shortened() -> None:
    text = describe("transfer", {"requested_by": "api", "to": "+1", "error": "x" * 1000})
    assert len(text) == MAX_TEXT and text.endswith("…")


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(0, "0:00"), (42, "0:42"), (60, "1:00"), (190, "3:10"), (3600, "1:00:00"), (42.9, "0:42")],
)
def test_duration(seconds: float, shown: str) -> None:
    assert duration(seconds) == shown


@pytest.mark.parametrize("seconds", [None, -1, "42", True])
def test_no_duration(seconds: Any) -> None:
    assert duration(seconds) is None


def test_timeline_keeps_the_order_and_the_times() -> None:
    events = [
        {"kind": "inbound", "at": "2025-03-01T12:00:00+00:00", "data": {"outcome": "connected"}},
        {
            "kind": "transfer",
            "at": "2025-03-01T12:01:00+00:00",
            "data": {"requested_by": "agent_tool", "to": "+14155550199", "transferred": True},
        },
        {
            "kind": "status",
            "at": "2025-03-01T12:03:10+00:00",
            "data": {"status": "completed", "duration": 190},
        },
    ]
    assert timeline(events) == [
        {
            "at": "2025-03-01T12:00:00+00:00",
            "kind": "inbound",
            "text": "answered: connected to the agent",
        },
        {
            "at": "2025-03-01T12:01:00+00:00",
            "kind": "transfer",
            "text": ("transferred to +14155550199 by the agent"),
        },
        {"at": "2025-03-01T12:03:10+00:00", "kind": "status", "text": "completed 3:10"},
    ]
