"""Running every check: settings and the routing file first, then the database and
ElevenLabs at the same time as the public URL followed by Twilio (whose --fix needs
the public URL's verdict), each over its own client with a timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bridge.doctor.agents_check import check_agents
from bridge.doctor.database_check import check_database
from bridge.doctor.environment import Environment, read_environment
from bridge.doctor.number_check import check_twilio
from bridge.doctor.public_check import check_public
from bridge.doctor.results import CheckResult, Report, failed
from bridge.doctor.routes_check import agent_uses, check_routes
from bridge.doctor.settings_checks import check_settings
from bridge.elevenlabs.agents import ElevenLabsAgents
from bridge.transport.factory import USER_AGENT, make_transport
from bridge.twilio.numbers import TwilioNumbers

DEFAULT_TIMEOUT = 10.0

TransportFactory = Callable[[], httpx.AsyncBaseTransport]


@dataclass(frozen=True)
class Options:
    fix: bool = False
    skip_public: bool = False
    routes_file: Path | None = None  # instead of ROUTES_FILE
    timeout: float = DEFAULT_TIMEOUT  # for each request


async def run_doctor(
    environ: Mapping[str, str],
    options: Options = Options(),
    transport: TransportFactory | None = None,
) -> Report:
    """Every check, in a fixed order; secrets are already removed from the report.

    `transport` makes a fresh transport for each upstream (default: the bridge's own,
    as UPSTREAM_TRANSPORT chooses)."""
    env = read_environment(environ)
    new_transport = transport or (lambda: make_transport(env.settings.upstream_transport))
    results = check_settings(env)
    routes, table = check_routes(env, options.routes_file)
    results.append(routes)
    uses = agent_uses(table, env.settings.elevenlabs_agent_id)

    agents = ElevenLabsAgents(
        api_key=env.settings.elevenlabs_api_key,
        base_url=env.settings.elevenlabs_api_base,
        transport=new_transport(),
        timeout=options.timeout,
    )
    twilio_transport = new_transport()
    twilio = TwilioNumbers(
        account_sid=env.settings.twilio_account_sid,
        auth_token=env.settings.twilio_auth_token,
        api_base=env.settings.twilio_api_base,
        transport=twilio_transport,
        timeout=options.timeout,
    )
    public = httpx.AsyncClient(
        transport=new_transport(),
        timeout=options.timeout,
        headers={"user-agent": USER_AGENT},
        follow_redirects=False,
    )
    try:
        (
            database_results,
            elevenlabs_results,
            (public_results, twilio_results),
        ) = await asyncio.gather(
            _guarded("database", _one(check_database(env, timeout=options.timeout))),
            _guarded("elevenlabs", check_agents(env, uses, agents, fix=options.fix)),
            _public_then_twilio(env, public, twilio, options),
        )
    finally:
        await agents.aclose()
        await twilio.aclose()
        await twilio_transport.aclose()  # TwilioREST borrows its transport
        await public.aclose()
    # The database line goes with the settings, before the routing file's.
    results[-1:-1] = database_results
    results.extend([*elevenlabs_results, *twilio_results, *public_results])
    return Report(tuple(results)).redacted(env.secrets())


async def _public_then_twilio(
    env: Environment, public: httpx.AsyncClient, twilio: TwilioNumbers, options: Options
) -> tuple[list[CheckResult], list[CheckResult]]:
    """The public URL's line, then Twilio's: --fix only points the number at
    PUBLIC_BASE_URL once the bridge answered there (or --skip-public said not to look)."""
    skip = options.skip_public
    public_results = await _guarded("public", _one(check_public(env, public, skip=skip)))
    healthz = None if skip else public_results[0]
    twilio_results = await _guarded(
        "twilio", check_twilio(env, twilio, fix=options.fix, healthz=healthz)
    )
    return public_results, twilio_results


async def _one(check: Coroutine[Any, Any, CheckResult]) -> list[CheckResult]:
    return [await check]


async def _guarded(group: str, checks: Coroutine[Any, Any, list[CheckResult]]) -> list[CheckResult]:
    """A bug in one group of checks is a failing line, not a traceback that hides the
    other groups' results."""
    try:
        return await checks
    except Exception as exc:  # reported, not swallowed
        return [
            failed(
                f"{group}.error",
                f"{group} checks",
                f"stopped by an unexpected error: {type(exc).__name__}: {exc}",
                "please report this with the output of `callbridge doctor --json`",
            )
        ]
