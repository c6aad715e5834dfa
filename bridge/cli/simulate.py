"""`callbridge simulate inbound`: post a signed "A call comes in" webhook to a bridge, local
or deployed, and print the TwiML it answered with."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bridge.cli.api import URL_ENV
from bridge.cli.errors import UsageError
from bridge.twilio.paths import INBOUND_PATH

if TYPE_CHECKING:
    from bridge.simulate import voice_webhook as simulate

CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")

INBOUND_EPILOG = """\
the signature:
  The form is signed with $TWILIO_AUTH_TOKEN (the bridge's Twilio auth token; it is
  never printed) for exactly the URL it is posted to. The bridge checks it against its
  PUBLIC_BASE_URL plus the path, so --url must start with the bridge's PUBLIC_BASE_URL.

exit status: 0 the bridge answered 200 with TwiML, 1 it did not (the reason is
printed), 2 usage error.

examples:
  callbridge simulate inbound --from +14155550123 --to +14155550100
  callbridge simulate inbound --from anonymous --to +14155550100 --url http://127.0.0.1:8000
  callbridge simulate inbound --from +442079460123 --to +14155550100 \\
      --url https://my-bridge.herokuapp.com/twilio/inbound --param CallerName=ADA
"""


def add_parser(commands: Any) -> None:
    simulate_parser = commands.add_parser(
        "simulate",
        help="send a bridge a realistic, signed Twilio webhook and show its TwiML",
        description="Imitate Twilio: send a bridge the webhooks Twilio would send.",
    )
    simulate_parser.set_defaults(handler=lambda args: _usage(simulate_parser))
    kinds = simulate_parser.add_subparsers(title="simulate commands")
    inbound = kinds.add_parser(
        "inbound",
        help='an incoming call: the "A call comes in" webhook',
        description=(
            'Post Twilio\'s "A call comes in" webhook (all the usual form fields, signed\n'
            "like Twilio signs it) to a bridge and print the HTTP status and the TwiML."
        ),
        epilog=INBOUND_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    inbound.add_argument(
        "--from",
        dest="caller",
        required=True,
        metavar="NUMBER",
        help="the caller, E.164 or anonymous",
    )
    inbound.add_argument(
        "--to", dest="called", required=True, metavar="NUMBER", help="your Twilio number, E.164"
    )
    inbound.add_argument(
        "--url",
        help=(
            "the bridge's webhook URL (an origin alone gets /twilio/inbound); default: "
            "$CALLBRIDGE_URL/twilio/inbound (the sandbox's env.sh sets it), else "
            "$PUBLIC_BASE_URL/twilio/inbound, else http://127.0.0.1:$PORT/twilio/inbound"
        ),
    )
    inbound.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="add or override a form field, e.g. ForwardedFrom=+14155550142 (repeatable)",
    )
    inbound.add_argument("--call-sid", metavar="CA...", help="default: a new random call SID")
    inbound.add_argument(
        "--unsigned",
        action="store_true",
        help="send no signature (for a bridge run with BRIDGE_INSECURE_SKIP_TWILIO_SIGNATURE=1)",
    )
    inbound.add_argument("--verbose", "-v", action="store_true", help="print every form field")
    inbound.add_argument("--json", action="store_true", help="print the outcome as JSON")
    inbound.set_defaults(handler=_inbound)


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return 2


def inbound_url(given: str | None, environ: Mapping[str, str] | None = None) -> str:
    """The URL to post to: --url (an origin gets the path), else from the environment."""
    env = os.environ if environ is None else environ
    where = f"--url {given!r}"
    if given is None:
        given = env.get(URL_ENV, "").strip() or None
        where = f"{URL_ENV}={given!r}"
    if given is None:
        public = env.get("PUBLIC_BASE_URL", "").strip().rstrip("/")
        port = env.get("PORT", "").strip() or "8000"
        return (public or f"http://127.0.0.1:{port}") + INBOUND_PATH
    parts = urlsplit(given)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"{where}: expected a URL like https://my-bridge.example.com")
    if parts.path in ("", "/") and not parts.query:
        return given.rstrip("/") + INBOUND_PATH
    return given


def _inbound(args: argparse.Namespace) -> int:
    import asyncio

    import httpx

    from bridge.simulate import voice_webhook as simulate

    try:
        caller = simulate.check_number("--from", args.caller, anonymous_ok=True)
        called = simulate.check_number("--to", args.called)
        params = simulate.parse_params(args.param)
    except simulate.SimulationError as exc:
        raise UsageError(str(exc)) from None
    if args.call_sid is not None and not CALL_SID.fullmatch(args.call_sid):
        raise UsageError(f"--call-sid {args.call_sid!r}: expected CA followed by 32 hex digits")
    url = inbound_url(args.url)
    token = os.environ.get("TWILIO_AUTH_TOKEN", "").strip()
    if not token and not args.unsigned:
        raise UsageError(
            "set TWILIO_AUTH_TOKEN to the bridge's Twilio auth token (the sandbox prints its "
            "own), or pass --unsigned for a bridge that skips the signature check"
        )
    form = simulate.voice_form(
        from_number=caller,
        to_number=called,
        call_sid=args.call_sid,
        account_sid=os.environ.get("TWILIO_ACCOUNT_SID", "").strip() or None,
        params=params,
    )

    async def send() -> simulate.Delivery:
        async with httpx.AsyncClient() as client:
            return await simulate.deliver(
                client, url, form, auth_token=None if args.unsigned else token
            )

    if not args.json:
        _print_request(url, form, signed=not args.unsigned, verbose=args.verbose)
    delivery = asyncio.run(send())
    verdict = simulate.judge(delivery)
    if args.json:
        print(json.dumps(_as_json(delivery, verdict), indent=2))
    else:
        _print_answer(delivery, verdict)
    if verdict.problem:
        print(f"callbridge: {verdict.problem}", file=sys.stderr)
    return 0 if verdict.ok else 1


def _print_request(url: str, form: dict[str, str], *, signed: bool, verbose: bool) -> None:
    print(f"POST {url}")
    how = "signed with TWILIO_AUTH_TOKEN for this URL" if signed else "unsigned"
    print(f"  {how}; CallSid={form['CallSid']} From={form['From']} To={form['To']}")
    if verbose:
        for name in sorted(form):
            print(f"    {name}={form[name]}")


def _print_answer(delivery: simulate.Delivery, verdict: simulate.Verdict) -> None:
    from bridge.simulate import voice_webhook as simulate

    if delivery.status is None:
        return
    kind = f" {delivery.content_type}" if delivery.content_type else ""
    print(f"HTTP {delivery.status}{kind}, {delivery.elapsed * 1000:.0f} ms")
    if delivery.body.strip():
        print(simulate.pretty_twiml(delivery.body) if verdict.ok else delivery.body.rstrip())
    if verdict.ok:
        print(f"Twilio would: {simulate.describe(delivery.body)}")


def _as_json(delivery: simulate.Delivery, verdict: simulate.Verdict) -> dict[str, Any]:
    from bridge.simulate import voice_webhook as simulate

    checked = verdict.twiml
    return {
        "url": delivery.url,
        "signed": delivery.signed,
        "form": delivery.form,
        "status": delivery.status,
        "content_type": delivery.content_type,
        "elapsed_ms": round(delivery.elapsed * 1000, 1),
        "body": delivery.body,
        "ok": verdict.ok,
        "problem": verdict.problem,
        "verbs": list(checked.verbs) if checked else None,
        "stream_url": checked.stream_url if checked else None,
        "conversation_id": checked.conversation_id if checked else None,
        "twilio_would": simulate.describe(delivery.body) if checked else None,
    }
