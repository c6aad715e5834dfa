"""`callbridge campaign FILE` (submit to the bridge and follow) and `callbridge campaign
list|show|pause|resume|cancel|results`: server-side campaigns through /campaigns.

The bridge is the one at --url (or $CALLBRIDGE_URL), or built in this process on this
machine's database; in process, the app's lifespan runs while the command does, and so
does its in-process campaign worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bridge.cli.api import call_fields
from bridge.cli.calls import EMPTY, BridgeRefused, _run, _when
from bridge.cli.campaign_follow import Bar, finished, follow, outcome_line
from bridge.cli.errors import Failed, UsageError
from bridge.cli.terminal import printable

SUBCOMMANDS = ("list", "show", "pause", "resume", "cancel", "results")
RETRY_OUTCOMES = ("busy", "no-answer", "failed", "machine")
DETACHED = 130
SUBMIT_TIMEOUT = 180.0


def campaign_options(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the top-level fields agent_id and mode, the campaign's options) from the command
    line; only what was given, so the bridge's defaults apply to the rest."""
    call = call_fields(args)
    if call.pop("record", False):
        raise UsageError("--record: only with --local (server-side campaigns do not record)")
    top: dict[str, Any] = {name: call.pop(name) for name in ("agent_id", "mode") if name in call}
    options: dict[str, Any] = dict(call)
    if args.rate is not None:
        options["rate"] = args.rate
    if args.max_in_flight is not None:
        options["max_in_flight"] = args.max_in_flight
    if args.start_at:
        options["start_at"] = args.start_at
    hours: dict[str, Any] = {}
    if args.hours:
        opening, dash, closing = args.hours.partition("-")
        if not dash:
            raise UsageError(f"--hours {args.hours!r}: expected OPEN-CLOSE, like 09:00-20:00")
        hours.update(open=opening.strip(), close=closing.strip())
    if args.days:
        hours["days"] = [day.strip().lower() for day in args.days.split(",") if day.strip()]
    if hours:
        options["calling_hours"] = hours
    if args.timezone:
        options["timezone"] = args.timezone
    if args.allow_outside_legal_hours:
        options["allow_outside_legal_hours"] = True
    retry: dict[str, Any] = {}
    if args.retry_on is not None:
        wanted = [item.strip() for item in args.retry_on.split(",") if item.strip()]
        unknown = [item for item in wanted if item not in RETRY_OUTCOMES]
        if unknown:
            raise UsageError(
                f"--retry-on: {', '.join(unknown)}: expected some of {', '.join(RETRY_OUTCOMES)}"
            )
        retry["on"] = wanted
    if args.retry_attempts is not None:
        retry["attempts"] = args.retry_attempts
    if args.retry_delay is not None:
        retry["delay"] = args.retry_delay
    if retry:
        options["retry"] = retry
    return top, options


def _check(response: Any, expected: int = 200) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != expected or not isinstance(body, dict):
        message = body.get("error") if isinstance(body, dict) else None
        raise BridgeRefused(response.status_code, message or f"HTTP {response.status_code}")
    return body


def _path(campaign_id: str, tail: str = "") -> str:
    return f"/campaigns/{quote(campaign_id, safe='')}{tail}"


# --- submit and follow ----------------------------------------------------------------------


def submit(args: argparse.Namespace, path: Path) -> int:
    from bridge.campaign import read_contacts
    from bridge.cli.api import bridge_client, local_settings

    contacts = read_contacts(path)  # a file the bridge would refuse is refused here first
    if not contacts.contacts:
        for result in contacts.invalid:
            print(f"{path}:{result.row}: invalid: {printable(result.error)}", file=sys.stderr)
        raise Failed(f"{path}: no valid row: nothing to submit")
    top, options = campaign_options(args)
    name = args.name or args.campaign or path.name
    params = {"name": name, **top}
    if options:
        params["options"] = json.dumps(options, separators=(",", ":"))
    url, token = _target(args)
    if url is None:
        local_settings()  # settings and database checked before anything is sent
    data = path.read_bytes()

    async def work() -> int:
        async with bridge_client(
            url, token, reading=True, dial_campaigns=not args.no_follow
        ) as client:
            response = await client.post(
                "/campaigns",
                params=params,
                content=data,
                headers={"content-type": "text/csv", **_idempotency(args)},
                # The bridge reads every row's time zones first: ~10 s per 100,000 rows.
                timeout=SUBMIT_TIMEOUT,
            )
            if response.status_code == 422:
                _refused(path, response)
                return 2
            created = _check(response, 201)
            _report(path, created)
            campaign_id: str = created["id"]
            print(campaign_id)  # on stdout: for scripts
            sys.stdout.flush()
            if args.no_follow:
                print(_follow_hint(campaign_id, url), file=sys.stderr)
                return 0
            return await _follow(client, campaign_id, args.interval, url)

    return _outcome(work())


def _idempotency(args: argparse.Namespace) -> dict[str, str]:
    key = getattr(args, "idempotency_key", None)
    return {"idempotency-key": key} if key else {}


def _refused(path: Path, response: Any) -> None:
    try:
        body = response.json()
    except ValueError:
        body = {}
    for item in body.get("invalid") or []:
        print(f"{path}:{item['line']}: invalid: {printable(item['error'])}", file=sys.stderr)
    print(f"callbridge: {printable(str(body.get('error') or 'refused (422)'))}", file=sys.stderr)


def _report(path: Path, created: Mapping[str, Any]) -> None:
    for item in created.get("invalid") or []:
        print(f"{path}:{item['line']}: invalid: {printable(item['error'])}", file=sys.stderr)
    for item in created.get("duplicates") or []:
        print(f"{path}:{item['line']}: skipped: {printable(item['error'])}", file=sys.stderr)
    listed = created.get("do_not_call") or 0
    print(
        printable(
            f"campaign {created['id']} {created['name']!r}: {created['accepted']} recipient(s)"
            + (f" ({listed} on the do-not-call list)" if listed else "")
            + f", {created.get('invalid_count', 0)} invalid, "
            f"{created.get('duplicate_count', 0)} duplicate(s) skipped"
        ),
        file=sys.stderr,
    )


def _follow_hint(campaign_id: str, url: str | None) -> str:
    where = "" if url is None else f" --url {url}"
    text = f"follow it with: callbridge campaign show {campaign_id} --follow{where}"
    if url is None:
        text += "\n(in this process's database: `callbridge serve` or `callbridge worker` runs it)"
    return text


async def _follow(client: Any, campaign_id: str, interval: float, url: str | None) -> int:
    progress = Bar()

    async def fetch() -> Mapping[str, Any]:
        return _check(await client.get(_path(campaign_id)))

    try:
        campaign = await follow(fetch, progress, interval=interval, sleep=asyncio.sleep)
    except (KeyboardInterrupt, asyncio.CancelledError):
        progress.close()
        print(
            f"callbridge: detached; campaign {campaign_id} goes on in the bridge\n"
            + _follow_hint(campaign_id, url),
            file=sys.stderr,
        )
        return DETACHED
    print(
        printable(f"campaign {campaign_id}: {campaign.get('state')}: {outcome_line(campaign)}"),
        file=sys.stderr,
    )
    where = "" if url is None else f" --url {url}"
    print(f"results: callbridge campaign results {campaign_id}{where}", file=sys.stderr)
    return 0 if campaign.get("state") != "cancelled" else 1


def _outcome(work: Any) -> int:
    try:
        outcome = _run(work)
    except KeyboardInterrupt:
        return DETACHED
    return outcome if isinstance(outcome, int) else 0


def _target(args: argparse.Namespace) -> tuple[str | None, str | None]:
    from bridge.cli.api import target

    return target(args)


# --- list, show, pause, resume, cancel, results -------------------------------------------


def run_subcommand(args: argparse.Namespace, command: str, campaign_id: str | None) -> int:
    if command != "list" and not campaign_id:
        raise UsageError(f"campaign {command}: needs the campaign's id (cmp_…)")
    if command == "list" and campaign_id:
        raise UsageError(f"campaign list: takes no id (got {campaign_id!r})")
    if args.follow and command != "show":
        raise UsageError("--follow: only with `campaign show ID`")
    handler = {
        "list": _list,
        "show": _show,
        "pause": _control,
        "resume": _control,
        "cancel": _control,
        "results": _results,
    }[command]
    return handler(args, command, campaign_id or "")


def _list(args: argparse.Namespace, command: str, campaign_id: str) -> int:
    from bridge.cli.api import bridge_client

    del command, campaign_id
    params = {"limit": str(args.limit)}
    if args.state:
        params["state"] = args.state
    if args.cursor:
        params["cursor"] = args.cursor
    url, token = _target(args)

    async def work() -> dict[str, Any]:
        async with bridge_client(url, token, reading=True) as client:
            return _check(await client.get("/campaigns", params=params))

    outcome = _run(work())
    if isinstance(outcome, int):
        return outcome
    found: list[dict[str, Any]] = outcome["campaigns"]
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=True))
    elif not found:
        print("no campaigns", file=sys.stderr)
    else:
        for item in found:
            total = item.get("recipient_count") or 0
            done = total - int(item.get("remaining") or 0)
            print(
                printable(
                    f"{item['id']}  {item['state']:<9}  {done}/{total}  "
                    f"{_when(item.get('created_at'))}  {item['name']}"
                )
            )
    if outcome.get("next_cursor"):
        print(f"(more campaigns: --cursor {printable(outcome['next_cursor'])})", file=sys.stderr)
    return 0


def _show(args: argparse.Namespace, command: str, campaign_id: str) -> int:
    from bridge.cli.api import bridge_client

    del command
    url, token = _target(args)

    async def work() -> int | dict[str, Any]:
        async with bridge_client(url, token, reading=True, dial_campaigns=args.follow) as client:
            if args.follow:
                return await _follow(client, campaign_id, args.interval, url)
            return _check(await client.get(_path(campaign_id)))

    outcome = _outcome_or_body(work())
    if isinstance(outcome, int):
        return outcome
    if args.json:
        print(json.dumps(outcome, indent=2, ensure_ascii=True))
        return 0
    for line in describe(outcome):
        print(line)
    return 0


def _outcome_or_body(work: Any) -> int | dict[str, Any]:
    try:
        outcome = _run(work)
    except KeyboardInterrupt:
        return DETACHED
    if isinstance(outcome, int | dict):
        return outcome
    return 0


def describe(campaign: Mapping[str, Any]) -> list[str]:
    counts: Mapping[str, int] = campaign.get("counts") or {}
    options: Mapping[str, Any] = campaign.get("options") or {}
    hours: Mapping[str, Any] = options.get("calling_hours") or {}
    lines = [
        f"campaign   {campaign['id']}  {campaign['name']}",
        f"state      {campaign['state']}",
        f"agent      {campaign.get('agent_id') or EMPTY}  mode {campaign.get('mode') or EMPTY}",
        f"created    {_when(campaign.get('created_at'))}  start {_when(campaign.get('start_at'))}",
        f"started    {_when(campaign.get('started_at'))}  "
        f"finished {_when(campaign.get('finished_at'))}",
        f"eta        {_when(campaign.get('eta'))}",
        f"pace       {options.get('rate')} call(s)/s, at most {options.get('max_in_flight')} "
        "in flight",
        f"hours      {str(hours.get('open'))[:5]}-{str(hours.get('close'))[:5]} "
        f"{','.join(hours.get('days') or [])} "
        f"({options.get('timezone') or 'callee local time'})",
        f"recipients {campaign.get('recipient_count')}: "
        + (", ".join(f"{state} {count}" for state, count in counts.items() if count) or EMPTY),
    ]
    return [printable(line) for line in lines]


def _control(args: argparse.Namespace, command: str, campaign_id: str) -> int:
    from bridge.cli.api import bridge_client

    url, token = _target(args)

    async def work() -> dict[str, Any]:
        async with bridge_client(url, token, reading=True, events=True) as client:
            return _check(await client.post(_path(campaign_id, f"/{command}")))

    outcome = _run(work())
    if isinstance(outcome, int):
        return outcome
    print(printable(f"{campaign_id}: {outcome['state']}"))
    return 0


def _results(args: argparse.Namespace, command: str, campaign_id: str) -> int:
    from bridge.cli.api import bridge_client

    del command
    url, token = _target(args)
    output: Path | None = args.output

    async def work() -> bytes:
        async with bridge_client(url, token, reading=True) as client:
            response = await client.get(_path(campaign_id, "/results.csv"))
            if response.status_code != 200:
                _check(response)  # raises the bridge's error
            return response.content

    outcome = _run(work())
    if isinstance(outcome, int):
        return outcome
    if output is None:
        sys.stdout.write(outcome.decode("utf-8"))
    else:
        output.write_bytes(outcome)
        print(f"results of {campaign_id} in {output}", file=sys.stderr)
    return 0


__all__ = ["SUBCOMMANDS", "campaign_options", "finished", "run_subcommand", "submit"]
