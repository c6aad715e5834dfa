"""The progress bar of a followed campaign: the line, on a terminal and elsewhere, and
when following stops."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Mapping
from typing import Any

import pytest

from bridge.cli.campaign_follow import Bar, bar, finished, follow, outcome_line, status_line


def campaign(state: str = "active", eta: str | None = None, **counts: int) -> dict[str, Any]:
    return {
        "state": state,
        "recipient_count": sum(counts.values()),
        "counts": counts,
        "eta": eta,
    }


@pytest.mark.parametrize(
    ("done", "total", "drawn"),
    [
        (0, 10, "[" + "-" * 24 + "]"),
        (5, 10, "[" + "#" * 12 + "-" * 12 + "]"),
        (0, 0, "[" + "#" * 24 + "]"),
    ],
)
def test_bar(done: int, total: int, drawn: str) -> None:
    assert bar(done, total) == drawn


def test_status_and_outcome_lines() -> None:
    shown = campaign(eta="2026-03-02T17:05:00Z", completed=2, busy=1, in_progress=1, pending=4)
    assert status_line(shown) == (
        "[#########---------------]  37% 3/8 final, 1 in progress, 4 waiting; "
        "ETA 2026-03-02T17:05:00Z; active"
    )
    assert outcome_line(shown) == "completed 2, busy 1"
    assert outcome_line(campaign()) == "no recipient"
    assert status_line(campaign(state="act\x1b[2Jive")).endswith("act\\x1b[2Jive")


@pytest.mark.parametrize(
    ("shown", "done"),
    [
        (campaign("finished", completed=1), True),
        # Every recipient final, not yet marked finished by a worker: one more poll.
        (campaign(completed=1), False),
        (campaign(completed=1, scheduled=1), False),
        (campaign(completed=1, dialing=1), False),
        (campaign("paused", completed=1), False),
        (campaign("cancelled", cancelled=3), True),
        (campaign("cancelled", cancelled=2, in_progress=1), False),
    ],
)
def test_finished(shown: dict[str, Any], done: bool) -> None:
    assert finished(shown) is done


def test_on_a_terminal_rich_draws_the_bar_in_place() -> None:
    stream = io.StringIO()
    progress = Bar(stream, tty=True)
    progress.show(campaign(pending=2))
    progress.show(campaign(completed=1, pending=1))
    progress.close()
    progress.close()  # once only
    text = stream.getvalue()
    # rich rewrites the line in place (cursor controls), ending on the last figures.
    assert "\x1b[" in text and text.replace("\x1b[?25h", "").endswith("\n")
    last = text.rsplit("\r", 1)[-1]
    assert "1/2" in last and "1 waiting; active" in last


def test_elsewhere_a_line_every_few_seconds_and_the_last() -> None:
    stream = io.StringIO()
    now = [0.0]
    progress = Bar(stream, tty=False, clock=lambda: now[0], every=10)
    progress.show(campaign(pending=2))
    now[0] = 5
    progress.show(campaign(completed=1, pending=1))  # too soon
    now[0] = 6
    progress.show(campaign(completed=2), last=True)
    lines = stream.getvalue().splitlines()
    assert [line.split("]")[1].split(",")[0] for line in lines] == [
        "   0% 0/2 final",
        " 100% 2/2 final",
    ]


def test_follow_polls_until_finished() -> None:
    states = [
        campaign(pending=2),
        campaign(pending=1, completed=1),
        campaign(completed=2),
        campaign("finished", completed=2),
    ]
    slept: list[float] = []

    async def fetch() -> Mapping[str, Any]:
        return states.pop(0)

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    stream = io.StringIO()
    last = asyncio.run(follow(fetch, Bar(stream, tty=False, every=0), interval=0.5, sleep=sleep))
    assert last["counts"] == {"completed": 2} and last["state"] == "finished"
    assert slept == [0.5, 0.5, 0.5]
    assert len(stream.getvalue().splitlines()) == 4
