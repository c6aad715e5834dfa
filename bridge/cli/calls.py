"""`callbridge calls` and `callbridge calls show SID`: the call log, through GET /calls."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from bridge.calllog.timeline import duration, timeline
from bridge.cli.api import URL_HELP, add_target_options, target
from bridge.cli.errors import UsageError
from bridge.cli.terminal import printable

if TYPE_CHECKING:
    import httpx

PAGE_SIZE = 200  # the API's largest page
SUMMARY_CHARS = 60
EMPTY = "-"

CALLS_EPILOG = """\
where the call log is read:
  --url URL   GET URL/calls on a running bridge, with the bearer token from --token
              or $BRIDGE_API_TOKEN; $CALLBRIDGE_URL is the default for --url (the
              sandbox's env.sh sets it).
  no --url    this machine's database (DATABASE_URL, default ./callbridge.sqlite3),
              read in this process; no token needed. A database that does not exist
              is reported, not created.

paging: at most --limit calls (default 20); when there are more, the cursor to go on
from is printed (--cursor CURSOR, with the same filters), and --all lists every one.

exit status: 0 listed or shown, 1 no such call (show), no database, or the bridge
refused, 2 usage error.

examples:
  callbridge calls --status completed --since 2025-01-31T00:00:00Z
  callbridge calls --number +14155550123 --url https://bridge.example.com
  callbridge calls --has-voicemail true --since 2025-01-31T00:00:00Z
  callbridge calls --all --json > calls.json
  callbridge calls show CA0123456789abcdef0123456789abcdef
"""


class BridgeRefused(Exception):
    """The bridge answered with an error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def add_parser(commands: Any) -> None:
    calls = commands.add_parser(
        "calls",
        help="list recent calls from the call log (`calls show SID` for one call)",
        description="The call log, newest first: what the bridge recorded about each call.",
        epilog=CALLS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    calls.add_argument("--status", help="Twilio's call status, like completed or no-answer")
    calls.add_argument("--direction", choices=["inbound", "outbound"])
    calls.add_argument("--number", metavar="E164", help="calls from or to this number")
    calls.add_argument("--rule", help="calls answered by this routing rule")
    calls.add_argument("--since", metavar="ISO", help="created at or after (naive = UTC)")
    calls.add_argument("--until", metavar="ISO", help="created before (naive = UTC)")
    calls.add_argument(
        "--has-voicemail",
        choices=["true", "false"],
        help="only calls with a voicemail (true), or only those without one (false)",
    )
    how_many = calls.add_mutually_exclusive_group()
    how_many.add_argument(
        "--limit", type=_positive_int, default=20, metavar="N", help="at most N calls (default 20)"
    )
    how_many.add_argument(
        "--all", action="store_true", help="every call that matches, however many (paged)"
    )
    calls.add_argument(
        "--cursor",
        metavar="CURSOR",
        help="start after the calls already listed: the cursor printed when there were more",
    )
    calls.add_argument("--json", action="store_true", help="print the API's JSON")
    add_target_options(calls)
    calls.set_defaults(handler=_list)

    show_commands = calls.add_subparsers(title="calls commands")
    show = show_commands.add_parser(
        "show",
        help="one call: its record, events and transcript",
        description="One call, by Twilio call SID, the bridge's id or conversation id.",
    )
    show.add_argument("sid", help="call SID, call id or conversation id")
    show.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
    # SUPPRESS: options given before `show` are kept, not reset to the defaults.
    show.add_argument("--url", default=argparse.SUPPRESS, help=URL_HELP)
    show.add_argument("--token", default=argparse.SUPPRESS, help="its API token")
    show.set_defaults(handler=_show)


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of at least 1")
    return number


def _target(args: argparse.Namespace) -> tuple[str | None, str | None]:
    url, token = target(args)
    if url is None and token:
        raise UsageError(
            "--token is for a bridge at --url (or $CALLBRIDGE_URL); without one, the call log "
            "is read from this machine's database (DATABASE_URL), which needs no token"
        )
    return url, token


def _list(args: argparse.Namespace) -> int:
    from bridge.cli.api import bridge_client

    params = {
        name: getattr(args, name)
        for name in ("status", "direction", "number", "rule", "since", "until", "has_voicemail")
        if getattr(args, name) is not None
    }
    limit: int | None = None if args.all else args.limit
    url, token = _target(args)

    async def fetch() -> tuple[list[dict[str, Any]], str | None]:
        found: list[dict[str, Any]] = []
        cursor: str | None = args.cursor
        async with bridge_client(url, token, reading=True) as client:
            while True:
                wanted = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(found))
                page_params = {**params, "limit": str(wanted)}
                if cursor:
                    page_params["cursor"] = cursor
                body = _body(await client.get("/calls", params=page_params))
                found.extend(body["calls"])
                cursor = body.get("next_cursor")
                if not cursor or (limit is not None and len(found) >= limit):
                    return found, cursor

    outcome = _run(fetch())
    if isinstance(outcome, int):
        return outcome
    found, cursor = outcome
    if args.json:
        # ensure_ascii (the default, kept on purpose): control characters and everything
        # past ASCII are \u escapes, so the JSON is valid and inert on a terminal.
        print(json.dumps(found, indent=2, ensure_ascii=True))
    elif not found:
        where = "" if url else " in the call log of this machine's DATABASE_URL"
        print(f"no calls{where}", file=sys.stderr)
    else:
        for line in table(found):
            print(line)
    if cursor:
        print(
            f"(more calls: the next ones with --cursor {printable(cursor)}, every one with --all, "
            "or narrow the filters)",
            file=sys.stderr,
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    from bridge.cli.api import bridge_client

    url, token = _target(args)

    async def fetch() -> dict[str, Any]:
        async with bridge_client(url, token, reading=True) as client:
            return _body(await client.get(f"/calls/{quote(args.sid, safe='')}"))

    outcome = _run(fetch())
    if isinstance(outcome, int):
        return outcome
    if args.json:
        print(json.dumps(outcome, indent=2, ensure_ascii=True))  # as for the list
    else:
        for line in details(outcome, base=url):
            print(line)
    return 0


def table(found: Sequence[dict[str, Any]]) -> list[str]:
    """One line a call: created, direction, from→to, rule, status, duration, summary; what
    the callers wrote is shown with its control characters escaped."""
    header = ["created (UTC)", "direction", "from→to", "rule", "status", "duration", "summary"]
    rows = [
        [
            printable(cell)
            for cell in (
                _when(call.get("created_at")),
                call.get("direction") or EMPTY,
                f"{call.get('from') or EMPTY}→{call.get('to') or EMPTY}",
                call.get("rule") or EMPTY,
                call.get("status") or EMPTY,
                f"{call['duration']}s" if call.get("duration") is not None else EMPTY,
                _trimmed(call.get("summary")),
            )
        ]
        for call in found
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def details(call: dict[str, Any], *, base: str | None = None) -> list[str]:
    """A call's record, its events in plain words (timeline) and as stored, then its
    transcript as `role: message` lines, then its audio (links on the bridge at
    `base`); what the callers wrote is shown with its control characters escaped."""
    lines = [f"call {printable(str(call.get('call_sid') or call.get('id')))}"]
    skipped = {"events", "timeline", "transcript", "analysis", "audio"}
    for name, value in call.items():
        if name not in skipped and value is not None:
            lines.append(printable(f"  {name + ':':<17}{value}"))
    lines.append("timeline:")
    # From a bridge too old to send it, the same words are made here.
    steps = call.get("timeline") or timeline(call.get("events") or [])
    for step in steps:
        lines.append(printable(f"  {_when(step.get('at'))}  {step.get('text')}"))
    if not steps:
        lines.append(f"  {EMPTY}")
    lines.append("events:")
    for event in call.get("events") or []:
        data = json.dumps(event.get("data") or {}, sort_keys=True)
        lines.append(printable(f"  {_when(event.get('at'))}  {event.get('kind')}  {data}"))
    if not call.get("events"):
        lines.append(f"  {EMPTY}")
    lines.append("transcript:")
    turns = [turn for turn in call.get("transcript") or [] if isinstance(turn, dict)]
    for turn in turns:
        lines.append(printable(f"  {turn.get('role') or '?'}: {turn.get('message') or ''}"))
    if not turns:
        lines.append(f"  {EMPTY}")
    return lines + audio_lines(call.get("audio") or [], base)


def audio_lines(audio: Sequence[dict[str, Any]], base: str | None) -> list[str]:
    """`audio:` then one line each: kind, duration, size, and where to get it (GET with
    the API token; in process, the path on a bridge serving this database)."""
    lines = ["audio:"]
    for item in audio:
        length = duration(item.get("duration")) or EMPTY
        size = f"{item['bytes']} bytes" if isinstance(item.get("bytes"), int) else EMPTY
        where = f"{base or ''}{item.get('url') or ''}"
        lines.append(printable(f"  {item.get('kind') or '?':<10} {length:>6}  {size:<14} {where}"))
    if not audio:
        lines.append(f"  {EMPTY}")
    return lines


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or not isinstance(body, dict):
        message = body.get("error") if isinstance(body, dict) else None
        raise BridgeRefused(response.status_code, message or f"HTTP {response.status_code}")
    return body


Result = TypeVar("Result")


def _run(work: Coroutine[Any, Any, Result]) -> Result | int:
    """The result of a coroutine, or the exit status when the bridge refused it."""
    import asyncio

    import httpx

    try:
        return asyncio.run(work)
    except BridgeRefused as refused:
        if refused.status == 400:
            raise UsageError(refused.message) from None
        print(f"callbridge: {printable(refused.message)}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"callbridge: could not reach the bridge: {printable(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _when(value: str | None) -> str:
    """`2025-01-31 09:00:00` from an ISO time in UTC."""
    if not value:
        return EMPTY
    return value.replace("T", " ")[:19]


def _trimmed(text: str | None) -> str:
    if not text:
        return EMPTY
    flat = " ".join(text.split())
    return flat if len(flat) <= SUMMARY_CHARS else flat[: SUMMARY_CHARS - 1] + "…"
