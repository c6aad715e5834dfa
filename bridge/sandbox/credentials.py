"""The sandbox's made-up credentials: created once per sandbox directory, kept there.

They only open the sandbox's own stand-ins and bridge, never a real account, and
are printed in its banner (labelled as sandbox-only). Kept across restarts so that
a second terminal's `. sandbox/env.sh` keeps working.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, fields
from pathlib import Path

FILE = "credentials.json"
ENV_FILE = "env.sh"


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

    def exports(self) -> list[str]:
        """What another terminal needs to talk to the sandbox, as shell lines."""
        return [
            f"export TWILIO_ACCOUNT_SID={self.twilio_account_sid}",
            f"export TWILIO_AUTH_TOKEN={self.twilio_auth_token}",
            f"export BRIDGE_API_TOKEN={self.bridge_api_token}",
        ]


def load_or_create(directory: Path) -> Credentials:
    """The directory's credentials; new ones when there are none (or they are unreadable)."""
    path = directory / FILE
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        credentials = Credentials(**{f.name: str(stored[f.name]) for f in fields(Credentials)})
    except (OSError, ValueError, KeyError, TypeError):
        credentials = Credentials.new()
        _write_private(path, json.dumps(asdict(credentials), indent=2) + "\n")
    _write_private(
        directory / ENV_FILE,
        "# The callbridge sandbox's own made-up credentials (not real secrets).\n"
        + "\n".join(credentials.exports())
        + "\n",
    )
    return credentials


def _write_private(path: Path, text: str) -> None:
    # Readable by the owner only: other local users have no business with the sandbox.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
