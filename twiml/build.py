"""Builders for every TwiML document the bridge writes.

All XML goes through twilio's ``VoiceResponse`` so escaping is never done by hand.
Each builder returns the whole document, ``<?xml ...?>`` declaration included.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from twilio.twiml.voice_response import VoiceResponse

__all__ = ["forward", "hangup", "reject", "say_and_hangup", "voicemail"]

# Twilio's documented ranges: Dial timeout 5-600 s, Record maxLength up to 4 hours.
DIAL_TIMEOUT_RANGE = (5, 600)
RECORD_MAX_LENGTH_RANGE = (1, 14_400)
# What <Record recordingStatusCallbackEvent> may list.
RECORDING_STATUS_EVENTS = frozenset({"in-progress", "completed", "absent"})

# Characters XML 1.0 cannot carry at all; ElementTree would write them raw and
# Twilio would reject the whole document, so fail early with a clear message.
_NOT_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _clean(field: str, value: str | None) -> str | None:
    if value is not None and _NOT_XML_CHARS.search(value):
        raise ValueError(f"{field} contains characters that XML cannot carry")
    return value


def _check_range(field: str, value: int, bounds: tuple[int, int]) -> None:
    low, high = bounds
    if not low <= value <= high:
        raise ValueError(f"{field} must be between {low} and {high}, got {value}")


def _say(response: Any, message: str | None, *, voice: str | None, language: str | None) -> None:
    # Twilio rejects an empty <Say>, so a blank message simply means "say nothing".
    if message is None or not message.strip():
        return
    response.say(
        _clean("message", message),
        voice=_clean("voice", voice),
        language=_clean("language", language),
    )


def _to_xml(response: Any) -> str:
    return str(response.to_xml())


def say_and_hangup(message: str, *, voice: str | None = None, language: str | None = None) -> str:
    """``<Say>message</Say><Hangup/>``; a blank message gives just ``<Hangup/>``."""
    response = VoiceResponse()
    _say(response, message, voice=voice, language=language)
    response.hangup()
    return _to_xml(response)


def reject(reason: Literal["busy", "rejected"] = "rejected") -> str:
    """``<Reject reason=.../>``: refuse the call without answering (no billing)."""
    if reason not in ("busy", "rejected"):
        raise ValueError(f"reason must be 'busy' or 'rejected', got {reason!r}")
    response = VoiceResponse()
    response.reject(reason=reason)
    return _to_xml(response)


def hangup() -> str:
    """``<Hangup/>``."""
    response = VoiceResponse()
    response.hangup()
    return _to_xml(response)


def forward(
    targets: Sequence[str],
    *,
    message: str | None = None,
    timeout: int = 20,
    caller_id: str | None = None,
    action_url: str | None = None,
    voice: str | None = None,
    language: str | None = None,
    after_message: str | None = None,
) -> str:
    """Optional ``<Say>``, then one ``<Dial>`` ringing every target at once.

    Targets starting with ``sip:`` become ``<Sip>``, anything else ``<Number>``.
    Without ``action_url`` a ``<Hangup/>`` follows the Dial so the caller never
    falls through to whatever Twilio would do next; ``after_message`` is said
    before it (Twilio gets there when the dialled party hangs up or never answers).
    """
    # A bare str is a Sequence[str] too; iterating it would dial each character.
    if isinstance(targets, str):
        raise TypeError("targets must be a sequence of strings, not a single str")
    if not targets:
        raise ValueError("targets must contain at least one number or SIP URI")
    _check_range("timeout", timeout, DIAL_TIMEOUT_RANGE)

    cleaned: list[str] = []
    for index, target in enumerate(targets):
        target = target.strip()
        if not target:
            raise ValueError(f"targets[{index}] is empty")
        cleaned.append(str(_clean(f"targets[{index}]", target)))

    response = VoiceResponse()
    _say(response, message, voice=voice, language=language)
    dial_attrs: dict[str, Any] = {"timeout": timeout}
    if caller_id is not None:
        dial_attrs["caller_id"] = _clean("caller_id", caller_id)
    if action_url is not None:
        # method is only meaningful together with action.
        dial_attrs["action"] = _clean("action_url", action_url)
        dial_attrs["method"] = "POST"
    dial = response.dial(**dial_attrs)
    for target in cleaned:
        if target.lower().startswith("sip:"):
            dial.sip(target)
        else:
            dial.number(target)
    if action_url is None:
        _say(response, after_message, voice=voice, language=language)
        response.hangup()
    return _to_xml(response)


def voicemail(
    message: str | None,
    *,
    max_length: int = 120,
    play_beep: bool = True,
    action_url: str,
    voice: str | None = None,
    language: str | None = None,
    recording_status_url: str | None = None,
    recording_status_events: Sequence[str] = ("completed",),
) -> str:
    """Optional ``<Say>``, then ``<Record/>`` and ``<Hangup/>``.

    ``action_url`` is required: without it Twilio POSTs the recording to the
    current document URL, which would re-run the inbound-call webhook. With
    ``recording_status_url`` Twilio also POSTs there once the recording is
    ``completed`` (or ``absent``: the events in ``recording_status_events``).
    """
    _check_range("max_length", max_length, RECORD_MAX_LENGTH_RANGE)
    if not action_url.strip():
        raise ValueError("action_url must not be empty")
    response = VoiceResponse()
    _say(response, message, voice=voice, language=language)
    record_attrs: dict[str, Any] = {}
    if recording_status_url is not None:
        if not recording_status_url.strip():
            raise ValueError("recording_status_url must not be empty")
        if isinstance(recording_status_events, str) or not recording_status_events:
            raise ValueError("recording_status_events must be a non-empty sequence of events")
        unknown = set(recording_status_events) - RECORDING_STATUS_EVENTS
        if unknown:
            raise ValueError(f"recording_status_events: unknown {sorted(unknown)}")
        record_attrs["recording_status_callback"] = _clean(
            "recording_status_url", recording_status_url
        )
        record_attrs["recording_status_callback_method"] = "POST"
        record_attrs["recording_status_callback_event"] = " ".join(recording_status_events)
    response.record(
        max_length=max_length,
        play_beep=play_beep,
        action=_clean("action_url", action_url),
        method="POST",
        **record_attrs,
    )
    response.hangup()
    return _to_xml(response)
