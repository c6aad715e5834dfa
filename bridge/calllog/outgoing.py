"""What the outgoing events about calls carry (bridge.events sends them).

`call.completed` and `call.failed` carry the call's final record; `call.analyzed`
the same record once ElevenLabs' transcript and analysis are stored (they usually
arrive after the final status); `call.fallback`, `call.transferred` and
`call.voicemail` the call's identity with what happened. Audio links are absolute
with PUBLIC_BASE_URL (`GET /calls/{sid}/audio/{file}`, bearer token). `secret__`
values are never in them (bridge.events.outbox drops such keys at any depth).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.calllog.audio import CallAudio, links, listed
from bridge.storage.tables import calls

COMPLETED = "call.completed"
FAILED = "call.failed"
ANALYZED = "call.analyzed"
FALLBACK = "call.fallback"
TRANSFERRED = "call.transferred"
VOICEMAIL = "call.voicemail"


def final_type(status: str | None) -> str:
    return COMPLETED if status == "completed" else FAILED


async def call_row(connection: AsyncConnection, call_id: str) -> Any:
    return (await connection.execute(select(calls).where(calls.c.id == call_id))).first()


def identity(row: Any) -> dict[str, Any]:
    """Who and what a call is: enough for a receiver to find it (GET /calls/{call_sid})."""
    return {
        "call_id": row.id,
        "call_sid": row.call_sid,
        "conversation_id": row.conversation_id,
        "direction": row.direction,
        "from": row.from_number,
        "to": row.to_number,
        "rule": row.rule,
        "action": row.action,
        "agent_id": row.agent_id,
    }


async def final_record(connection: AsyncConnection, row: Any, base_url: str) -> dict[str, Any]:
    """The call's record as `call.completed`, `call.failed` and `call.analyzed` carry it."""
    analysis = row.analysis if isinstance(row.analysis, dict) else {}
    return {
        **identity(row),
        "mode": row.mode,
        "outcome": row.outcome,
        "status": row.status,
        "error": row.error,
        "answered_by": row.answered_by,
        "created_at": _iso(row.created_at),
        "answered_at": _iso(row.answered_at),
        "ended_at": _iso(row.ended_at),
        "duration": row.duration,
        "summary": row.summary,
        "call_successful": row.call_successful,
        "data_collection_results": analysis.get("data_collection_results"),
        "evaluation_criteria_results": analysis.get("evaluation_criteria_results"),
        "transcript": row.transcript,
        "audio": absolute(links(row, await listed(connection, row)), base_url),
    }


def audio_link(row: Any, audio: CallAudio, base_url: str) -> dict[str, Any]:
    return absolute(links(row, [audio]), base_url)[0]


def absolute(found: list[dict[str, Any]], base_url: str) -> list[dict[str, Any]]:
    return [{**item, "url": f"{base_url}{item['url']}"} for item in found]


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # SQLite keeps no zone
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
