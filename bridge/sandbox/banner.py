"""What the sandbox says when it is ready: where everything is, and what to try."""

from __future__ import annotations

import shlex
from pathlib import Path
from urllib.parse import quote

from bridge.sandbox.contacts import RETRY_DELAY, campaign_command
from bridge.sandbox.credentials import ENV_FILE, Credentials
from bridge.sandbox.numbers import (
    BLOCKED_CALLER,
    CALLER,
    DEFAULT_AGENT,
    OUR_NUMBER,
    SPANISH_LINE,
    UK_CALLER,
)
from bridge.sandbox.virtual_phone import CALLEES, Timing
from bridge.twilio.paths import INBOUND_PATH


def banner(
    *,
    bridge_url: str,
    elevenlabs_url: str,
    twilio_url: str,
    credentials: Credentials,
    directory: Path,
    routes: str,
    database: Path,
    timing: Timing,
    integrations: str = "",
    contacts: Path | None = None,
) -> list[str]:
    by_behaviour = {behaviour: number for number, behaviour in CALLEES.items()}
    env_file = shlex.quote(str(directory / ENV_FILE))
    return [
        "callbridge sandbox: the real bridge, with local stand-ins for ElevenLabs and Twilio.",
        f"Console: {console_url(bridge_url)}  (sign in with the BRIDGE_API_TOKEN below)",
        "No account needed; nothing leaves this computer.",
        "",
        f"  bridge            {bridge_url}  (its PUBLIC_BASE_URL)",
        f"  fake ElevenLabs   {elevenlabs_url}  default agent {DEFAULT_AGENT}",
        f"  fake Twilio       {twilio_url}  the bridge's number {OUR_NUMBER}",
        f"  routing           {routes}",
        f"  console           {console_url(bridge_url)}  (call log: {database})",
        *(
            [f"  your systems      {integrations}  (a demo: prints the events and lookups it gets)"]
            if integrations
            else []
        ),
        "",
        "Sandbox-only credentials: made up here, they open nothing but this sandbox",
        f"(also in {env_file}):",
        *(f"  {line}" for line in credentials.exports(bridge_url)),
        "",
        "In another terminal:",
        f"  . {env_file}",
        "  # it sets CALLBRIDGE_URL too: the commands below work without --url as well",
        "  # a call comes in: that terminal shows the TwiML, this one the routing decision",
        f"  callbridge simulate inbound --url {bridge_url}{INBOUND_PATH}"
        f" --from {CALLER} --to {OUR_NUMBER}",
        f"  #   other rules: --from anonymous, --from {BLOCKED_CALLER}, --from {UK_CALLER},"
        f" --to {SPANISH_LINE}",
        f"  # a call goes out: the virtual phone rings, answers, talks {timing.talk:g} s",
        f"  callbridge call {CALLER} --url {bridge_url} --var name=Ada",
        f"  #   {by_behaviour['busy']} is busy, {by_behaviour['no-answer']} does not answer,"
        f" {by_behaviour['machine']} is an answering machine",
        *(_campaign(contacts, bridge_url) if contacts is not None else []),
        "  # the call log",
        f"  callbridge calls --url {bridge_url}",
        f'  curl -H "Authorization: Bearer $BRIDGE_API_TOKEN" {bridge_url}/calls',
        "",
        "Watching (Ctrl-C stops the sandbox):",
    ]


def console_url(bridge_url: str) -> str:
    return f"{bridge_url}/ui"


def sign_in_url(bridge_url: str, token: str) -> str:
    """The console with the sandbox's token in the fragment: the page's script signs in
    with it (a fragment is never sent to the server, so it is in no request log)."""
    return f"{console_url(bridge_url)}#token={quote(token, safe='')}"


def _campaign(contacts: Path, bridge_url: str) -> list[str]:
    return [
        f"  # a campaign: a call to each row of {shlex.quote(str(contacts))} (edit it freely);",
        f"  #   busy, no-answer and the machine are retried once, {RETRY_DELAY} s later",
        f"  {campaign_command(contacts, bridge_url)}",
    ]
