"""`callbridge dnc add|remove|import|list`: the do-not-call list, through the /dnc API
of a running bridge (--url) or of one built in this process on the local database."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from bridge.cli.api import URL_HELP
from bridge.cli.calls import BridgeRefused, _run, _target
from bridge.cli.errors import Failed
from bridge.cli.terminal import printable

if TYPE_CHECKING:
    import httpx

PAGE_SIZE = 500  # the API's largest page
# At most this many problems of an import are printed; the count says the rest.
SHOWN_PROBLEMS = 20

DNC_EPILOG = """\
where the list is kept:
  --url URL   the running bridge's API (URL/dnc), with the bearer token from --token
              or $BRIDGE_API_TOKEN; $CALLBRIDGE_URL is the default for --url.
  no --url    this machine's database (DATABASE_URL, default ./callbridge.sqlite3),
              in this process; no token needed.

Adding a number also cancels its campaign calls still waiting (pending or scheduled);
POST /calls, `callbridge call` and every campaign refuse a listed number.

import reads a CSV file with a `number` (or `phone`) column and an optional `reason`
column, or one number a line without a header; bad lines are reported and skipped.

exit status: 0 done, 1 not on the list (remove), no database or the bridge refused,
2 usage error.

examples:
  callbridge dnc add +14155550123 --reason "asked by email"
  callbridge dnc import dnc.csv --url https://bridge.example.com
  callbridge dnc list --all
  callbridge dnc remove +14155550123
"""


def add_parser(commands: Any) -> None:
    dnc = commands.add_parser(
        "dnc",
        help="the do-not-call list: add, remove, import, list",
        description="The do-not-call list: numbers no call or campaign of the bridge rings.",
        epilog=DNC_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dnc.set_defaults(handler=lambda _args: _usage(dnc))
    sub = dnc.add_subparsers(title="dnc commands")

    add = sub.add_parser("add", help="put a number on the list", description="List a number.")
    add.add_argument("number", metavar="NUMBER", help="E.164, like +14155550123")
    add.add_argument("--reason", help="why (shown with every refusal)")
    _target_options(add)
    add.set_defaults(handler=_add)

    remove = sub.add_parser(
        "remove", help="take a number off the list", description="Take a number off the list."
    )
    remove.add_argument("number", metavar="NUMBER", help="E.164, like +14155550123")
    _target_options(remove)
    remove.set_defaults(handler=_remove)

    load = sub.add_parser(
        "import",
        help="add every number of a CSV file",
        description=(
            "Add every number of a CSV file: a `number` (or `phone`) column and an optional "
            "`reason` column, or one number a line."
        ),
    )
    load.add_argument("file", type=Path, metavar="FILE", help="the CSV file")
    _target_options(load)
    load.set_defaults(handler=_import)

    listing = sub.add_parser("list", help="the listed numbers", description="The listed numbers.")
    how_many = listing.add_mutually_exclusive_group()
    how_many.add_argument("--limit", type=int, default=50, metavar="N", help="at most N (50)")
    how_many.add_argument("--all", action="store_true", help="every listed number (paged)")
    listing.add_argument("--cursor", metavar="CURSOR", help="go on after a previous page")
    listing.add_argument(
        "--source", choices=["api", "cli", "import", "opt_out"], help="only those added so"
    )
    listing.add_argument("--json", action="store_true", help="print the API's JSON")
    _target_options(listing)
    listing.set_defaults(handler=_list)


def _target_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("bridge")
    group.add_argument("--url", help=URL_HELP)
    group.add_argument("--token", help="its API token (default: $BRIDGE_API_TOKEN)")


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def _add(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"number": args.number, "source": "cli"}
    if args.reason:
        body["reason"] = args.reason
    outcome = _call("POST", "/dnc", args, json=body)
    if isinstance(outcome, int):
        return outcome
    number = printable(str(outcome["number"]))
    print(f"{number}: on the do-not-call list" + ("" if outcome["added"] else " already"))
    stopped = outcome.get("stopped_campaign_calls") or 0
    if stopped:
        print(f"{stopped} waiting campaign call(s) to it cancelled")
    return 0


def _remove(args: argparse.Namespace) -> int:
    outcome = _call("DELETE", f"/dnc/{quote(args.number, safe='+')}", args)
    if isinstance(outcome, int):
        return outcome
    print(f"{printable(str(outcome['number']))}: off the do-not-call list")
    return 0


def _import(args: argparse.Namespace) -> int:
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise Failed(f"{args.file}: cannot read: {exc.strerror or exc}") from None
    outcome = _call("POST", "/dnc/import", args, content=data, content_type="text/csv")
    if isinstance(outcome, int):
        return outcome
    problems: list[dict[str, Any]] = outcome.get("problems") or []
    for problem in problems[:SHOWN_PROBLEMS]:
        print(
            printable(f"{args.file}:{problem['line']}: skipped: {problem['problem']}"),
            file=sys.stderr,
        )
    if len(problems) > SHOWN_PROBLEMS:
        print(f"... and {len(problems) - SHOWN_PROBLEMS} more skipped", file=sys.stderr)
    print(
        f"{outcome['added']} added, {outcome['already_listed']} already listed, "
        f"{outcome['invalid']} invalid; "
        f"{outcome['stopped_campaign_calls']} waiting campaign call(s) cancelled"
    )
    return 0


def _list(args: argparse.Namespace) -> int:
    from bridge.cli.api import bridge_client

    limit: int | None = None if args.all else args.limit
    if limit is not None and limit < 1:
        from bridge.cli.errors import UsageError

        raise UsageError("--limit: must be at least 1")
    url, token = _target(args)

    async def fetch() -> tuple[list[dict[str, Any]], str | None]:
        found: list[dict[str, Any]] = []
        cursor: str | None = args.cursor
        async with bridge_client(url, token, reading=True) as client:
            while True:
                wanted = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - len(found))
                params = {"limit": str(wanted)}
                if cursor:
                    params["cursor"] = cursor
                if args.source:
                    params["source"] = args.source
                body = _answer(await client.get("/dnc", params=params), 200)
                found.extend(body["numbers"])
                cursor = body.get("next_cursor")
                if not cursor or (limit is not None and len(found) >= limit):
                    return found, cursor

    outcome = _run(fetch())
    if isinstance(outcome, int):
        return outcome
    found, cursor = outcome
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=True))
    elif not found:
        print("no numbers on the do-not-call list", file=sys.stderr)
    else:
        for item in found:
            when = str(item.get("created_at") or "").replace("T", " ")[:19]
            reason = item.get("reason") or "-"
            print(printable(f"{item['number']:<16}  {when}  {item['source']:<7}  {reason}"))
    if cursor:
        print(f"(more numbers: --cursor {printable(cursor)}, or --all)", file=sys.stderr)
    return 0


def _call(
    method: str,
    path: str,
    args: argparse.Namespace,
    *,
    json: dict[str, Any] | None = None,
    content: bytes | None = None,
    content_type: str | None = None,
) -> dict[str, Any] | int:
    from bridge.cli.api import bridge_client

    url, token = _target(args)
    headers = {"content-type": content_type} if content_type else None

    async def send() -> dict[str, Any]:
        async with bridge_client(url, token, reading=True) as client:
            response = await client.request(
                method, path, json=json, content=content, headers=headers
            )
            return _answer(response, 200, 201)

    return _run(send())


def _answer(response: httpx.Response, *ok: int) -> dict[str, Any]:
    """The JSON body of a response in `ok`; else BridgeRefused with the bridge's error
    (a 422's problems spelled out)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code in ok and isinstance(body, dict):
        return body
    message = body.get("error") if isinstance(body, dict) else None
    status = response.status_code
    # A 422 is the command line's fault (a bad number): a usage error, as a 400 is.
    raise BridgeRefused(400 if status == 422 else status, message or f"HTTP {status}")
