"""Settings present and well-formed: one line per variable the bridge needs, and one
per other variable that is malformed."""

from __future__ import annotations

from dataclasses import dataclass

from bridge.doctor.environment import Environment
from bridge.doctor.results import CheckResult, failed, passed


@dataclass(frozen=True)
class Needed:
    name: str
    secret: bool
    unset: str  # what goes wrong without it
    fix: str


NEEDED = (
    Needed(
        "ELEVENLABS_API_KEY",
        True,
        "not set: every call gets the fallback message instead of an agent",
        "create an API key at elevenlabs.io (Developers > API keys) with access to "
        "ElevenLabs Agents and set ELEVENLABS_API_KEY",
    ),
    Needed(
        "ELEVENLABS_AGENT_ID",
        False,
        "not set: calls that no rule sends to a named agent get the fallback message",
        "set ELEVENLABS_AGENT_ID to your agent's id (agent_..., in the agent's settings)",
    ),
    Needed(
        "TWILIO_ACCOUNT_SID",
        False,
        "not set: no outbound calls, no transfers, and the Twilio number cannot be checked",
        "set TWILIO_ACCOUNT_SID to the Account SID (AC..., console.twilio.com > Account info)",
    ),
    Needed(
        "TWILIO_AUTH_TOKEN",
        True,
        "not set: Twilio's webhooks cannot be verified and are refused (403)",
        "set TWILIO_AUTH_TOKEN to the account's Auth Token (console.twilio.com > Account info)",
    ),
    Needed(
        "TWILIO_PHONE_NUMBER",
        False,
        "not set: outbound calls have no caller ID and the number cannot be checked",
        "set TWILIO_PHONE_NUMBER to your Twilio number in E.164 form, like +14155550100",
    ),
    Needed(
        "PUBLIC_BASE_URL",
        False,
        "not set: signatures are checked against the request's own URL and the number's "
        "webhook cannot be checked",
        "set PUBLIC_BASE_URL to the public https origin Twilio reaches the bridge at, "
        "like https://your-app.herokuapp.com",
    ),
    Needed(
        "BRIDGE_API_TOKEN",
        True,
        "not set: the outbound API (/calls, /api/*) answers 503",
        "set BRIDGE_API_TOKEN to a long random string, e.g. the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
    ),
)


NOTHING_SET = (
    "settings",
    "settings",
    "none of the bridge's variables is set: this is not a deployment yet",
    "to try callbridge on this machine without any account, run `callbridge sandbox`; "
    "to check a deployment, run the doctor where its variables are set "
    "(on Heroku: `heroku run callbridge doctor`)",
)


# Upstream secrets are made by Twilio and ElevenLabs (Twilio's auth tokens are 32
# characters, ElevenLabs' keys and webhook secrets longer): a shorter value is a
# copy-paste accident or a placeholder, and every request it signs is refused.
PLAUSIBLE_SECRET_LENGTH = 16
UPSTREAM_SECRETS = {
    "TWILIO_AUTH_TOKEN": "the account's Auth Token (console.twilio.com > Account info)",
    "TWILIO_PREVIOUS_AUTH_TOKEN": "the Auth Token Twilio may still sign with, or unset it",
    "ELEVENLABS_API_KEY": "a key from elevenlabs.io (Developers > API keys)",
    "ELEVENLABS_WEBHOOK_SECRET": "the secret ElevenLabs shows for the post-call webhook",
}


def check_settings(env: Environment) -> list[CheckResult]:
    results = [_check_needed(env, needed) for needed in NEEDED]
    needed_names = {needed.name for needed in NEEDED}
    for name in UPSTREAM_SECRETS:
        if name not in needed_names and name not in env.problems:
            short = _too_short(env, name)
            if short is not None:
                results.append(short)
    if not any(env.is_set(needed.name) for needed in NEEDED):
        # A first run: say where to start before the list of what is missing.
        results.insert(0, failed(*NOTHING_SET))
    known = {needed.name for needed in NEEDED}
    for name, message in env.problems.items():
        if name not in known:
            results.append(
                failed(f"settings.{name}", f"settings {name}", message, f"correct or unset {name}")
            )
    return results


def _check_needed(env: Environment, needed: Needed) -> CheckResult:
    name, title = f"settings.{needed.name}", f"settings {needed.name}"
    if needed.name in env.problems:
        return failed(name, title, env.problems[needed.name], needed.fix)
    if not env.is_set(needed.name):
        return failed(name, title, needed.unset, needed.fix)
    if needed.secret:
        return _too_short(env, needed.name) or passed(name, title, "set")
    if needed.name == "PUBLIC_BASE_URL":
        # As the bridge uses it: normalised (no trailing slash), and reachable by Twilio.
        value = env.settings.public_base_url
        cannot = env.settings.twilio_cannot_reach()
        if cannot is not None:
            return failed(name, title, f"{value} {cannot}", needed.fix)
        return passed(name, title, value)
    return passed(name, title, env.environ[needed.name].strip())


def _too_short(env: Environment, variable: str) -> CheckResult | None:
    """A failure when a set upstream secret (any of a comma-separated rotation) is
    implausibly short; never shows the value."""
    raw = env.environ.get(variable, "")
    parts = raw.split(",") if variable == "ELEVENLABS_WEBHOOK_SECRET" else [raw]
    lengths = [len(part.strip()) for part in parts if part.strip()]
    if variable not in UPSTREAM_SECRETS or not lengths:
        return None
    if min(lengths) >= PLAUSIBLE_SECRET_LENGTH:
        return None
    return failed(
        f"settings.{variable}",
        f"settings {variable}",
        f"set, but shorter than {PLAUSIBLE_SECRET_LENGTH} characters ({min(lengths)}): "
        "not a real one",
        f"set {variable} to {UPSTREAM_SECRETS[variable]}",
    )
