"""Reconciliation of many calls against the fakes: wall time and memory.

A database (a fresh SQLite file by default, or `--database-url`) gets `--calls N`
calls whose webhooks were all lost: half have a conversation id and no transcript
(ElevenLabs has the conversation), half have a Twilio call SID and no final status
(Twilio has the call completed); ElevenLabs also has `--unknown M` conversations
the bridge never heard of. The fakes (bridge.fakes, under uvicorn) run in a child
process of their own, so their CPU and memory are not the reconciler's. Then one
reconciliation run (bridge.reconcile.service, as `callbridge reconcile --grace 0`
runs it, lease included) recovers them, and the script prints:

- wall time, requests, requests per second, what was recovered;
- memory: the peak of Python allocations during the run (tracemalloc) and the
  process's peak RSS (ru_maxrss) before and after it.

    python benchmarks/reconcile.py                       # 10,000 calls, 1,000 unknown
    python benchmarks/reconcile.py --calls 2000 --unknown 0
    python benchmarks/reconcile.py --database-url postgresql://postgres@127.0.0.1:5432/bench

`--per-second` is the run's request rate bound (default: unbounded here, 10 in the
server): with it the wall time is about requests / rate. The run's wall-time bound
is lifted (`Bounds.seconds`) so that the whole backlog is measured in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import resource
import socket
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AGENT = "agent_bench"
KEY = "bench-elevenlabs-key"
ACCOUNT = "AC" + "b" * 32
TOKEN = "bench-twilio-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_fakes(
    ports: tuple[int, int], conversations: list[str], unknown: int, calls: list[str]
) -> None:
    """The child process: both fakes, loaded, served until killed."""
    import uvicorn

    from bridge.fakes import FakeElevenLabs, FakeTwilio

    elevenlabs = FakeElevenLabs(api_key=KEY, keep_requests=False)
    start = int(time.time()) - 1800
    for conversation_id in conversations:
        elevenlabs.add_conversation(conversation_id, agent_id=AGENT, start_time_unix_secs=start)
    for _ in range(unknown):
        elevenlabs.add_conversation(
            agent_id=AGENT, call_sid="CA" + uuid.uuid4().hex, start_time_unix_secs=start
        )
    twilio = FakeTwilio(account_sid=ACCOUNT, auth_token=TOKEN)
    for sid in calls:
        twilio.add_call(sid)
        twilio.end_call(sid, "completed", duration=61)
    twilio.requests = _Forgetful()

    async def main() -> None:
        servers = [
            uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
            for app, port in ((elevenlabs.app, ports[0]), (twilio.app, ports[1]))
        ]
        await asyncio.gather(*(server.serve() for server in servers))

    asyncio.run(main())


class _Forgetful(list):  # type: ignore[type-arg]
    """The fake Twilio's request log, kept empty (memory)."""

    def append(self, item: Any) -> None:
        pass


async def seed(database_url: str, conversations: list[str], sids: list[str]) -> None:
    from sqlalchemy import insert

    from bridge.storage.database import Database
    from bridge.storage.tables import calls, leases

    database = Database(database_url)
    engine = await database.engine()
    now = datetime.now(UTC)
    transcripts = [
        {
            "id": uuid.uuid4().hex,
            "direction": "outbound",
            "mode": "elevenlabs",
            "agent_id": AGENT,
            "conversation_id": conversation_id,
            "created_at": now - timedelta(minutes=30),
            "ended_at": now - timedelta(minutes=29),
            "status_rank": 0,
            "reconcile_attempts": 0,
        }
        for conversation_id in conversations
    ]
    statuses = [
        {
            "id": uuid.uuid4().hex,
            "direction": "inbound",
            "call_sid": sid,
            "status": "in-progress",
            "created_at": now - timedelta(minutes=30),
            "status_rank": 3,
            "reconcile_attempts": 0,
        }
        for sid in sids
    ]
    async with engine.begin() as connection:
        await connection.execute(leases.delete())
        for rows in (transcripts, statuses):
            for start in range(0, len(rows), 1000):
                await connection.execute(insert(calls), rows[start : start + 1000])
    await database.dispose()


async def reconcile(database_url: str, ports: tuple[int, int], per_second: float) -> Any:
    from bridge.reconcile.run import Bounds
    from bridge.reconcile.service import Service
    from bridge.secret import Secret
    from bridge.settings import Settings
    from bridge.storage.database import Database
    from bridge.transport.factory import make_transport

    settings = Settings(
        elevenlabs_api_key=Secret(KEY),
        elevenlabs_api_base=f"http://127.0.0.1:{ports[0]}",
        elevenlabs_agent_id=AGENT,
        twilio_account_sid=ACCOUNT,
        twilio_auth_token=Secret(TOKEN),
        twilio_api_base=f"http://127.0.0.1:{ports[1]}",
        database_url=database_url,
    )
    database = Database(database_url)
    transport = make_transport("pooled", 10)
    bounds = Bounds(seconds=3600, pages=1000, per_second=per_second)
    service = Service(settings, database, transport, bounds=bounds)
    try:
        return await service.run_once(since=timedelta(hours=2), grace=0)
    finally:
        await service.aclose()
        await transport.aclose()
        await database.dispose()


def wait_for(port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"the fakes did not start on port {port}")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--unknown", type=int, default=1_000)
    parser.add_argument("--per-second", type=float, default=0, help="0: unbounded")
    parser.add_argument("--database-url", default="")
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="also trace Python allocations (peak; slows the run down several times)",
    )
    args = parser.parse_args()

    from bridge.storage import migrate

    workdir = Path(tempfile.mkdtemp(prefix="reconcile-bench-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    asyncio.run(migrate.upgrade(database_url))
    half = args.calls // 2
    conversations = [f"conv_{uuid.uuid4().hex}" for _ in range(half)]
    sids = ["CA" + uuid.uuid4().hex for _ in range(args.calls - half)]
    asyncio.run(seed(database_url, conversations, sids))

    ports = (free_port(), free_port())
    context = multiprocessing.get_context("spawn")
    fakes = context.Process(
        target=serve_fakes, args=(ports, conversations, args.unknown, sids), daemon=True
    )
    fakes.start()
    try:
        for port in ports:
            wait_for(port)
        rss_before = peak_rss_mib()
        if args.tracemalloc:
            tracemalloc.start()
        started = time.perf_counter()
        outcome = asyncio.run(reconcile(database_url, ports, args.per_second))
        wall = time.perf_counter() - started
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rss_after = peak_rss_mib()
    finally:
        fakes.kill()
        fakes.join()
    if outcome is None:
        raise SystemExit("the lease was held by another process")
    print(f"database:   {database_url.split('://')[0]}  ({args.calls} calls, "
          f"{args.unknown} unknown conversations)")  # fmt: skip
    print(f"recovered:  {dict(outcome.recovered)}; looked at {outcome.checked}, "
          f"not yet {outcome.not_yet}, faults {outcome.faults}, pages {outcome.pages}")  # fmt: skip
    print(f"wall time:  {wall:.1f} s  ({outcome.requests} requests, "
          f"{outcome.requests / wall:.0f} requests/s, "
          f"{wall / max(outcome.checked, 1) * 1000:.2f} ms per call)")  # fmt: skip
    traced = f"tracemalloc peak {traced_peak / 2**20:.1f} MiB; " if args.tracemalloc else ""
    print(f"memory:     {traced}peak RSS {rss_before:.0f} MiB before the run, "
          f"{rss_after:.0f} MiB after")  # fmt: skip
    print(f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
