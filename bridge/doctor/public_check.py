"""The bridge answers at its public URL: GET PUBLIC_BASE_URL/healthz, as Twilio would
reach it (skippable for local runs). Only a pass (200 and the bridge's own
{"status": "ok", ...}) lets --fix point the Twilio number there."""

from __future__ import annotations

import httpx

from bridge.doctor.environment import Environment
from bridge.doctor.results import CheckResult, failed, passed, skipped
from bridge.twilio.paths import HEALTH_PATH

NAME, TITLE = "public.healthz", "public url /healthz"
FIX = (
    "start or deploy the bridge (`callbridge serve`) and make PUBLIC_BASE_URL its public https "
    "origin; for a local run use --skip-public"
)


async def check_public(
    env: Environment, http: httpx.AsyncClient | None, *, skip: bool
) -> CheckResult:
    if skip:
        return skipped(NAME, TITLE, "skipped (--skip-public)")
    blocker = env.blocker("PUBLIC_BASE_URL")
    if blocker is not None or http is None:
        return skipped(NAME, TITLE, f"skipped: {blocker or 'no HTTP client'}")
    url = env.settings.public_base_url + HEALTH_PATH
    try:
        response = await http.get(url)
    except httpx.TimeoutException:
        return failed(NAME, TITLE, f"{url}: no answer in time", FIX)
    except httpx.HTTPError as exc:
        return failed(NAME, TITLE, f"{url}: {str(exc) or type(exc).__name__}", FIX)
    if response.is_redirect:
        where = response.headers.get("location", "?")
        return failed(NAME, TITLE, f"{url} redirects ({response.status_code}) to {where}", FIX)
    if response.status_code != 200:
        return failed(NAME, TITLE, f"{url} answered {response.status_code}", FIX)
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or body.get("status") != "ok":
        return failed(NAME, TITLE, f"{url} answered 200, but not as the bridge does", FIX)
    return passed(NAME, TITLE, f"{url} answered 200")
