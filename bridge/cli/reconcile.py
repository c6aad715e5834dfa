"""`callbridge reconcile`: fetch what the bridge missed (transcripts of post-call
webhooks never received, conversations it never heard of, final statuses of calls
whose status callbacks were lost) and store it, once, under the same lease as the
server's background runs (bridge.reconcile)."""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING, Any

from bridge.cli.api import require_database
from bridge.cli.errors import Failed, UsageError

if TYPE_CHECKING:
    from datetime import timedelta

    from bridge.reconcile import Outcome

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
MAX_SINCE_DAYS = 90


def add_parser(commands: Any) -> None:
    reconcile = commands.add_parser(
        "reconcile",
        help="fetch missed transcripts, conversations and final statuses from the upstreams",
        description=(
            "Fetch what the bridge missed from ElevenLabs and Twilio and store it as if it\n"
            "had arrived: transcripts whose post-call webhook never came, conversations of\n"
            "the agents in use the bridge never heard of, and final statuses of calls whose\n"
            "status callbacks were lost. Safe to run again: nothing is stored twice."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reconcile.add_argument(
        "--since",
        default="24h",
        metavar="DURATION",
        help="look at calls and conversations of the last DURATION (30m, 2h, 7d; default 24h)",
    )
    reconcile.add_argument(
        "--grace",
        type=float,
        default=None,
        metavar="SECONDS",
        help="wait this long after a call ended for its webhooks "
        "(default: $RECONCILE_GRACE_SECONDS, 300; 0: reconcile at once)",
    )
    reconcile.set_defaults(handler=_reconcile)


def parse_since(text: str) -> timedelta:
    from datetime import timedelta

    found = _DURATION.fullmatch(text.strip())
    if not found:
        raise UsageError(f"--since: {text!r} is not a duration like 30m, 2h or 7d")
    seconds = int(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    if not 0 < seconds <= MAX_SINCE_DAYS * 86_400:
        raise UsageError(f"--since must be more than 0 and at most {MAX_SINCE_DAYS}d")
    return timedelta(seconds=seconds)


def describe(outcome: Outcome) -> str:
    recovered = outcome.recovered
    lines = [
        f"recovered: {recovered['transcript']} transcript(s), "
        f"{recovered['conversation']} unknown conversation(s), "
        f"{recovered['status']} final status(es)",
        f"looked at {outcome.checked}; {outcome.not_yet} not complete yet (tried again later); "
        f"{outcome.requests} request(s) in {outcome.seconds:.1f} s",
    ]
    if outcome.faults:
        lines.append(f"{outcome.faults} upstream fault(s): the rest waits for the next run")
    if outcome.stopped:
        lines.append(f"stopped by a bound ({outcome.stopped}): run it again for the rest")
    return "\n".join(lines)


def _reconcile(args: argparse.Namespace) -> int:
    import asyncio

    from bridge.audio.opening import open_audio_store
    from bridge.reconcile.service import Service
    from bridge.recordings.fetcher import fetcher_for
    from bridge.settings import Settings
    from bridge.storage.database import Database
    from bridge.transport.factory import make_transport

    since = parse_since(args.since)
    settings = Settings.from_env()
    grace = settings.reconcile_grace if args.grace is None else args.grace
    if grace < 0:
        raise UsageError("--grace must be 0 or more")
    if not settings.elevenlabs_api_key and not settings.twilio_configured:
        raise Failed("nothing to reconcile with: set ELEVENLABS_API_KEY and/or the TWILIO_* keys")
    require_database(settings.database_url, url_option=False)

    async def run() -> Outcome | None:
        database = Database(settings.database_url)
        transport = make_transport(settings.upstream_transport, settings.upstream_max_connections)
        # Recordings whose fetch is due (after a crash, say) are retried in the run.
        recordings = fetcher_for(settings, database, transport, store=open_audio_store(settings))
        service = Service(settings, database, transport, also=[recordings.retry_due_recordings])
        try:
            return await service.run_once(since=since, grace=grace)
        finally:
            await service.aclose()
            if recordings.twilio is not None:
                await recordings.twilio.aclose()
            await transport.aclose()
            await database.dispose()

    outcome = asyncio.run(run())
    if outcome is None:
        raise Failed("another process is reconciling now (the `reconcile` lease); try later")
    print(describe(outcome))
    return 1 if outcome.faults else 0
