"""The ElevenLabs key works, and every agent calls can reach exists and speaks
ulaw_8000 both ways; with --fix, wrong formats are patched and read back."""

from __future__ import annotations

import asyncio

from bridge.doctor.environment import Environment
from bridge.doctor.results import CheckResult, failed, passed, skipped
from bridge.doctor.upstream import describe, no_contact, surely_not_applied
from bridge.elevenlabs.agents import (
    TELEPHONY_FORMAT,
    AudioFormats,
    ElevenLabsAgents,
    telephony_patch,
)
from bridge.elevenlabs.api import ElevenLabsError

KEY_NAME, KEY_TITLE = "elevenlabs.api_key", "elevenlabs api key"
SERVICE = "ElevenLabs"
NEEDS = ("ELEVENLABS_API_KEY", "ELEVENLABS_API_BASE")
FORMAT_FIX = (
    "run `callbridge doctor --fix`, or in the agent's settings on elevenlabs.io set the user "
    "input audio format and the TTS output format to u-law 8000 Hz"
)
UNCONFIRMED = (
    "run `callbridge doctor` again to see the agent's formats as they are now; to undo the "
    "change, set the formats shown under was: in the agent's settings on elevenlabs.io"
)


async def check_agents(
    env: Environment, uses: dict[str, list[str]], agents: ElevenLabsAgents | None, *, fix: bool
) -> list[CheckResult]:
    """The key line, then one line per agent. `agents` is None when the settings
    (see `blocker`) do not allow calling ElevenLabs."""
    blocker = env.blocker(*NEEDS)
    if blocker is not None or agents is None:
        reason = f"skipped: {blocker or 'ElevenLabs is not configured'}"
        return [skipped(KEY_NAME, KEY_TITLE, reason)] + [
            skipped(_name(agent_id), _title(agent_id), reason) for agent_id in uses
        ]
    if not uses:
        return [skipped(KEY_NAME, KEY_TITLE, "skipped: no agent to check the key with")]
    agent_ids = list(uses)
    # The first read tells whether the key works; the others only run if it does.
    first = await _check_agent(agents, agent_ids[0], uses[agent_ids[0]], fix=fix)
    key = _key_result(first, env.settings.elevenlabs_api_base)
    if not key.ok:
        reason = f"skipped: {key.detail}"
        return [key] + [skipped(_name(agent_id), _title(agent_id), reason) for agent_id in uses]
    rest = await asyncio.gather(
        *(_check_agent(agents, agent_id, uses[agent_id], fix=fix) for agent_id in agent_ids[1:])
    )
    return [key, first.result, *(outcome.result for outcome in rest)]


class _Outcome:
    """An agent's line, and the error of its first request if that failed."""

    def __init__(self, result: CheckResult, error: ElevenLabsError | None = None) -> None:
        self.result = result
        self.error = error


def _key_result(first: _Outcome, base: str) -> CheckResult:
    error = first.error
    if error is None or error.status == 404:
        return passed(KEY_NAME, KEY_TITLE, "accepted")
    if error.status is None:
        return failed(
            KEY_NAME,
            KEY_TITLE,
            no_contact(SERVICE, error, base),
            "check the network (or proxy) and ELEVENLABS_API_BASE, then run the doctor again",
        )
    if error.status in (401, 403):
        return failed(
            KEY_NAME,
            KEY_TITLE,
            f"rejected ({error.status}): {error.message}",
            "set ELEVENLABS_API_KEY to a valid key (elevenlabs.io > Developers > API keys) "
            "with read and write access to ElevenLabs Agents",
        )
    # Another answer (5xx, 429, ...) says nothing about the key; the agent line says more.
    return passed(KEY_NAME, KEY_TITLE, f"not rejected (the API answered {error.status})")


async def _check_agent(
    agents: ElevenLabsAgents, agent_id: str, users: list[str], *, fix: bool
) -> _Outcome:
    name, title = _name(agent_id), _title(agent_id)
    used_by = f"used by {', '.join(users)}"
    try:
        agent = await agents.get(agent_id)
    except ElevenLabsError as exc:
        return _Outcome(_read_failure(name, title, agent_id, used_by, exc), exc)
    formats = AudioFormats.of(agent)
    wrong = formats.wrong
    if not wrong:
        return _Outcome(passed(name, title, f"audio formats {TELEPHONY_FORMAT} ({used_by})"))
    problem = (
        f"{_describe(wrong)}: register-call needs {TELEPHONY_FORMAT} both ways, "
        f"otherwise callers hear silence (Twilio error 31951) ({used_by})"
    )
    if not fix:
        return _Outcome(failed(name, title, problem, FORMAT_FIX, fixable=True))
    return _Outcome(await _fix_formats(agents, agent_id, wrong))


async def _fix_formats(
    agents: ElevenLabsAgents, agent_id: str, wrong: dict[str, str | None]
) -> CheckResult:
    name, title = _name(agent_id), _title(agent_id)
    previous = {field: value or "" for field, value in wrong.items()}
    manual = (
        "in the agent's settings on elevenlabs.io, set the user input audio format and "
        "the TTS output format to u-law 8000 Hz"
    )
    try:
        await agents.update(agent_id, telephony_patch(wrong))
    except ElevenLabsError as exc:
        if surely_not_applied(exc):
            detail = f"{_describe(wrong)}; the fix failed: {describe(SERVICE, exc)}"
            return failed(name, title, detail, manual, fixable=True)
        # A 5xx or no answer: the change may have been made all the same.
        detail = (
            f"{_describe(wrong)}; the change may have been applied, but could not "
            f"confirm: {describe(SERVICE, exc)}"
        )
        return failed(name, title, detail, UNCONFIRMED, previous=previous)
    try:
        # Trust what the agent says now, not the PATCH answer.
        after = AudioFormats.of(await agents.get(agent_id)).wrong
    except ElevenLabsError as exc:
        detail = f"{_describe(wrong)}; applied, but could not confirm: {describe(SERVICE, exc)}"
        return failed(name, title, detail, UNCONFIRMED, previous=previous)
    if after:
        detail = (
            f"{_describe(wrong)}; the change was accepted but the agent still reports "
            f"{_describe(after)}"
        )
        return failed(name, title, detail, manual, fixable=True, previous=previous)
    changed = ", ".join(wrong)
    detail = f"audio formats set to {TELEPHONY_FORMAT} ({changed}), confirmed by reading back"
    return CheckResult(name, title, "fixed", detail, previous=previous)


def _read_failure(
    name: str, title: str, agent_id: str, used_by: str, error: ElevenLabsError
) -> CheckResult:
    if error.status == 404:
        return failed(
            name,
            title,
            f"not found ({used_by}): {error.message}",
            f"correct the agent id ({used_by}); your agents are listed at "
            "elevenlabs.io/app/agents (ids look like agent_...)",
        )
    if error.status is None:
        return failed(
            name,
            title,
            no_contact(SERVICE, error),
            "check the network and ELEVENLABS_API_BASE",
        )
    return failed(
        name,
        title,
        f"could not read the agent ({error.status}): {error.message}",
        "check the API key's permissions (ElevenLabs Agents: read and write), then try again",
    )


def _describe(formats: dict[str, str | None]) -> str:
    return ", ".join(f"{field}={value or '(not set)'}" for field, value in formats.items())


def _name(agent_id: str) -> str:
    return f"elevenlabs.agent.{agent_id}"


def _title(agent_id: str) -> str:
    return f"elevenlabs agent {agent_id}"
