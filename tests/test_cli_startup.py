"""The `callbridge` command starts fast: building its parser imports none of the server,
the database, the Twilio SDK or the sandbox (a command imports what it uses when it
runs), and output cut short by a closed pipe ends quietly."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
EXAMPLE = "tests/data/routes_example.toml"

# What `callbridge --help` has no use for (seconds of start-up between them).
HEAVY = (
    "bridge.app",
    "bridge.sandbox",
    "bridge.storage",
    "bridge.web",
    "bridge.doctor",
    "bridge.campaign",
    "starlette",
    "sqlalchemy",
    "alembic",
    "twilio",
    "uvicorn",
    "httpx",
    "aiohttp",
    "pydantic",
    "obstore",
)

LOADED = """
import json, sys
{code}
print(json.dumps(sorted(sys.modules)))
"""


def loaded_after(code: str) -> set[str]:
    """The modules a fresh interpreter has loaded after running `code`."""
    result = subprocess.run(
        [sys.executable, "-c", LOADED.format(code=code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    modules: list[str] = json.loads(result.stdout.splitlines()[-1])
    return set(modules)


def heavy(modules: set[str]) -> list[str]:
    return sorted(
        name for name in modules if any(name == h or name.startswith(h + ".") for h in HEAVY)
    )


@pytest.mark.parametrize(
    "code",
    [
        "import bridge.cli",
        "import bridge.__main__",
        # argparse prints the help and exits: every command's parser has been built.
        "from bridge.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
        "from bridge.cli import _parser\n"
        "for command in ['serve', 'route', 'routes', 'call', 'calls', 'campaign', 'db', "
        "'doctor', 'sandbox', 'simulate']:\n"
        "    try:\n        _parser().parse_args([command, '--help'])\n"
        "    except SystemExit:\n        pass",
    ],
    ids=["import", "python-m-bridge", "help", "every-command-help"],
)
def test_the_parser_imports_nothing_heavy(code: str) -> None:
    assert heavy(loaded_after(code)) == []


def test_route_imports_neither_the_server_nor_an_http_client() -> None:
    modules = loaded_after(
        "from bridge.cli import main\n"
        f"main(['route', '--from', '+16175550123', '--to', '+12125550123', '--routes', "
        f"'{EXAMPLE}'])"
    )
    assert "bridge.routing" in modules  # it did route
    # It needs the rules (pydantic) and TwiML (the Twilio SDK's builder), nothing else.
    needed = ("pydantic", "twilio")
    assert [name for name in heavy(modules) if not name.startswith(needed)] == []
    assert "twilio.rest" not in modules


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("bridge.settings", "SettingsError"),
        ("bridge.routing", "RoutesError"),
        ("bridge.campaign", "CampaignError"),
    ],
)
def test_the_errors_main_reports_are_where_it_looks(module: str, name: str) -> None:
    from bridge.cli import REPORTED_ERRORS

    assert (module, name) in REPORTED_ERRORS
    error = getattr(importlib.import_module(module), name)
    assert isinstance(error, type) and issubclass(error, Exception)


def test_constants_written_out_for_speed_match_their_source() -> None:
    from bridge.cli import api, doctor
    from bridge.doctor.run import DEFAULT_TIMEOUT
    from bridge.sandbox.credentials import URL_VARIABLE

    assert doctor.DEFAULT_TIMEOUT == DEFAULT_TIMEOUT
    assert api.URL_ENV == URL_VARIABLE


# --- a reader that stops early (`callbridge ... | head`) ------------------------------------


@pytest.mark.parametrize(
    ("argv", "unbuffered"),
    [
        (["--help"], False),
        (["routes", "check", EXAMPLE], False),
        (["routes", "check", EXAMPLE], True),
        (["route", "--from", "+16175550123", "--to", "+12125550123", "--routes", EXAMPLE], False),
    ],
    ids=["help", "routes-check", "routes-check-unbuffered", "route"],
)
def test_a_closed_pipe_ends_the_command_quietly(argv: list[str], unbuffered: bool) -> None:
    script = Path(sys.executable).parent / "callbridge"
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before the first write: EPIPE for certain
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in ("ROUTES_FILE", "PYTHONUNBUFFERED")
    }
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"  # the error comes from print(), not the final flush
    try:
        result = subprocess.run(
            [str(script), *argv],
            cwd=ROOT,
            env=env,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.stderr == ""  # no BrokenPipeError traceback, no "Exception ignored"
    assert result.returncode == 141  # as `yes | head -1` reports a producer cut short


def test_output_into_head_is_cut_short_without_a_traceback() -> None:
    script = Path(sys.executable).parent / "callbridge"
    result = subprocess.run(
        ["/bin/sh", "-c", f"'{script}' routes check {EXAMPLE} | head -1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.stdout == f"{EXAMPLE}: OK, 11 rule(s), 3 schedule(s)\n"
    assert result.stderr == ""
