"""OutboundAnswerer.answer_in_time: a callee always hears something within Twilio's 15 s."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bridge.answer import outbound
from bridge.answer.outbound import OUTBOUND_FALLBACK, OutboundAnswerer
from bridge.call import Answer
from bridge.storage.database import Database


@pytest.mark.anyio
@pytest.mark.parametrize(("trouble", "reason"), [("slow", "deadline"), ("bug", "internal_error")])
async def test_a_slow_or_broken_answer_is_the_fallback(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    trouble: str,
    reason: str,
) -> None:
    answerer = OutboundAnswerer(
        database=Database(f"sqlite:///{tmp_path / 'x.sqlite3'}"),
        sealer=None,
        elevenlabs=None,
        deadline=0.01,
    )

    async def answer(
        pending_id: str, *, call_sid: str, answered_by: str, lookup: bool | None = None
    ) -> Answer:
        if trouble == "bug":
            raise RuntimeError("boom")
        await asyncio.sleep(5)
        raise AssertionError("not reached")

    monkeypatch.setattr(outbound, "ANSWER_SLACK", 0.0)
    monkeypatch.setattr(answerer, "answer", answer)
    got = await answerer.answer_in_time("p1", call_sid="CA1", answered_by="human")
    assert (got.twiml, got.outcome, got.reason) == (OUTBOUND_FALLBACK, "fallback", reason)
    assert f"event=outbound_answer_{'deadline' if trouble == 'slow' else 'failed'}" in caplog.text
