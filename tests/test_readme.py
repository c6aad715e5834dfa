"""The README's examples are real: its routing file loads and routes as described."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest

from bridge.call import Call
from bridge.routing import parse_routes

README = Path(__file__).parent.parent / "README.md"


def readme_routes() -> str:
    blocks = re.findall(r"```toml\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1
    return blocks[0]


@pytest.mark.parametrize(
    ("caller", "called", "at", "rule"),
    [
        ("+15559990000", "+15557650000", "2026-12-01T10:00-05:00", "blocklist"),
        ("+19005550100", "+15557650000", "2026-12-01T10:00-05:00", "premium-rate callers"),
        ("anonymous", "+15557650000", "2026-12-01T10:00-05:00", "withheld numbers"),
        ("+15551234567", "+15557650002", "2026-12-01T03:00-05:00", "spanish line"),
        ("+15551234567", "+15557650000", "2026-12-01T10:00-05:00", "office hours"),
        ("+15551234567", "+15557650000", "2026-12-25T10:00-05:00", "after hours"),
        ("+15551234567", "+15557650000", "2026-12-05T03:00-05:00", "office hours"),
        ("+15551234567", "+15557650000", "2026-12-06T03:00-05:00", "after hours"),
    ],
)
def test_readme_routing_example(caller: str, called: str, at: str, rule: str) -> None:
    table = parse_routes(readme_routes(), source="README.md")
    call = Call(call_sid="CA1", from_number=caller, to_number=called)
    assert table.choose(call, datetime.fromisoformat(at)).rule == rule


def test_readme_test_command_is_what_ci_runs() -> None:
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "<!-- test-command -->" in ci
    text = README.read_text(encoding="utf-8")
    after = text.split("<!-- test-command -->", 1)[1].splitlines()
    assert after[1] == "```sh" and "pytest" in after[2]


def test_app_json_describes_only_real_settings() -> None:
    import json

    from tests.helpers import SETTINGS_VARIABLES

    app = json.loads((README.parent / "app.json").read_text(encoding="utf-8"))
    assert set(app["env"]) <= set(SETTINGS_VARIABLES)
    assert all(entry["description"] for entry in app["env"].values())
    assert any(addon["plan"].startswith("heroku-postgresql") for addon in app["addons"])


def test_app_json_uses_only_heroku_app_json_fields() -> None:
    import json

    app = json.loads((README.parent / "app.json").read_text(encoding="utf-8"))
    # devcenter.heroku.com/articles/app-json-schema
    known = {"name", "description", "keywords", "website", "repository", "logo",
             "success_url", "scripts", "env", "formation", "image", "addons",
             "buildpacks", "environments", "stack"}  # fmt: skip
    assert set(app) <= known
    for entry in app["env"].values():
        assert set(entry) <= {"description", "value", "required", "generator"}
        assert entry.get("generator", "secret") == "secret"
    # The release phase (migrations) comes from the Procfile.
    procfile = (README.parent / "Procfile").read_text(encoding="utf-8")
    assert "release: callbridge db upgrade" in procfile.splitlines()


def readme_command_lines() -> list[str]:
    """The `callbridge ...` command lines in the README's code blocks."""
    import re

    text = README.read_text(encoding="utf-8")
    found: list[str] = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        for line in block.splitlines():
            match = re.search(r"(?:^|&& |heroku run |\$ )(callbridge [a-z].*?)(?:\s+#.*)?$", line)
            if match:
                found.append(match.group(1))
    return found


def readme_command_mentions() -> list[str]:
    """`callbridge ...` in the README's text: a command and some of its options."""
    import re

    text = README.read_text(encoding="utf-8").replace("\n", " ")
    return sorted(set(re.findall(r"`(callbridge [a-z][^`]*)`", text)))


@pytest.mark.parametrize("command", readme_command_lines())
def test_readme_command_lines_parse(command: str) -> None:
    import shlex

    from bridge.cli import _parser

    try:
        _parser().parse_args(shlex.split(command)[1:])
    except SystemExit as exit:
        pytest.fail(f"`{command}` is not a valid command line (exit {exit.code})")


@pytest.mark.parametrize("mention", readme_command_mentions())
def test_readme_mentions_real_commands_and_options(
    mention: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import re

    from bridge.cli import _parser

    words = mention.split()[1:]
    command = []
    for word in words:
        if not re.fullmatch(r"[a-z]+", word):
            break
        command.append(word)
    with pytest.raises(SystemExit) as exit:
        _parser().parse_args([*command, "--help"])
    assert exit.value.code == 0, f"`callbridge {' '.join(command)}` is not a command"
    usage = capsys.readouterr().out
    for option in re.findall(r"(--[a-z][a-z-]*)", mention):
        assert option in usage, f"`callbridge {' '.join(command)}` has no {option}"
