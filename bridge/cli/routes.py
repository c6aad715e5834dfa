"""`callbridge routes check` validates a routing file; `callbridge route` dry-runs one call."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.cli.errors import UsageError
from bridge.cli.numbers import e164_argument

if TYPE_CHECKING:
    from bridge.call import Call
    from bridge.lookup.answer import LookupAnswer
    from bridge.lookup.client import LookupResult
    from bridge.routing.rules import Action, Rule
    from bridge.routing.table import Decision
    from bridge.settings import Settings


def add_routes_parser(commands: Any) -> None:
    routes = commands.add_parser("routes", help="routing files")
    routes_commands = routes.add_subparsers(title="routes commands")
    check = routes_commands.add_parser("check", help="validate a routing file and print it")
    check.add_argument("file", nargs="?", type=Path, help="default: $ROUTES_FILE")
    check.set_defaults(handler=_routes_check)


def add_route_parser(commands: Any) -> None:
    route = commands.add_parser(
        "route",
        help="dry run: which rule a call matches and what the bridge would send",
        epilog="exit status: 0 shown, 1 bad routing file or settings, 2 usage error (such as "
        "a number that is not E.164, which the bridge would refuse too).",
    )
    route.add_argument(
        "--from",
        dest="from_number",
        required=True,
        help="caller, E.164 like +14155550123, or anonymous",
    )
    route.add_argument(
        "--to", dest="to_number", required=True, help="called number, E.164 like +14155550123"
    )
    route.add_argument("--at", help="ISO time of the call (default now; no offset means UTC)")
    route.add_argument("--routes", type=Path, help="routing file (default: $ROUTES_FILE)")
    route.add_argument("--call-sid", default="CA" + "0" * 32)
    route.add_argument("--caller-name", default="")
    route.add_argument(
        "--geo",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="a Twilio geo field, e.g. FromState=CA (FromCity, FromState, FromZip, FromCountry, "
        "...)",
    )
    route.add_argument(
        "--lookup",
        nargs="?",
        const="",
        metavar="URL",
        help="also ask the lookup hook (the rule's, or LOOKUP_URL; or URL) and show what it "
        "would change; exit status 1 if it fails",
    )
    route.set_defaults(handler=_route)


def _routes_check(args: argparse.Namespace) -> int:
    from bridge.routing import load_routes
    from bridge.settings import Settings

    path = args.file or Settings.from_env().routes_file
    if path is None:
        print("callbridge: no file given and ROUTES_FILE is not set", file=sys.stderr)
        return 2
    table = load_routes(path)
    print(f"{path}: OK, {len(table.rules)} rule(s), {len(table.schedules)} schedule(s)")
    for index, rule in enumerate(table.rules, start=1):
        print(f"  {index}. {rule.name}: {_describe_rule(rule)}")
    print(f"  fallback: {table.global_fallback.action}")
    return 0


def _describe_rule(rule: Rule) -> str:
    from bridge.routing.rules import AgentAction

    conditions = rule.when.model_dump(exclude_defaults=True)
    when = ", ".join(f"{key}={value}" for key, value in conditions.items()) or "always"
    target = ""
    if isinstance(rule, AgentAction):
        target = f" {rule.agent_id or '(default agent)'}"
    lookup = ""
    if rule.lookup is False:
        lookup = ", lookup off"
    elif rule.lookup is not None:
        timeout = f" within {rule.lookup.timeout:g} s" if rule.lookup.timeout else ""
        lookup = f", lookup {rule.lookup.url}{timeout}"
    return f"when {when} -> {rule.action}{target}{lookup}"


def _route(args: argparse.Namespace) -> int:
    from bridge.answer.actions import redact, register_request, render
    from bridge.call import GEO_FIELDS, Call
    from bridge.elevenlabs.register_request import REGISTER_CALL_PATH
    from bridge.lookup.merge import merged_request
    from bridge.routing import RoutingTable, load_routes
    from bridge.routing.rules import AgentAction
    from bridge.settings import Settings

    from_number = e164_argument("--from", args.from_number, anonymous_ok=True)
    to_number = e164_argument("--to", args.to_number)
    settings = Settings.from_env()
    path = args.routes or settings.routes_file
    table = load_routes(path) if path else RoutingTable()
    at = _parse_time(args.at)
    geo: dict[str, str] = {}
    for item in args.geo:
        name, _, value = item.partition("=")
        if name not in GEO_FIELDS or not value:
            raise UsageError(
                f"--geo {item!r}: expected FIELD=VALUE with FIELD one of {', '.join(GEO_FIELDS)}"
            )
        geo[name] = value
    call = Call(
        call_sid=args.call_sid,
        from_number=from_number,
        to_number=to_number,
        caller_name=args.caller_name,
        geo=geo,
    )
    decision = table.choose(call, at)
    print(f"time:   {at.isoformat()}")
    print(f"rule:   {decision.rule} ({table.source})")
    print(f"action: {decision.action.action}")

    def show(action: Action, step: str, lookup: LookupAnswer | None = None) -> None:
        if isinstance(action, AgentAction):
            request = register_request(action, call, default_agent_id=settings.elevenlabs_agent_id)
            if request is None:
                print("no agent_id: the rule names none and ELEVENLABS_AGENT_ID is not set")
                return
            if lookup is not None:
                request = merged_request(request, lookup)
            print(f"register-call: POST {settings.elevenlabs_api_base}{REGISTER_CALL_PATH}")
            print(json.dumps(redact(request.to_json()), indent=2))
        else:
            print(render(action, step=step))

    show(decision.action, decision.step)
    print(f"fallback ({decision.fallback.action}), used if that fails:")
    print(render(decision.fallback, step=decision.fallback_step))
    if args.lookup is None:
        return 0
    return _dry_run_lookup(args.lookup, settings, call, decision, show)


def _dry_run_lookup(
    url: str, settings: Settings, call: Call, decision: Decision, show: Callable[..., None]
) -> int:
    """Ask the lookup hook as the bridge would, and show the call as it would then be."""
    from bridge.answer.inbound import LOOKUP_STEP_PREFIX
    from bridge.lookup.hook import LookupTarget, lookups_for, note
    from bridge.lookup.merge import merged_action
    from bridge.transport.factory import make_transport

    transport = make_transport(settings.upstream_transport, 4)
    lookups = lookups_for(
        url=settings.lookup_url,
        timeout=settings.lookup_timeout,
        secrets=settings.lookup_signing_secrets,
        rule_lookups=[decision.lookup],
        transport=transport,
    )
    target = None
    if url:
        target = LookupTarget(url, settings.lookup_timeout)
    elif lookups is not None:
        target = lookups.target(decision.lookup)
    if target is None:
        why = (
            "turned off for this rule (lookup = false)"
            if decision.lookup is False
            else ("LOOKUP_URL is not set and the rule has no lookup")
        )
        print(f"lookup: none: {why}; give a URL: --lookup URL", file=sys.stderr)
        return 1
    if lookups is None:
        lookups = lookups_for(
            url=target.url,
            timeout=target.timeout,
            secrets=settings.lookup_signing_secrets,
            rule_lookups=[],
            transport=transport,
        )
    assert lookups is not None

    async def ask() -> LookupResult:
        try:
            return await lookups.ask(
                target,
                call,
                rule=decision.rule,
                action=decision.action,
                default_agent_id=settings.elevenlabs_agent_id,
                direction="inbound",
                deadline=settings.inbound_deadline,
            )
        finally:
            await transport.aclose()

    result = asyncio.run(ask())
    status = f" HTTP {result.status}" if result.status is not None else ""
    print(f"lookup: POST {target.url} -> {result.result}{status} in {result.latency * 1000:.0f} ms")
    if result.answer is None:
        print(
            f"lookup failed ({result.detail}): the call would go on with the rule's values",
            file=sys.stderr,
        )
        return 1
    changed = note(result, decision.action).changed
    print(f"lookup changes: {', '.join(changed) if changed else 'nothing'}")
    action = merged_action(decision.action, result.answer)
    step = f"{LOOKUP_STEP_PREFIX}{decision.rule}" if result.answer.action else decision.step
    print(f"with the lookup, action: {action.action}")
    show(action, step, result.answer)
    return 0


def _parse_time(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--at: {text!r} is not an ISO time like 2026-03-08T09:30") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
