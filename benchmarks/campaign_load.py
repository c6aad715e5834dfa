"""A large server-side campaign against the fakes: how fast `callbridge worker`
processes claim and place recipients on PostgreSQL, and whether a worker's memory
stays flat over the run.

    python benchmarks/campaign_load.py             # 20,000 recipients, 1 then 3 workers
    python benchmarks/campaign_load.py --recipients 100000 --workers 1 3
    python benchmarks/campaign_load.py --database-url postgresql://postgres@127.0.0.1:5432/x

Each run gets a fresh database (`--database-url`'s name, dropped and created again), the
recipients split into campaigns of at most 1,000 (a campaign's `rate` is capped at 100
calls per second; many campaigns lift that limit), open at every hour, with the rate at
its maximum and `max_in_flight` at 10,000. The fake Twilio (bridge.fakes.FakeTwilio
under uvicorn) runs in a process of its own; this script ends every call a moment after
it was placed (one UPDATE of the call log every half second, as status callbacks would),
samples the database once a second (recipients claimed: an attempt row; placed: a call
SID), and the first worker's RSS from /proc. Figures: recipients placed per second over
the whole run and over its middle (10 % to 90 % placed), and the RSS at start, middle,
end and its maximum.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.campaigns.options import CampaignOptions  # noqa: E402
from bridge.campaigns.store import NewRecipient, create_campaign  # noqa: E402
from bridge.storage.database import Database, create_engine  # noqa: E402
from bridge.storage.tables import calls, campaign_attempts, campaigns  # noqa: E402

ACCOUNT_SID = "AC" + "b" * 32
AUTH_TOKEN = "bench-twilio-auth-token"
PER_CAMPAIGN = 1000
OPTIONS = {
    "calling_hours": {
        "open": "00:00",
        "close": "23:59",
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    },
    "allow_outside_legal_hours": True,
    "timezone": "UTC",
    "rate": 100,
    "max_in_flight": 10_000,
    "retry": {"on": []},
}
FAKE = (
    "import sys, uvicorn; from bridge.fakes import FakeTwilio; "
    "uvicorn.run(FakeTwilio(account_sid=sys.argv[1], auth_token=sys.argv[2]).app, "
    "host='127.0.0.1', port=int(sys.argv[3]), log_level='warning')"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def fresh_database(url: str) -> None:
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres").render_as_string(hide_password=False))
    async with admin.connect() as connection:
        connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        await connection.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    await admin.dispose()


async def add_campaigns(url: str, recipients: int) -> None:
    database = Database(url)
    engine = await database.engine()
    options = CampaignOptions.model_validate(OPTIONS)
    for start in range(0, recipients, PER_CAMPAIGN):
        count = min(PER_CAMPAIGN, recipients - start)
        async with engine.begin() as connection:
            await create_campaign(
                connection,
                name=f"bench {start // PER_CAMPAIGN}",
                agent_id="agent_bench",
                options=options,
                recipients=[
                    NewRecipient(line=n + 2, phone=number(start + n), time_zones=("UTC",))
                    for n in range(count)
                ],
                now=datetime.now(UTC),
            )
    await database.dispose()


def number(index: int) -> str:
    """A valid New York number for each index (exchanges 200 to 999)."""
    return f"+1212{200 + index // 10_000:03d}{index % 10_000:04d}"


def rss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


async def measure(url: str, recipients: int, first_pid: int, timeout: float) -> dict[str, Any]:
    """Sample until every campaign finished (or `timeout`); end placed calls meanwhile."""
    database = Database(url)
    engine = await database.engine()
    samples: list[tuple[float, int, int, int]] = []  # (t, claimed, placed, rss KiB)
    started = time.monotonic()
    next_sample = started
    while True:
        async with engine.begin() as connection:
            # The calls end: what Twilio's final status callbacks would store.
            await connection.execute(
                update(calls)
                .where(calls.c.status_rank < 4)
                .values(status="completed", status_rank=4)
            )
        now = time.monotonic()
        if now >= next_sample:
            async with engine.connect() as connection:
                claimed = await connection.scalar(
                    select(func.count()).select_from(campaign_attempts)
                )
                placed = await connection.scalar(
                    select(func.count())
                    .select_from(campaign_attempts)
                    .where(campaign_attempts.c.call_sid.is_not(None))
                )
                active = await connection.scalar(
                    select(func.count())
                    .select_from(campaigns)
                    .where(campaigns.c.state != "finished")
                )
            samples.append((now - started, int(claimed or 0), int(placed or 0), rss_kib(first_pid)))
            next_sample += 1.0
            if not active or now - started > timeout:
                break
        await asyncio.sleep(0.5)
    await database.dispose()
    return summary(samples, recipients)


def summary(samples: list[tuple[float, int, int, int]], recipients: int) -> dict[str, Any]:
    end_t, claimed, placed, _ = samples[-1]
    low = next((s for s in samples if s[2] >= 0.1 * recipients), samples[0])
    high = next((s for s in samples if s[2] >= 0.9 * recipients), samples[-1])
    middle = (high[2] - low[2]) / (high[0] - low[0]) if high[0] > low[0] else 0.0
    most = next((s for s in samples if s[2] >= 0.99 * recipients), samples[-1])
    first_claim = next((s[0] for s in samples if s[1] > 0), 0.0)
    rss = [s[3] for s in samples if s[3]]
    return {
        "recipients": recipients,
        "claimed": claimed,
        "placed": placed,
        "seconds": round(end_t - first_claim, 1),
        "placed_per_second": round(placed / max(end_t - first_claim, 1e-9), 1),
        "placed_per_second_10_to_90": round(middle, 1),
        "seconds_to_99_percent": round(most[0] - first_claim, 1),
        "rss_mib": {
            "start": round(rss[0] / 1024, 1) if rss else None,
            "middle": round(rss[len(rss) // 2] / 1024, 1) if rss else None,
            "end": round(rss[-1] / 1024, 1) if rss else None,
            "max": round(max(rss) / 1024, 1) if rss else None,
        },
    }


def run(url: str, recipients: int, workers: int, timeout: float) -> dict[str, Any]:
    asyncio.run(fresh_database(url))
    env = {key: value for key, value in os.environ.items() if not key.endswith("_PROXY")}
    port = free_port()
    env.update(
        DATABASE_URL=url,
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_PHONE_NUMBER="+14155550100",
        TWILIO_API_BASE=f"http://127.0.0.1:{port}",
        PUBLIC_BASE_URL="https://bridge.example.com",
        ELEVENLABS_API_KEY="bench-key",
        ELEVENLABS_AGENT_ID="agent_bench",
        BRIDGE_API_TOKEN="bench-api-token-0123456789abcdef",
        LOG_LEVEL="WARNING",
    )
    env.pop("EVENTS_WEBHOOK_URL", None)
    subprocess.run(
        [sys.executable, "-m", "bridge", "db", "upgrade"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    fake = subprocess.Popen(
        [sys.executable, "-c", FAKE, ACCOUNT_SID, AUTH_TOKEN, str(port)], cwd=ROOT, env=env
    )
    processes: list[subprocess.Popen[bytes]] = []
    try:
        asyncio.run(add_campaigns(url, recipients))
        for _ in range(workers):
            processes.append(
                subprocess.Popen(
                    # A short lease: a call whose placement is unknown is settled soon.
                    [sys.executable, "-m", "bridge", "worker", "--lease", "10"],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                )
            )
        result = asyncio.run(measure(url, recipients, processes[0].pid, timeout))
        result["workers"] = workers
        return result
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            process.wait(timeout=60)
        fake.terminate()
        fake.wait(timeout=10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 3])
    parser.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/callbridge_campaign_bench",
    )
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    for workers in args.workers:
        result = run(args.database_url, args.recipients, workers, args.timeout)
        if args.json:
            print(json.dumps(result))
        else:
            rss = result["rss_mib"]
            print(
                f"{workers} worker(s), {result['recipients']} recipients: "
                f"{result['placed']} placed in {result['seconds']} s = "
                f"{result['placed_per_second']}/s (middle 80 %: "
                f"{result['placed_per_second_10_to_90']}/s; 99 % placed after "
                f"{result['seconds_to_99_percent']} s); first worker RSS MiB "
                f"start {rss['start']} middle {rss['middle']} end {rss['end']} max {rss['max']}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
