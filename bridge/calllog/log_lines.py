"""One structured (logfmt) log line per call, with the caller's number masked."""

from __future__ import annotations

import logging
import re

from bridge import phone
from bridge.call import Answer, Call

logger = logging.getLogger("bridge.calls")

_BARE = re.compile(r"^[A-Za-z0-9_.:+/@*-]+$")


def logfmt(fields: dict[str, object]) -> str:
    parts = []
    for key, value in fields.items():
        if value is None:
            continue
        text = f"{value:.1f}" if isinstance(value, float) else str(value)
        if not _BARE.fullmatch(text):
            # Escape newlines too: a value from an unsigned request must not forge a log line.
            escaped = text.replace("\\", "\\\\").replace('"', '\\"')
            text = '"' + escaped.replace("\n", "\\n").replace("\r", "\\r") + '"'
        parts.append(f"{key}={text}")
    return " ".join(parts)


def call_fields(call: Call, answer: Answer, *, event: str, **details: object) -> dict[str, object]:
    """The line's fields: the event, its own `details` (one key each), then the call's."""
    return {
        "event": event,
        **details,
        "call_sid": call.call_sid or "-",
        "caller": phone.mask(call.from_number),
        "called": call.to_number or "-",
        "rule": answer.rule,
        "action": answer.action,
        "agent": answer.agent_id,
        "upstream_status": answer.upstream_status,
        "upstream_ms": (
            answer.upstream_latency * 1000 if answer.upstream_latency is not None else None
        ),
        "attempts": answer.attempts or None,
        "outcome": answer.outcome,
        "reason": answer.reason,
        "conversation_id": answer.conversation_id,
        "lookup": answer.lookup.result if answer.lookup else None,
        "lookup_ms": answer.lookup.latency * 1000 if answer.lookup else None,
    }


def log_answer(
    call: Call, answer: Answer, /, *, event: str = "inbound_call", **details: object
) -> None:
    """Log one line for `answer`; `details` (like `dial_status="busy"`) are keys of their own."""
    level = logging.WARNING if answer.outcome == "fallback" else logging.INFO
    if logger.isEnabledFor(level):
        logger.log(level, logfmt(call_fields(call, answer, event=event, **details)))
