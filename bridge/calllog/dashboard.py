"""The console's dashboard figures, from the call log: calls per day by outcome over
30 days (so today, 7 and 30 days), fallbacks by reason, register-call latency over the
last 24 hours, calls by rule, voicemails, and the calls in progress.

Read-only: four indexed queries (migration 0008), run side by side on connections of
their own. Calls are counted by day, outcome and rule in one pass; the day is the date
in the console's time zone (PostgreSQL's `timezone()`; on SQLite a CASE over the day
boundaries computed here), so days follow the zone's daylight saving changes.
Percentiles are computed by PostgreSQL when it is the database, else from the values.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from bridge.storage.database import Database
from bridge.storage.tables import call_events, calls, recordings
from bridge.storage.tables import dashboard_days as rollup

DAYS = 30
LATENCY_HOURS = 24
# Today and yesterday are always counted from the calls (late status callbacks still
# change them); older days come from the rollup once counted.
LIVE_DAYS = 2
VOICEMAIL_DAYS = 7
TOP = 10
LIVE_HOURS = 4
LIVE_LIMIT = 50
# Outcomes as the console names them, in the order it shows them.
OUTCOMES = ("agent", "rule", "fallback", "missed", "other")
OUTCOME_LABELS = {
    "agent": "Agent",
    "rule": "Handled by a rule",
    "fallback": "Fallback",
    "missed": "Missed",
    "other": "Other (in progress, unknown)",
}
MISSED_STATUSES = ("no-answer", "busy", "failed", "canceled")
LIVE_STATUSES = ("queued", "initiated", "ringing", "in-progress")
ANSWER_KINDS = ("inbound", "outbound_answer", "dial_complete")


def outcome_of(column_outcome: Any = None, column_status: Any = None) -> ColumnElement[str]:
    """The console's outcome of a call as SQL: fallback first (the health signal), then
    missed (Twilio's no-answer, busy, failed, canceled), agent, rule, other."""
    outcome = calls.c.outcome if column_outcome is None else column_outcome
    status = calls.c.status if column_status is None else column_status
    return case(
        (outcome == "fallback", "fallback"),
        (status.in_(MISSED_STATUSES), "missed"),
        (outcome == "connected", "agent"),
        (outcome == "handled", "rule"),
        else_="other",
    )


def console_outcome(outcome: str | None, status: str | None) -> str:
    """`outcome_of` for one call, in Python."""
    if outcome == "fallback":
        return "fallback"
    if status in MISSED_STATUSES:
        return "missed"
    return {"connected": "agent", "handled": "rule"}.get(outcome or "", "other")


def outcome_filter(name: str) -> ColumnElement[bool]:
    """The calls whose console outcome is `name` (one of OUTCOMES)."""
    return outcome_of() == name


@dataclass(frozen=True)
class Latency:
    count: int
    p50_ms: float | None
    p95_ms: float | None


@dataclass(frozen=True)
class Dashboard:
    zone: str
    days: list[date]  # oldest first; the last is today in `zone`
    by_day: list[dict[str, int]]  # one per day: outcome -> calls
    fallback_reasons: list[tuple[str, int]]  # over DAYS, most first
    latency: Latency  # over the last LATENCY_HOURS
    rules: list[tuple[str, int]]  # over DAYS, most first, TOP of them
    voicemails_today: int
    voicemails_week: int
    live: list[dict[str, Any]] = field(default_factory=list)

    def totals(self, days: int) -> dict[str, int]:
        """Outcome -> calls over the last `days` days (1: today)."""
        totals = dict.fromkeys(OUTCOMES, 0)
        for counts in self.by_day[-days:]:
            for name, count in counts.items():
                totals[name] += count
        return totals


def day_starts(zone: str, now: datetime, days: int = DAYS) -> list[datetime]:
    """The UTC starts of the last `days` days in `zone`, oldest first, then the start
    of tomorrow (so `days + 1` instants)."""
    tz = ZoneInfo(zone)
    today = now.astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    return [
        datetime.combine(first + timedelta(days=n), time(), tz).astimezone(UTC)
        for n in range(days + 1)
    ]


def _utc(value: datetime) -> datetime:
    """Aware and in UTC (naive means UTC): what both databases compare correctly."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def dashboard(database: Database, zone: str, now: datetime | None = None) -> Dashboard:
    now = _utc(datetime.now(UTC) if now is None else now)
    starts = day_starts(zone, now)
    since = starts[0]
    first = now.astimezone(ZoneInfo(zone)).date() - timedelta(days=DAYS - 1)
    engine = await database.engine()
    postgres = engine.dialect.name == "postgresql"

    async def count_days(connection: Any, low: int, high: int) -> list[tuple[int, str, str, int]]:
        """(day number, outcome, rule, calls) for days low..high-1, from the calls
        (one pass over ix_calls_dashboard)."""
        if postgres:  # the day in the zone, as a date (DST-correct, and fast)
            day: ColumnElement[Any] = func.date(func.timezone(zone, calls.c.created_at))
        else:  # a CASE over the day boundaries: the day's number
            newest_first = reversed(list(enumerate(starts[:-1])))
            day = case(
                *((calls.c.created_at >= start, index) for index, start in newest_first),
                else_=-1,
            )
        # Grouped outside: PostgreSQL would not see two renderings of an expression,
        # each with its own parameters, as the same expression.
        each = (
            select(day.label("day"), outcome_of().label("outcome"), calls.c.rule)
            .where(calls.c.created_at >= starts[low], calls.c.created_at < starts[high])
            .subquery()
        )
        query = select(each.c.day, each.c.outcome, each.c.rule, func.count().label("n")).group_by(
            each.c.day, each.c.outcome, each.c.rule
        )
        found = []
        for row in await connection.execute(query):
            index = (row.day - first).days if isinstance(row.day, date) else int(row.day)
            if low <= index < high:
                found.append((index, str(row.outcome), row.rule or "", int(row.n)))
        return found

    async def per_day_and_rule() -> tuple[list[dict[str, int]], list[tuple[str, int]]]:
        """Calls by day, outcome and rule: days before yesterday from the rollup
        (`dashboard_days`, filled on first use), yesterday and today from the calls."""
        frozen = DAYS - LIVE_DAYS
        counted: list[tuple[int, str, str, int]] = []
        async with engine.connect() as connection:
            kept = await connection.execute(
                select(rollup).where(
                    rollup.c.zone == zone,
                    rollup.c.day >= first,
                    rollup.c.day < first + timedelta(days=frozen),
                )
            )
            done: set[int] = set()
            for row in kept:
                index = (row.day - first).days
                done.add(index)
                if row.outcome:  # "" marks a day counted
                    counted.append((index, row.outcome, row.rule, row.calls))
            missing = [index for index in range(frozen) if index not in done]
            fresh = await count_days(connection, missing[0], frozen) if missing else []
            counted += [item for item in fresh if item[0] in missing]
            counted += await count_days(connection, frozen, DAYS)
        if missing:
            await _keep(engine, zone, first, missing, fresh)
        by_day: list[dict[str, int]] = [dict.fromkeys(OUTCOMES, 0) for _ in range(DAYS)]
        by_rule: dict[str, int] = {}
        for index, outcome, rule, n in counted:
            by_day[index][outcome] += n
            by_rule[rule or "(none)"] = by_rule.get(rule or "(none)", 0) + n
        rules = sorted(by_rule.items(), key=lambda item: (-item[1], item[0]))[:TOP]
        return by_day, rules

    async def reasons() -> list[tuple[str, int]]:
        fallbacks = (
            select(call_events.c.data["reason"].as_string().label("reason"))
            .where(call_events.c.kind == "fallback", call_events.c.at >= since)
            .subquery()
        )
        query = (
            select(fallbacks.c.reason, func.count().label("n"))
            .group_by(fallbacks.c.reason)
            .order_by(func.count().desc(), fallbacks.c.reason)
        )
        async with engine.connect() as connection:
            return [
                (row.reason or "unknown", int(row.n)) for row in await connection.execute(query)
            ]

    async def voicemails_and_live() -> tuple[int, int, list[dict[str, Any]]]:
        week_start = starts[-1 - VOICEMAIL_DAYS]
        query = select(
            func.count(),
            func.count(case((recordings.c.created_at >= starts[-2], 1))),
        ).where(recordings.c.kind == "voicemail", recordings.c.created_at >= week_start)
        async with engine.connect() as connection:
            week, today = (await connection.execute(query)).one()
            live = await _live(connection, now)
        return int(today), int(week), live

    async def latency() -> Latency:
        async with engine.connect() as connection:
            return await _latency(connection, now - timedelta(hours=LATENCY_HOURS))

    # Side by side, each on a connection of its own.
    (by_day, rules), fallback_reasons, (today, week, live), register = await asyncio.gather(
        per_day_and_rule(), reasons(), voicemails_and_live(), latency()
    )
    return Dashboard(
        zone=zone,
        days=[first + timedelta(days=n) for n in range(DAYS)],
        by_day=by_day,
        fallback_reasons=fallback_reasons,
        latency=register,
        rules=rules,
        voicemails_today=today,
        voicemails_week=week,
        live=live,
    )


async def _keep(
    engine: Any,
    zone: str,
    first: date,
    days: list[int],
    counted: list[tuple[int, str, str, int]],
) -> None:
    """Keep the counts of finished days (and a marker for each, so a day without
    calls is not counted again). Another dashboard may have kept them meanwhile."""
    rows = [
        {"zone": zone, "day": first + timedelta(days=index), "outcome": "", "rule": "", "calls": 0}
        for index in days
    ]
    rows += [
        {
            "zone": zone,
            "day": first + timedelta(days=index),
            "outcome": outcome,
            "rule": rule,
            "calls": n,
        }
        for index, outcome, rule, n in counted
        if index in days
    ]
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(rollup), rows)
    except IntegrityError:
        pass


async def _latency(connection: Any, since: datetime) -> Latency:
    """register-call's latency (`upstream_ms` of answer events) since `since`."""
    ms = call_events.c.data["upstream_ms"].as_float()
    where = and_(
        call_events.c.kind.in_(ANSWER_KINDS),
        call_events.c.at >= since,
        ms.is_not(None),
    )
    if connection.dialect.name == "postgresql":
        row = (
            await connection.execute(
                select(
                    func.count(),
                    func.percentile_cont(0.5).within_group(ms),
                    func.percentile_cont(0.95).within_group(ms),
                ).where(where)
            )
        ).one()
        return Latency(int(row[0]), _float(row[1]), _float(row[2]))
    values = sorted(v for (v,) in await connection.execute(select(ms).where(where)))
    return Latency(len(values), percentile(values, 0.5), percentile(values, 0.95))


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks (PostgreSQL's percentile_cont)."""
    if not values:
        return None
    position = (len(values) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return float(values[low] + (values[high] - values[low]) * (position - low))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


async def live_calls(database: Database, now: datetime | None = None) -> list[dict[str, Any]]:
    """The calls in progress (the dashboard's live table)."""
    engine = await database.engine()
    async with engine.connect() as connection:
        return await _live(connection, _utc(now or datetime.now(UTC)))


async def _live(connection: Any, now: datetime) -> list[dict[str, Any]]:
    """Calls of the last LIVE_HOURS hours not ended yet, newest first."""
    query = (
        select(
            calls.c.id,
            calls.c.call_sid,
            calls.c.direction,
            calls.c.from_number,
            calls.c.to_number,
            calls.c.rule,
            calls.c.status,
            calls.c.outcome,
            calls.c.created_at,
        )
        .where(
            calls.c.created_at >= now - timedelta(hours=LIVE_HOURS),
            calls.c.ended_at.is_(None),
            or_(calls.c.status.in_(LIVE_STATUSES), calls.c.status.is_(None)),
        )
        .order_by(calls.c.created_at.desc())
        .limit(LIVE_LIMIT)
    )
    return [
        {
            "id": row.id,
            "call_sid": row.call_sid,
            "direction": row.direction,
            "from": row.from_number,
            "to": row.to_number,
            "rule": row.rule,
            "status": row.status or "in progress",
            "outcome": row.outcome,
            "created_at": (
                row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
            ),
        }
        for row in await connection.execute(query)
    ]
