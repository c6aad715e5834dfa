"""The console's dashboard on a PostgreSQL call log of 1,000,000 calls: seed it with
INSERT ... SELECT generate_series, then time `bridge.calllog.dashboard.dashboard` (the
figures the page shows) and the calls list's first pages.

    python benchmarks/dashboard.py [--calls 1000000] [--days 90] [--runs 5]
        [--server postgresql://postgres@127.0.0.1:5432] [--keep]

A database of its own (callbridge_bench_dashboard), migrated, seeded, dropped at the
end unless --keep. Calls are spread evenly over `--days` days ending now; outcomes
85 % agent, 7 % rule, 3 % fallback, 5 % missed; every call has an answer event with
a register-call latency, every fallback a fallback event, 2 % a voicemail.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from bridge.calllog.dashboard import dashboard
from bridge.calllog.queries import CallFilter, list_calls
from bridge.storage.database import Database
from bridge.storage.migrate import upgrade

NAME = "callbridge_bench_dashboard"

SEED = [
    """
    INSERT INTO calls (id, call_sid, direction, from_number, to_number, rule, action,
                       outcome, status, status_rank, created_at, ended_at, duration,
                       reconcile_attempts)
    SELECT md5(n::text), 'CA' || md5(n::text),
           CASE WHEN n % 10 = 0 THEN 'outbound' ELSE 'inbound' END,
           '+1415555' || lpad((n % 10000)::text, 4, '0'), '+14155550100',
           (ARRAY['support','sales','after-hours','vip','spanish'])[1 + n % 5],
           CASE WHEN n % 100 < 92 THEN 'agent' ELSE 'say' END,
           CASE WHEN n % 100 < 85 THEN 'connected' WHEN n % 100 < 92 THEN 'handled'
                WHEN n % 100 < 95 THEN 'fallback' ELSE 'connected' END,
           CASE WHEN n % 100 >= 95 THEN 'no-answer' ELSE 'completed' END, 5,
           now() - (n * (:seconds / :calls)) * interval '1 second',
           now() - (n * (:seconds / :calls)) * interval '1 second' + interval '90 seconds',
           90, 0
    FROM generate_series(1, :calls) AS n
    """,
    """
    INSERT INTO call_events (call_id, kind, at, data)
    SELECT md5(n::text), 'inbound', now() - (n * (:seconds / :calls)) * interval '1 second',
           json_build_object('outcome', 'connected', 'upstream_ms', 80 + (n::bigint * 7919) % 400)
    FROM generate_series(1, :calls) AS n
    """,
    """
    INSERT INTO call_events (call_id, kind, at, data)
    SELECT md5(n::text), 'fallback', now() - (n * (:seconds / :calls)) * interval '1 second',
           json_build_object('reason', (ARRAY['timeout','connect_error','bad_twiml'])[1 + n % 3])
    FROM generate_series(1, :calls) AS n WHERE n % 100 BETWEEN 92 AND 94
    """,
    """
    INSERT INTO recordings (recording_sid, call_id, call_sid, kind, status, attempts, created_at)
    SELECT 'RE' || md5(n::text), md5(n::text), 'CA' || md5(n::text), 'voicemail', 'stored', 1,
           now() - (n * (:seconds / :calls)) * interval '1 second'
    FROM generate_series(1, :calls) AS n WHERE n % 50 = 0
    """,
]


async def admin(server: str, *statements: str) -> None:
    engine = create_async_engine(f"{server.replace('postgresql://', 'postgresql+asyncpg://')}/test")
    async with engine.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        for statement in statements:
            await connection.execute(text(statement))
    await engine.dispose()


async def timed(label: str, runs: int, work) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    print(
        f"{label:<34} median {median * 1000:7.1f} ms  (min {min(times) * 1000:.1f}, "
        f"max {max(times) * 1000:.1f}, {runs} runs)"
    )
    return median


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--server", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="time a kept database again")
    args = parser.parse_args()
    url = f"{args.server}/{NAME}"
    if not args.reuse:
        await admin(
            args.server, f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)", f"CREATE DATABASE {NAME}"
        )
    await upgrade(url)
    database = Database(url)
    try:
        engine = await database.engine()
        started = time.perf_counter()
        if args.reuse:
            async with engine.begin() as connection:
                await connection.execute(text("DELETE FROM dashboard_days"))
        else:
            async with engine.begin() as connection:
                for statement in SEED:
                    await connection.execute(
                        text(statement), {"calls": args.calls, "seconds": args.days * 86400.0}
                    )
        async with engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.execute(text("VACUUM ANALYZE"))
            counts = (
                await connection.execute(
                    text(
                        "SELECT (SELECT count(*) FROM calls), (SELECT count(*) FROM call_events), "
                        "(SELECT count(*) FROM recordings)"
                    )
                )
            ).one()
        print(
            f"seeded {counts[0]:,} calls, {counts[1]:,} events, {counts[2]:,} voicemails "
            f"over {args.days} days in {time.perf_counter() - started:.1f} s"
        )
        started = time.perf_counter()
        board = await dashboard(database, "UTC")
        first = (time.perf_counter() - started) * 1000
        print(f"dashboard, first load (fills the rollup): {first:.1f} ms")
        print(
            f"30 days: {sum(board.totals(30).values()):,} calls {board.totals(30)}; "
            f"p50 {board.latency.p50_ms} ms, p95 {board.latency.p95_ms} ms over "
            f"{board.latency.count:,} answers; {len(board.fallback_reasons)} reasons"
        )
        await timed("dashboard (all figures)", args.runs, lambda: dashboard(database, "UTC"))
        await timed(
            "dashboard (Europe/Paris)", args.runs, lambda: dashboard(database, "Europe/Paris")
        )
        await timed("calls list, first page", args.runs, lambda: list_calls(database, CallFilter()))
        await timed(
            "calls list, outcome=fallback",
            args.runs,
            lambda: list_calls(database, CallFilter(outcome="fallback")),
        )
        await timed(
            "calls list, number contains 5512",
            args.runs,
            lambda: list_calls(database, CallFilter(number_contains="5512")),
        )
        await timed(
            "calls list, rule=vip",
            args.runs,
            lambda: list_calls(database, CallFilter(rule="vip")),
        )
        started_at = datetime.now(UTC)
        print(f"measured at {started_at.isoformat(timespec='seconds')}")
    finally:
        await database.dispose()
        if not args.keep:
            await admin(args.server, f"DROP DATABASE IF EXISTS {NAME} WITH (FORCE)")


if __name__ == "__main__":
    asyncio.run(main())
