"""The sandbox's made-up credentials: created once per sandbox directory, kept there.

They only open the sandbox's own stand-ins and bridge, never a real account, and
are printed in its banner (labelled as sandbox-only). Kept across restarts so that
a second terminal's `. sandbox/env.sh` keeps working; env.sh also names the running
sandbox's URL, rewritten at each start (its port may change).
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
from dataclasses import asdict, dataclass, fields
from pathlib import Path

FILE = "credentials.json"
ENV_FILE = "env.sh"
URL_VARIABLE = "CALLBRIDGE_URL"  # the commands' default for --url (bridge.cli.api.URL_ENV)


@dataclass(frozen=True)
class Credentials:
    twilio_account_sid: str
    twilio_auth_token: str
    elevenlabs_api_key: str
    elevenlabs_webhook_secret: str
    bridge_api_token: str

    @classmethod
    def new(cls) -> Credentials:
        return cls(
            twilio_account_sid="AC" + secrets.token_hex(16),
            twilio_auth_token="sandbox-" + secrets.token_hex(16),
            elevenlabs_api_key="sandbox-" + secrets.token_hex(16),
            elevenlabs_webhook_secret="wsec_sandbox_" + secrets.token_hex(16),
            bridge_api_token="sandbox-" + secrets.token_urlsafe(24),
        )

    def exports(self, bridge_url: str) -> list[str]:
        """What another terminal needs to talk to the sandbox, as shell lines: the
        credentials, and the bridge's URL as the default of the commands' --url."""
        return [
            f"export TWILIO_ACCOUNT_SID={self.twilio_account_sid}",
            f"export TWILIO_AUTH_TOKEN={self.twilio_auth_token}",
            f"export BRIDGE_API_TOKEN={self.bridge_api_token}",
            f"export {URL_VARIABLE}={shlex.quote(bridge_url)}",
        ]


def write_env_file(directory: Path, credentials: Credentials, bridge_url: str) -> Path:
    """DIR/env.sh, for `. DIR/env.sh` in another terminal."""
    path = directory / ENV_FILE
    _write_private(
        path,
        "# The callbridge sandbox's own made-up credentials (not real secrets), and its URL:\n"
        f"# `callbridge calls`, `call` and `simulate inbound` then talk to the sandbox\n"
        f"# (unset {URL_VARIABLE} for a bridge built in the command's own process).\n"
        + "\n".join(credentials.exports(bridge_url))
        + "\n",
    )
    return path


def load_or_create(directory: Path) -> Credentials:
    """The directory's credentials; new ones when there are none (or they are unreadable)."""
    path = directory / FILE
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        credentials = Credentials(**{f.name: str(stored[f.name]) for f in fields(Credentials)})
    except (OSError, ValueError, KeyError, TypeError):
        credentials = Credentials.new()
        _write_private(path, json.dumps(asdict(credentials), indent=2) + "\n")
    return credentials


def _write_private(path: Path, text: str) -> None:
    # Readable by the owner only: other local users have no business with the sandbox.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
