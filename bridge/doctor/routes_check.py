"""The routing file is valid, and which agents calls can reach through it."""

from __future__ import annotations

from pathlib import Path

from bridge.doctor.environment import Environment
from bridge.doctor.results import CheckResult, failed, passed
from bridge.routing import RoutesError, RoutingTable, load_routes
from bridge.routing.rules import Action, AgentAction, ForwardAction

NAME, TITLE = "routes", "routing file"
DEFAULT_AGENT_USER = "ELEVENLABS_AGENT_ID"


def check_routes(
    env: Environment, override: Path | None
) -> tuple[CheckResult, RoutingTable | None]:
    """The result line and the table (None when the file cannot be used)."""
    if override is None and "ROUTES_FILE" in env.problems:
        return failed(NAME, TITLE, env.problems["ROUTES_FILE"], "correct ROUTES_FILE"), None
    path = override or env.settings.routes_file
    if path is None:
        detail = "ROUTES_FILE is not set, so every call goes to ELEVENLABS_AGENT_ID"
        return passed(NAME, TITLE, detail), RoutingTable()
    try:
        table = load_routes(path)
    except RoutesError as exc:
        detail = "\n".join(exc.problems)
        fix = f"correct the file; `callbridge routes check {path}` checks it again"
        return failed(NAME, TITLE, detail, fix), None
    detail = f"{path}: {len(table.rules)} rule(s), {len(table.schedules)} schedule(s)"
    return passed(NAME, TITLE, detail), table


def agent_uses(table: RoutingTable | None, default_agent_id: str) -> dict[str, list[str]]:
    """Every agent a call can be handed to -> what sends calls there, in file order."""
    uses: dict[str, list[str]] = {}

    def add(agent_id: str | None, user: str) -> None:
        # A rule without agent_id uses the default agent, which has its own line.
        if agent_id:
            uses.setdefault(agent_id, []).append(user)

    if default_agent_id:
        add(default_agent_id, DEFAULT_AGENT_USER)
    if table is None:
        return uses
    for rule in table.rules:
        where = f"rule {rule.name!r}"
        for action, suffix in [(rule, ""), (rule.fallback, " fallback")]:
            for agent_id in _agents_of(action):
                add(agent_id, where + suffix)
    for agent_id in _agents_of(table.fallback):
        add(agent_id, "fallback")
    return uses


def _agents_of(action: Action | None) -> list[str]:
    if isinstance(action, AgentAction):
        return [action.agent_id] if action.agent_id else []
    if isinstance(action, ForwardAction):
        # A forward that nobody answers may end at an agent.
        return _agents_of(action.on_no_answer)
    return []
