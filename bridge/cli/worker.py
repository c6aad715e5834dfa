"""`callbridge worker`: run campaigns until SIGTERM or Ctrl-C (the Procfile's worker
process). Any number may run on one PostgreSQL database; they share the work, and the
pace and in-flight limits hold across all of them."""

from __future__ import annotations

import argparse
from typing import Any

from bridge.cli.errors import UsageError

# Heroku sends SIGTERM and kills 30 s later: what was claimed is placed well before.
MIN_LEASE_SECONDS = 1.0


def add_parser(commands: Any) -> None:
    worker = commands.add_parser(
        "worker",
        help="run campaigns (stop with SIGTERM or Ctrl-C)",
        description=(
            "Run server-side campaigns: claim due recipients, place their calls at the\n"
            "campaign's pace, settle the calls that ended, retry by outcome. Stops on\n"
            "SIGTERM or Ctrl-C once the calls it claimed are placed; a worker that is\n"
            "killed loses nothing (its claims are taken over when their lease expires)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    worker.add_argument(
        "--lease",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long a claim is held before another worker takes it over (default 120)",
    )
    worker.add_argument(
        "--poll",
        type=float,
        default=0.25,
        metavar="SECONDS",
        help="how often to look for due recipients and ended calls (default 0.25)",
    )
    worker.add_argument(
        "--max-placing",
        type=int,
        default=200,
        metavar="N",
        help="at most this many calls claimed at once, waiting for their slot or being "
        "placed (default 200; fewer while placements run late); other workers take the rest",
    )
    worker.set_defaults(handler=_worker)


def _worker(args: argparse.Namespace) -> int:
    import asyncio

    if args.lease < MIN_LEASE_SECONDS:
        raise UsageError(f"--lease must be at least {MIN_LEASE_SECONDS:g} s")
    if not 0.01 <= args.poll <= 60:
        raise UsageError("--poll must be from 0.01 to 60 seconds")
    if not 1 <= args.max_placing <= 10_000:
        raise UsageError("--max-placing must be from 1 to 10000")
    return asyncio.run(_run(args.lease, args.poll, args.max_placing))


async def _run(lease: float, poll: float, max_placing: int) -> int:
    import asyncio
    import signal
    from datetime import timedelta

    from bridge.campaigns.assembly import standalone_worker
    from bridge.settings import Settings

    settings = Settings.from_env()
    _log_to_stderr(settings.log_level)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    async with standalone_worker(
        settings, lease=timedelta(seconds=lease), poll=poll, max_placing=max_placing
    ) as worker:
        print(f"callbridge worker {worker.worker_id}: running campaigns", flush=True)
        await worker.run(stopping)
    print("callbridge worker: stopped", flush=True)
    return 0


def _log_to_stderr(level: str) -> None:
    # As the server does (bridge.app.configure_logging), without importing the server.
    import logging

    ours = logging.getLogger("bridge")
    ours.setLevel(level)
    if not ours.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        ours.addHandler(handler)
        ours.propagate = False
