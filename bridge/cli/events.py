"""`callbridge events [--failed]` and `callbridge events redeliver ID`: the outgoing
events' outbox, through GET /events and POST /events/{id}/redeliver."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import quote

from bridge.cli.api import URL_HELP, add_target_options
from bridge.cli.calls import EMPTY, _body, _run, _target, _when
from bridge.cli.terminal import printable

EVENTS_EPILOG = """\
where the outbox is read:
  --url URL   the running bridge's API (GET URL/events), with the bearer token from
              --token or $BRIDGE_API_TOKEN; $CALLBRIDGE_URL is the default for --url.
  no --url    this machine's database (DATABASE_URL, default ./callbridge.sqlite3),
              in this process; no token needed.

redeliver ID puts every delivery of the event back to pending, due now (an endpoint
disabled by a 410 answer is enabled again); a running bridge sends it within seconds.

exit status: 0 listed or redelivered, 1 no such event or the bridge refused, 2 usage error.

examples:
  callbridge events --failed
  callbridge events --type call.fallback --limit 5 --url https://bridge.example.com
  callbridge events redeliver evt_0123456789abcdef0123456789abcdef
"""


def add_parser(commands: Any) -> None:
    events = commands.add_parser(
        "events",
        help="list outgoing events and their deliveries (`events redeliver ID` to resend)",
        description="Outgoing events (EVENTS_WEBHOOK_URL), newest first, with their deliveries.",
        epilog=EVENTS_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    which = events.add_mutually_exclusive_group()
    which.add_argument("--failed", action="store_true", help="only events with a failed delivery")
    which.add_argument(
        "--status",
        choices=["pending", "delivered", "failed", "disabled"],
        help="only events with a delivery in this status",
    )
    events.add_argument("--type", help="only events of this type, like call.completed")
    events.add_argument("--limit", type=int, default=20, metavar="N", help="at most N (default 20)")
    events.add_argument("--cursor", metavar="CURSOR", help="go on after a previous page")
    events.add_argument("--json", action="store_true", help="print the API's JSON")
    add_target_options(events)
    events.set_defaults(handler=_list)

    sub = events.add_subparsers(title="events commands")
    redeliver = sub.add_parser(
        "redeliver",
        help="send an event again: its deliveries back to pending, now",
        description="Send an event again: every delivery back to pending, due now.",
    )
    redeliver.add_argument("event_id", metavar="ID", help="the event's id (evt_…)")
    redeliver.add_argument("--url", default=argparse.SUPPRESS, help=URL_HELP)
    redeliver.add_argument("--token", default=argparse.SUPPRESS, help="its API token")
    redeliver.set_defaults(handler=_redeliver)


def _list(args: argparse.Namespace) -> int:
    from bridge.cli.api import bridge_client

    params = {"limit": str(args.limit)}
    status = "failed" if args.failed else args.status
    if status:
        params["status"] = status
    if args.type:
        params["type"] = args.type
    if args.cursor:
        params["cursor"] = args.cursor
    url, token = _target(args)

    async def fetch() -> dict[str, Any]:
        async with bridge_client(url, token, reading=True) as client:
            return _body(await client.get("/events", params=params))

    outcome = _run(fetch())
    if isinstance(outcome, int):
        return outcome
    found: list[dict[str, Any]] = outcome["events"]
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=True))
    elif not found:
        print("no events", file=sys.stderr)
    else:
        for line in lines(found):
            print(line)
    if outcome.get("next_cursor"):
        print(f"(more events: --cursor {printable(outcome['next_cursor'])})", file=sys.stderr)
    for endpoint in (outcome.get("outbox") or {}).get("disabled_endpoints", []):
        print(
            printable(
                f"endpoint disabled (it answered 410) since {_when(endpoint['disabled_at'])}: "
                f"{endpoint['endpoint']}; `callbridge events redeliver ID` enables it again"
            ),
            file=sys.stderr,
        )
    return 0


def lines(found: list[dict[str, Any]]) -> list[str]:
    """An event a line (created, id, type, call), then a line per delivery."""
    out = []
    for event in found:
        data = (event.get("body") or {}).get("data") or {}
        call = data.get("call_sid") or data.get("call_id") or EMPTY
        out.append(
            printable(f"{_when(event.get('created_at'))}  {event['id']}  {event['type']}  {call}")
        )
        for delivery in event.get("deliveries") or []:
            last = delivery.get("last_error") or delivery.get("last_status") or EMPTY
            out.append(
                printable(
                    f"    {delivery['status']:<9} attempts {delivery['attempts']}  last {last}"
                    f"  {delivery['endpoint']}"
                )
            )
    return out


def _redeliver(args: argparse.Namespace) -> int:
    from bridge.cli.api import bridge_client

    url, token = _target(args)

    async def post() -> None:
        async with bridge_client(url, token, reading=True) as client:
            response = await client.post(f"/events/{quote(args.event_id, safe='')}/redeliver")
            if response.status_code != 202:
                _body(response)  # raises the bridge's error

    outcome = _run(post())
    if isinstance(outcome, int):
        return outcome
    print(f"{printable(args.event_id)}: pending, to be sent again now")
    return 0
