"""`callbridge calls` and `callbridge calls show SID`: the call log, through GET /calls."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from bridge.cli.api import add_target_options, bridge_client, target
from bridge.cli.errors import UsageError

PAGE_SIZE = 200  # the API's largest page
SUMMARY_CHARS = 60
EMPTY = "-"

CALLS_EPILOG = """\
exit status: 0 listed or shown, 1 no such call (show) or the bridge refused, 2 usage error.

examples:
  callbridge calls --status completed --since 2025-01-31T00:00:00Z
  callbridge calls --number +14155550123 --url https://bridge.example.com
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
        "--limit", type=_positive_int, default=20, metavar="N", help="at most N calls (default 20)"
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
    show.add_argument("--url", default=argparse.SUPPRESS, help="a running bridge")
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


def _list(args: argparse.Namespace) -> int:
    params = {
        name: getattr(args, name)
        for name in ("status", "direction", "number", "rule", "since", "until")
        if getattr(args, name) is not None
    }
    url, token = target(args)

    async def fetch() -> tuple[list[dict[str, Any]], bool]:
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        async with bridge_client(url, token) as client:
            while True:
                page_params = {**params, "limit": str(min(PAGE_SIZE, args.limit - len(found)))}
                if cursor:
                    page_params["cursor"] = cursor
                body = _body(await client.get("/calls", params=page_params))
                found.extend(body["calls"])
                cursor = body.get("next_cursor")
                if not cursor or len(found) >= args.limit:
                    return found, bool(cursor)

    outcome = _run(fetch())
    if isinstance(outcome, int):
        return outcome
    found, more = outcome
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    if not found:
        print("no calls", file=sys.stderr)
        return 0
    for line in table(found):
        print(line)
    if more:
        print(
            f"(more calls: raise --limit above {args.limit} or narrow the filters)", file=sys.stderr
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    url, token = target(args)

    async def fetch() -> dict[str, Any]:
        async with bridge_client(url, token) as client:
            return _body(await client.get(f"/calls/{quote(args.sid, safe='')}"))

    outcome = _run(fetch())
    if isinstance(outcome, int):
        return outcome
    if args.json:
        print(json.dumps(outcome, indent=2))
    else:
        for line in details(outcome):
            print(line)
    return 0


def table(found: Sequence[dict[str, Any]]) -> list[str]:
    """One line a call: created, direction, from→to, rule, status, duration, summary."""
    header = ["created (UTC)", "direction", "from→to", "rule", "status", "duration", "summary"]
    rows = [
        [
            _when(call.get("created_at")),
            call.get("direction") or EMPTY,
            f"{call.get('from') or EMPTY}→{call.get('to') or EMPTY}",
            call.get("rule") or EMPTY,
            call.get("status") or EMPTY,
            f"{call['duration']}s" if call.get("duration") is not None else EMPTY,
            _trimmed(call.get("summary")),
        ]
        for call in found
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def details(call: dict[str, Any]) -> list[str]:
    """A call's record, then its events, then its transcript as `role: message` lines."""
    lines = [f"call {call.get('call_sid') or call.get('id')}"]
    skipped = {"events", "transcript", "analysis"}
    for name, value in call.items():
        if name not in skipped and value is not None:
            lines.append(f"  {name + ':':<17}{value}")
    lines.append("events:")
    for event in call.get("events") or []:
        data = json.dumps(event.get("data") or {}, sort_keys=True)
        lines.append(f"  {_when(event.get('at'))}  {event.get('kind')}  {data}")
    if not call.get("events"):
        lines.append(f"  {EMPTY}")
    lines.append("transcript:")
    turns = [turn for turn in call.get("transcript") or [] if isinstance(turn, dict)]
    for turn in turns:
        lines.append(f"  {turn.get('role') or '?'}: {turn.get('message') or ''}")
    if not turns:
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
    try:
        return asyncio.run(work)
    except BridgeRefused as refused:
        if refused.status == 400:
            raise UsageError(refused.message) from None
        print(f"callbridge: {refused.message}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"callbridge: could not reach the bridge: {exc}", file=sys.stderr)
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
