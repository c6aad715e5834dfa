"""The settings as the doctor sees them: every variable that can be read, and what is
wrong with the others, instead of stopping at the first malformed one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import get_type_hints
from urllib.parse import urlsplit

from bridge.elevenlabs.webhook_signature import secrets_from
from bridge.secret import Secret
from bridge.settings import Settings, SettingsError

# Variables that have a default: unset is fine, only a malformed value is a problem.
DEFAULTED = frozenset({"ELEVENLABS_API_BASE", "TWILIO_API_BASE"})
ACCOUNT_SID = re.compile(r"^AC[0-9a-fA-F]{32}$")


def _secret_variables() -> tuple[str, ...]:
    """The variable of every `Secret` field of Settings: Settings.from_env reads field
    `x_y` from `X_Y` (tests/test_doctor.py checks that this holds for each of them)."""
    hints = get_type_hints(Settings)
    return tuple(f.name.upper() for f in fields(Settings) if hints[f.name] is Secret)


SECRET_VARIABLES = _secret_variables()
# Variables holding several secrets: each is hidden on its own, too.
SECRET_LISTS = {"ELEVENLABS_WEBHOOK_SECRET": secrets_from}


@dataclass(frozen=True)
class Environment:
    """`settings` has every well-formed variable; malformed ones are left at their
    defaults there and listed in `problems` (variable -> what is wrong)."""

    settings: Settings
    problems: dict[str, str]
    environ: Mapping[str, str]

    def is_set(self, name: str) -> bool:
        return bool(self.environ.get(name, "").strip())

    def blocker(self, *names: str) -> str | None:
        """Why a check that needs these variables cannot run, or None if it can."""
        for name in names:
            if name in self.problems:
                return f"{name} is malformed (see above)"
            if name not in DEFAULTED and not self.is_set(name):
                return f"{name} is not set"
        return None

    def secrets(self) -> list[str]:
        """Every secret value in the environment, to keep out of the report."""
        values = [self.environ.get(name, "").strip() for name in SECRET_VARIABLES]
        for name, split in SECRET_LISTS.items():
            values.extend(split(self.environ.get(name, "")))
        values.append(_database_password(self.environ.get("DATABASE_URL", "")))
        return [value for value in values if value]


def read_environment(environ: Mapping[str, str]) -> Environment:
    """Settings.from_env's own parsing, retried without each variable it rejects."""
    usable = dict(environ)
    problems: dict[str, str] = {}
    while True:
        try:
            settings = Settings.from_env(usable)
        except SettingsError as exc:
            dropped = False
            for problem in exc.details:
                problems.setdefault(problem.variable, problem.message)
                dropped = usable.pop(problem.variable, None) is not None or dropped
            if not dropped:  # a problem that names no variable we could drop
                raise
            continue
        # Settings takes any text here; the SDK would put it into URL paths.
        sid = settings.twilio_account_sid
        if sid and not ACCOUNT_SID.fullmatch(sid):
            problems["TWILIO_ACCOUNT_SID"] = (
                "must be an Account SID: AC followed by 32 hex digits (not an API key SID)"
            )
        return Environment(settings=settings, problems=problems, environ=dict(environ))


def _database_password(url: str) -> str:
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""
