"""`callbridge call`: place one outbound call through POST /calls and print the outcome."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bridge.cli.api import add_call_options, add_target_options, call_fields, target
from bridge.cli.errors import UsageError
from bridge.cli.numbers import e164_argument

if TYPE_CHECKING:
    from bridge.campaign.client import Answer

CALL_EPILOG = """\
variables (--var, repeatable; the agent reads them as {{name}}):
  --var name=Ada            a string (everything after the first '=')
  --var age:=42             JSON after ':=': a number, true, false or null
  --var vip:=true
  Names starting with secret__ reach the agent's tools but never the LLM.

where the call is placed from:
  --url URL   POST URL/calls on a running bridge, with the bearer token from
              --token or $BRIDGE_API_TOKEN (prefer the variable: arguments show
              up in the process list). $CALLBRIDGE_URL is the default for --url
              (the sandbox's env.sh sets it).
  no --url    the bridge is built in this process from the environment
              (BRIDGE_API_TOKEN, TWILIO_*, ELEVENLABS_*, PUBLIC_BASE_URL,
              DATABASE_URL) and the request goes through it, with the same
              validation, destination guard and Idempotency-Key handling. In
              twilio mode the deployed bridge at PUBLIC_BASE_URL answers the call,
              so it must share this DATABASE_URL (which must exist: `callbridge db
              upgrade` creates it) and BRIDGE_API_TOKEN.
"""

CALL_EXAMPLES = """
exit status: 0 placed, 1 not placed (the bridge's error is printed), 2 usage error
(such as a number that is not E.164), 130 interrupted.

examples:
  callbridge call +14155550123 --var name=Ada --var "slot=Tuesday 10:00"
  callbridge call +14155550123 --url https://bridge.example.com --mode elevenlabs \\
      --machine-detection --idempotency-key reminder-42
"""

IN_PROCESS_WAIT = (
    "callbridge: waiting for the answer: the call is being placed in this process, and stopping "
    "midway could lose track of it"
)


def add_parser(commands: Any) -> None:
    call = commands.add_parser(
        "call",
        help="place one outbound call (in this process, or through a running bridge with --url)",
        description=(
            "Place one outbound call through the bridge's POST /calls API and print its\n"
            "call SID, conversation id and mode, or the error."
        ),
        epilog=CALL_EPILOG + CALL_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    call.add_argument("to", help="the number to call, E.164 (like +14155550123)")
    call.add_argument(
        "--var",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a dynamic variable: NAME=string or NAME:=JSON (number, true, false, null)",
    )
    call.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="the same key and request within 24 h replay the first answer without dialling",
    )
    call.add_argument("--json", action="store_true", help="print the API's JSON answer")
    add_call_options(call)
    add_target_options(call)
    call.set_defaults(handler=_call)


def parse_variables(items: Sequence[str]) -> dict[str, Any]:
    """`--var` values: NAME=text, or NAME:=JSON for a number, true, false or null."""
    variables: dict[str, Any] = {}
    for item in items:
        name, equals, text = item.partition("=")
        value: Any = text
        if name.endswith(":"):
            name = name[:-1]
            try:
                value = json.loads(text)
            except ValueError:
                raise UsageError(
                    f"--var {item!r}: {text!r} is not JSON (for a string, use {name}=...)"
                ) from None
            if isinstance(value, dict | list) or (
                isinstance(value, float) and not math.isfinite(value)
            ):
                raise UsageError(
                    f"--var {item!r}: a variable is a string, number, true, false or null"
                )
        if not equals or not name:
            raise UsageError(f"--var {item!r}: expected NAME=VALUE or NAME:=JSON")
        variables[name] = value
    return variables


def _call(args: argparse.Namespace) -> int:
    import asyncio

    from bridge.campaign.client import post_call
    from bridge.cli.api import bridge_client
    from bridge.cli.interrupts import current_task, on_ctrl_c

    to = e164_argument("to", args.to)
    body: dict[str, Any] = {"to": to, **call_fields(args)}
    variables = parse_variables(args.var)
    if variables:
        body["dynamic_variables"] = variables
    url, token = target(args)

    async def place() -> Answer:
        main = current_task()

        def interrupt() -> None:
            if url is not None:
                main.cancel()  # the bridge at --url finishes what it started on its own
            else:
                print(IN_PROCESS_WAIT, file=sys.stderr)

        with on_ctrl_c(interrupt, interrupt):
            async with bridge_client(url, token) as client:
                return await post_call(client, body, idempotency_key=args.idempotency_key)

    try:
        answer = asyncio.run(place())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(f"callbridge: interrupted; {_maybe_placed(args.idempotency_key)}", file=sys.stderr)
        return 130
    if args.json:
        shown = answer.body or {
            "error": answer.error,
            "placed": "unknown" if answer.placed is None else False,
        }
        print(json.dumps(shown, indent=2))
    if answer.placed:
        if not args.json:
            _print_placed(answer)
        return 0
    print(f"callbridge: call not placed: {answer.error}", file=sys.stderr)
    if answer.placed is None:
        print(f"callbridge: {_maybe_placed(args.idempotency_key)}", file=sys.stderr)
    return 1


def _print_placed(answer: Answer) -> None:
    body = answer.body
    print(f"placed: {body.get('to')} via {body.get('mode')} (agent {body.get('agent_id')})")
    for name in ("call_sid", "sip_call_id", "conversation_id", "status"):
        if name not in body:
            continue
        value = body[name]
        if value is None:
            value = "(set when the call is answered)" if name == "conversation_id" else "-"
        print(f"  {name + ':':<17}{value}")
    if answer.replayed:
        print("  replayed: this Idempotency-Key was used before; nothing was dialled now")


def _maybe_placed(key: str | None) -> str:
    if key:
        return "the call may have been placed: retry with the same --idempotency-key to find out"
    return "the call may have been placed: check the bridge's call log before retrying"
