"""A call's events in plain words: "voicemail 0:42 with audio", "transferred to +1…
by the agent", "dial no-answer after 20 s", "completed 3:10".

The one place the wording lives: `GET /calls/{sid}` puts it beside the raw events
and `callbridge calls show` prints it. Pure functions of the stored events; a kind
this module does not know still gets a line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

MAX_TEXT = 200  # an error from upstream can be long; the raw event keeps all of it

# Why a call fell back (Answer.reason), in words. Others are shown as they are.
FALLBACK_REASONS = {
    "timeout": "register-call timed out",
    "connect_error": "ElevenLabs could not be reached",
    "too_large": "register-call's answer was too large",
    "bad_twiml": "register-call's TwiML was unusable",
    "unexpected_twiml": "register-call's TwiML was unexpected",
    "no_agent_id": "no agent is configured",
    "elevenlabs_not_configured": "ElevenLabs is not configured",
    "render_error": "the rule's TwiML could not be built",
    "transfer_not_answered": "nobody answered the transfer",
    "unknown_step": "Twilio came back for an unknown step",
    "deadline": "no answer in time",
    "internal_error": "an internal error",
    "unknown_call": "the outbound call was not known",
}

# Answering-machine detection results (Twilio's AnsweredBy).
ANSWERED_BY = {
    "human": "answered by a person",
    "machine_start": "answered by machine",
    "machine_end_beep": "answered by machine (after the beep)",
    "machine_end_silence": "answered by machine (after silence)",
    "machine_end_other": "answered by machine",
    "fax": "answered by a fax",
    "unknown": "answering machine detection could not tell who answered",
}

REQUESTED_BY = {"api": "the API", "agent_tool": "the agent"}


def timeline(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`{"at", "kind", "text"}` for each event (`{"kind", "at", "data"}`), in order."""
    return [
        {
            "at": event.get("at"),
            "kind": event.get("kind"),
            "text": describe(str(event.get("kind") or ""), event.get("data")),
        }
        for event in events
    ]


def describe(kind: str, data: Any) -> str:
    """One event in plain words."""
    fields: Mapping[str, Any] = data if isinstance(data, Mapping) else {}
    if kind.startswith("elevenlabs:"):
        text = _elevenlabs(kind.removeprefix("elevenlabs:"), fields)
    else:
        words = _WORDS.get(kind)
        text = words(fields) if words is not None else _generic(kind, fields)
    return _short(text)


def duration(seconds: Any) -> str | None:
    """`0:42`, `3:10`, `1:02:03` from whole seconds; None when it is not a number."""
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        return None
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02}:{secs:02}" if hours else f"{minutes}:{secs:02}"


def _answer(what: str) -> Callable[[Mapping[str, Any]], str]:
    def words(data: Mapping[str, Any]) -> str:
        rule = f" by rule {data['rule']}" if data.get("rule") not in (None, "", "-") else ""
        outcome = data.get("outcome")
        if outcome == "connected":
            agent = f" {data['agent_id']}" if data.get("agent_id") else ""
            return f"{what}{rule}: connected to the agent{agent}"
        if outcome == "fallback":
            return f"{what}{rule}: {_said(data.get('action'), 'the action')} failed"
        return f"{what}{rule}: {_said(data.get('action'), 'handled')}"

    return words


def _placed(data: Mapping[str, Any]) -> str:
    to = f" to {data['to']}" if data.get("to") else ""
    mode = f" ({data['mode']} mode)" if data.get("mode") else ""
    return f"call placed{to}{mode}"


def _status(data: Mapping[str, Any]) -> str:
    status = _said(data.get("status"), "unknown status").replace("-", " ")
    length = duration(data.get("duration"))
    text = f"{status} {length}" if length and status == "completed" else status
    if data.get("answered_by") in ANSWERED_BY and status != "completed":
        text += f", {ANSWERED_BY[data['answered_by']]}"
    return text


def _transfer(data: Mapping[str, Any]) -> str:
    to = _said(data.get("to"), "someone")
    by = REQUESTED_BY.get(str(data.get("requested_by")), "someone")
    done = data.get("transferred")
    if done is True:
        return f"transferred to {to} by {by}"
    error = f": {data['error']}" if data.get("error") else ""
    if done == "unknown":
        return f"transfer to {to} by {by} may not have happened{error}"
    return f"transfer to {to} by {by} failed{error}"


def _dial_result(data: Mapping[str, Any]) -> str:
    status = _said(data.get("status"), "ended")
    seconds = data.get("duration")
    after = (
        f" after {seconds} s" if isinstance(seconds, int) and not isinstance(seconds, bool) else ""
    )
    return f"dial {status}{after}"


def _recording(what: str) -> Callable[[Mapping[str, Any]], str]:
    def words(data: Mapping[str, Any]) -> str:
        length = duration(data.get("duration"))
        text = f"{what} {length}" if length else what
        status = data.get("status")
        if isinstance(data.get("audio"), Mapping) or status == "stored":
            return f"{text} with audio"
        if status == "failed":
            return f"{text}, its audio could not be fetched"
        if status == "absent":
            return f"{text}, no audio at Twilio"
        if status == "completed":
            return f"{text} recorded, audio not stored yet"
        return text

    return words


def _fallback(data: Mapping[str, Any]) -> str:
    reason = data.get("reason")
    because = FALLBACK_REASONS.get(str(reason)) or _said(reason, "reason unknown").replace("_", " ")
    return f"fallback: {because}"


def _lookup(data: Mapping[str, Any]) -> str:
    result = str(data.get("result") or "unknown")
    changed = data.get("changed")
    if result == "ok":
        what = ", ".join(str(name) for name in changed) if isinstance(changed, list) else ""
        return f"lookup: changed {what}" if what else "lookup: nothing changed"
    return f"lookup {result.replace('_', ' ')}: rule's own values used"


def _amd(data: Mapping[str, Any]) -> str:
    answered_by = str(data.get("answered_by") or "unknown")
    return ANSWERED_BY.get(answered_by, f"answered by {answered_by}")


def _elevenlabs(kind: str, data: Mapping[str, Any]) -> str:
    if kind == "post_call_transcription":
        return "transcript received"
    if kind == "post_call_audio":
        return "post-call audio stored"
    if kind == "call_initiation_failure":
        inner = data.get("data")
        reason = inner.get("failure_reason") if isinstance(inner, Mapping) else None
        return (
            f"ElevenLabs could not start the call: {reason}"
            if reason
            else ("ElevenLabs could not start the call")
        )
    return f"ElevenLabs: {kind.replace('_', ' ')}"


def _generic(kind: str, data: Mapping[str, Any]) -> str:
    """A kind this module does not know: its name, and its status when it has one."""
    name = kind.replace("_", " ").strip() or "event"
    status = data.get("status")
    return f"{name}: {status}" if isinstance(status, str) and status else name


def _said(value: Any, otherwise: str) -> str:
    return str(value) if value not in (None, "") else otherwise


def _short(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


_WORDS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "inbound": _answer("answered"),
    "outbound_answer": _answer("outbound call answered"),
    "dial_complete": _answer("after the dial, answered"),
    "placed": _placed,
    "status": _status,
    "transfer": _transfer,
    "dial_result": _dial_result,
    "voicemail": _recording("voicemail"),
    "recording": _recording("recording"),
    "fallback": _fallback,
    "lookup": _lookup,
    "amd": _amd,
}
