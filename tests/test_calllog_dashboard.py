"""The dashboard's figures (bridge.calllog.dashboard) on SQLite and PostgreSQL: days in
the console's time zone, outcomes, fallback reasons, latency percentiles, rules,
voicemails and the calls in progress."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, insert

from bridge.calllog import dashboard as figures
from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls, dashboard_days, recordings

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 11:00 in New York (EDT since March 8)
ZONE = "America/New_York"


def call(at: datetime, outcome: str | None, status: str | None = "completed", **more: Any):
    return {
        "id": uuid.uuid4().hex,
        "call_sid": "CA" + uuid.uuid4().hex,
        "direction": more.pop("direction", "inbound"),
        "from_number": "+14155550123",
        "to_number": "+14155550100",
        "rule": more.pop("rule", "support"),
        "outcome": outcome,
        "status": status,
        "created_at": at,
        **more,
    }


def seed(url: str) -> None:
    today = NOW - timedelta(hours=1)
    rows = [
        *(call(today, "connected") for _ in range(3)),
        call(today, "fallback", rule="sales"),
        call(today, "connected", "no-answer", direction="outbound", rule=None),
        call(today, "handled", rule="closed"),
        # 22:00 on March 9 in New York: yesterday there, though March 10 in UTC.
        call(datetime(2026, 3, 10, 2, 0, tzinfo=UTC), "connected"),
        *(call(NOW - timedelta(days=3), "connected") for _ in range(2)),
        call(NOW - timedelta(days=3), "fallback"),
        *(call(NOW - timedelta(days=20), "handled", rule="closed") for _ in range(4)),
        *(call(NOW - timedelta(days=40), "connected") for _ in range(5)),  # too old
        # In progress: ringing ten minutes ago.
        call(NOW - timedelta(minutes=10), None, "ringing", ended_at=None),
    ]
    events = [
        {"call_id": rows[3]["id"], "kind": "fallback", "at": today, "data": {"reason": "timeout"}},
        {
            "call_id": rows[9]["id"],
            "kind": "fallback",
            "at": NOW - timedelta(days=3),
            "data": {"reason": "connect_error"},
        },
        *(
            {
                "call_id": rows[n]["id"],
                "kind": "inbound",
                "at": today,
                "data": {"outcome": "connected", "upstream_ms": ms},
            }
            for n, ms in ((0, 100.0), (1, 200.0), (2, 300.0), (7, 400.0))
        ),
        {
            "call_id": rows[0]["id"],
            "kind": "inbound",
            "at": NOW - timedelta(days=9),
            "data": {"upstream_ms": 9000.0},
        },  # older than 7 days
    ]
    voicemails = [
        {
            "recording_sid": "RE" + uuid.uuid4().hex,
            "call_id": rows[4]["id"],
            "kind": "voicemail",
            "status": "stored",
            "created_at": at,
        }
        for at in (today, NOW - timedelta(days=3), NOW - timedelta(days=12))
    ]

    async def write() -> None:
        database = Database(url)
        engine = await database.engine()
        async with engine.begin() as connection:
            for table in (recordings, call_events, calls, dashboard_days):
                await connection.execute(delete(table))
            await connection.execute(insert(calls), rows)
            await connection.execute(insert(call_events), events)
            await connection.execute(insert(recordings), voicemails)
        await database.dispose()

    asyncio.run(write())


def figures_of(url: str) -> figures.Dashboard:
    async def read() -> figures.Dashboard:
        database = Database(url)
        try:
            return await figures.dashboard(database, ZONE, NOW)
        finally:
            await database.dispose()

    return asyncio.run(read())


def test_the_dashboards_figures(database_url: str) -> None:
    seed(database_url)
    board = figures_of(database_url)
    assert board.days[-1] == date(2026, 3, 10) and len(board.days) == figures.DAYS
    assert board.totals(1) == {"agent": 3, "rule": 1, "fallback": 1, "missed": 1, "other": 1}
    assert board.by_day[-2]["agent"] == 1  # the call at 22:00 New York time
    assert board.totals(7) == {"agent": 6, "rule": 1, "fallback": 2, "missed": 1, "other": 1}
    assert board.totals(30) == {"agent": 6, "rule": 5, "fallback": 2, "missed": 1, "other": 1}
    assert board.fallback_reasons == [("connect_error", 1), ("timeout", 1)]
    assert board.rules[0] == ("support", 8)
    assert ("closed", 5) in board.rules and ("(none)", 1) in board.rules
    assert board.latency.count == 4
    assert board.latency.p50_ms == pytest.approx(250.0)
    assert board.latency.p95_ms == pytest.approx(385.0)
    assert (board.voicemails_today, board.voicemails_week) == (1, 2)
    assert [c["status"] for c in board.live] == ["ringing"]


def add(url: str, *rows: dict[str, Any]) -> None:
    async def write() -> None:
        database = Database(url)
        engine = await database.engine()
        async with engine.begin() as connection:
            for row in rows:
                await connection.execute(insert(calls).values(row))
        await database.dispose()

    asyncio.run(write())


def test_finished_days_come_from_the_rollup(database_url: str) -> None:
    seed(database_url)
    first = figures_of(database_url)
    again = figures_of(database_url)  # days before yesterday: from dashboard_days now
    assert again.by_day == first.by_day and again.rules == first.rules
    # A call written later into a finished day is not counted again; today's are.
    add(
        database_url,
        call(NOW - timedelta(days=20), "connected"),
        call(NOW - timedelta(hours=1), "fallback"),
    )
    later = figures_of(database_url)
    assert later.totals(30)["agent"] == first.totals(30)["agent"]
    assert later.totals(1)["fallback"] == first.totals(1)["fallback"] + 1


def test_an_empty_log() -> None:
    assert figures.percentile([], 0.5) is None
    assert figures.percentile([5.0], 0.95) == 5.0


@pytest.mark.parametrize(
    ("outcome", "status", "shown"),
    [
        ("fallback", "no-answer", "fallback"),
        ("connected", "busy", "missed"),
        ("connected", "completed", "agent"),
        ("handled", None, "rule"),
        (None, "in-progress", "other"),
    ],
)
def test_console_outcome(outcome: str | None, status: str | None, shown: str) -> None:
    assert figures.console_outcome(outcome, status) == shown


def test_day_starts_follow_daylight_saving() -> None:
    starts = figures.day_starts(ZONE, NOW, days=3)
    # March 8 2026 is the switch: 05:00 UTC before it, 04:00 UTC after.
    assert [s.hour for s in starts] == [5, 4, 4, 4]
