"""OutboundAnswerer: what a call placed through Twilio gets when it is answered, on
the paths the end-to-end tests do not take (machines without a message, no
ElevenLabs, unreadable sealed secrets, register-call failing)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

import twiml
from bridge.answer.outbound import OUTBOUND_FALLBACK, OutboundAnswerer
from bridge.call import Answer
from bridge.elevenlabs.register_call import ElevenLabsClient
from bridge.outbound.sealing import Sealer
from bridge.secret import Secret
from bridge.storage.database import Database
from bridge.storage.migrate import upgrade
from bridge.storage.tables import pending_calls

SECRETS = {"dynamic_variables": {"name": "Ada", "secret__pin": "8642"}}


def elevenlabs(status: int) -> ElevenLabsClient:
    """register-call answering `status` to every request."""
    return ElevenLabsClient(
        api_key=Secret("test-key"),
        base_url="https://api.elevenlabs.test",
        transport=httpx.MockTransport(lambda request: httpx.Response(status, text="oops")),
    )


def answer(
    tmp_path: Path,
    *,
    answered_by: str = "human",
    on_machine: str = "hangup",
    machine_message: str | None = None,
    sealed_with: str = "the-key",
    client: ElevenLabsClient | None = None,
) -> tuple[Answer, list[Any]]:
    """Answer one pending call; the Answer and the pending rows left afterwards."""

    async def go() -> tuple[Answer, list[Any]]:
        url = f"sqlite:///{tmp_path / 'answer.sqlite3'}"
        await upgrade(url)
        database = Database(url)
        engine = await database.engine()
        pending_id = uuid.uuid4().hex
        async with engine.begin() as connection:
            await connection.execute(
                insert(pending_calls).values(
                    id=pending_id,
                    call_sid="CA" + uuid.uuid4().hex,
                    agent_id="agent_out",
                    from_number="+14155550100",
                    to_number="+14155550123",
                    client_data=Sealer(sealed_with).seal(SECRETS),
                    on_machine=on_machine,
                    machine_message=machine_message,
                    created_at=datetime.now(UTC),
                )
            )
        answerer = OutboundAnswerer(
            database=database, sealer=Sealer("the-key"), elevenlabs=client, deadline=2.0
        )
        result = await answerer.answer(pending_id, call_sid="CA1", answered_by=answered_by)
        async with engine.begin() as connection:
            left = list(await connection.execute(select(pending_calls)))
        await database.dispose()
        return result, left

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("answered_by", "on_machine", "message"),
    [
        ("machine_end_beep", "hangup", None),
        ("fax", "hangup", None),
        ("machine_start", "message", None),  # a message was asked for but none given
    ],
)
def test_a_machine_gets_a_hang_up(
    tmp_path: Path, answered_by: str, on_machine: str, message: str | None
) -> None:
    result, left = answer(
        tmp_path, answered_by=answered_by, on_machine=on_machine, machine_message=message
    )
    assert (result.twiml, result.action, result.outcome) == (
        twiml.hangup(),
        "machine_hangup",
        "handled",
    )
    assert result.agent_id == "agent_out"
    assert left == []  # the sealed secrets are gone once the call is answered


@pytest.mark.parametrize(
    ("change", "reason", "status", "attempts"),
    [
        pytest.param({"client": None}, "elevenlabs_not_configured", None, 0, id="no-elevenlabs"),
        pytest.param(
            {"client": elevenlabs(200), "sealed_with": "another-key"},
            "sealed_secret_unreadable",
            None,
            0,
            id="sealed-with-another-key",
        ),
        pytest.param({"client": elevenlabs(500)}, "http_500", 500, 2, id="register-call-500"),
        pytest.param({"client": elevenlabs(401)}, "http_401", 401, 1, id="register-call-401"),
    ],
)
def test_a_person_gets_the_fallback_when_the_agent_cannot_be_reached(
    tmp_path: Path, change: dict[str, Any], reason: str, status: int | None, attempts: int
) -> None:
    result, _ = answer(tmp_path, **change)
    assert (result.twiml, result.outcome, result.reason) == (OUTBOUND_FALLBACK, "fallback", reason)
    assert (result.action, result.agent_id) == ("agent", "agent_out")
    assert (result.upstream_status, result.attempts) == (status, attempts)
