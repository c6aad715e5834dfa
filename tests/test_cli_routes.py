"""The `callbridge` command line: `routes check` and the `route` dry run."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from defusedxml.ElementTree import fromstring

from bridge.cli import main
from bridge.fakes import FakeLookup
from bridge.fakes.lookup import LOOKUP_PATH
from tests.helpers import SETTINGS_VARIABLES, clear_settings_environment, run_cli, running_server

ROOT = Path(__file__).parent.parent
EXAMPLE = Path(__file__).parent / "data" / "routes_example.toml"


BAD_ROUTES = """
[[rules]]
name = "vip"
action = "agent"
when.callers = ["12125550100"]

[[rules]]
name = "closed"
action = "transfer"
"""


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_settings_environment(monkeypatch)
    monkeypatch.delenv("CALLBRIDGE_URL", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run_cli(capsys, *argv)


def register_call_body(out: str) -> dict[str, Any]:
    """The JSON body the dry run prints between the POST line and the fallback."""
    lines = out.splitlines()
    start = lines.index("{")
    end = lines.index("}", start)
    body: dict[str, Any] = json.loads("\n".join(lines[start : end + 1]))
    return body


def line_after(out: str, prefix: str) -> str:
    lines = out.splitlines()
    (index,) = [i for i, line in enumerate(lines) if line.startswith(prefix)]
    return lines[index + 1]


# --- routes check ------------------------------------------------------------------------


def test_routes_check_ok(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "routes", "check", str(EXAMPLE))
    assert code == 0
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == f"{EXAMPLE}: OK, 11 rule(s), 3 schedule(s)"
    assert lines[1] == ("  1. blocklist: when callers=['+12025550199', '+447911123456'] -> reject")
    assert (
        "  4. vip: when callers=['+12125550100', '+442079460123'] -> agent agent_vip_concierge"
        in lines
    )
    assert "  5. spanish-line: when called=['+13055550142'] -> agent (default agent)" in lines
    assert "  11. front-desk: when always -> forward" in lines
    assert lines[-1] == "  fallback: say"
    assert len(lines) == 1 + 11 + 1


def test_routes_check_uses_routes_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTES_FILE", str(EXAMPLE))
    code, out, _ = run(capsys, "routes", "check")
    assert code == 0
    assert out.startswith(f"{EXAMPLE}: OK, 11 rule(s)")


def test_routes_check_invalid_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(BAD_ROUTES, encoding="utf-8")
    code, out, err = run(capsys, "routes", "check", str(path))
    assert code == 1
    assert out == ""
    assert err.startswith("callbridge: ")
    lines = err.removeprefix("callbridge: ").splitlines()
    assert lines == [
        f"{path}: rule 'vip' (#1): field 'when.callers[0]': '12125550100' is not an "
        "E.164 number like +14155550123",
        f"{path}: rule 'closed' (#2): field 'action': unknown action 'transfer' (expected one "
        "of: agent, forward, voicemail, reject, say, hangup)",
    ]


def test_routes_check_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    code, out, err = run(capsys, "routes", "check", str(path))
    assert code == 1
    assert out == ""
    assert err == f"callbridge: {path}: cannot read routing file: No such file or directory\n"


def test_routes_check_without_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "routes", "check")
    assert code == 2
    assert out == ""
    assert err == "callbridge: no file given and ROUTES_FILE is not set\n"


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys)
    assert code == 2
    assert out.startswith("usage: callbridge")


# --- route (dry run) ---------------------------------------------------------------------------


def test_route_to_an_agent_prints_the_register_call_body(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(
        capsys,
        "route",
        "--from", "+12125550100",
        "--to", "+12125550123",
        "--at", "2026-03-09T10:00-04:00",
        "--routes", str(EXAMPLE),
        "--call-sid", "CA11111111111111111111111111111111",
    )  # fmt: skip
    assert code == 0
    assert err == ""
    lines = out.splitlines()
    assert lines[:4] == [
        "time:   2026-03-09T10:00:00-04:00",
        f"rule:   vip ({EXAMPLE})",
        "action: agent",
        "register-call: POST https://api.elevenlabs.io/v1/convai/twilio/register-call",
    ]
    assert register_call_body(out) == {
        "agent_id": "agent_vip_concierge",
        "from_number": "+12125550100",
        "to_number": "+12125550123",
        "direction": "inbound",
        "conversation_initiation_client_data": {
            "dynamic_variables": {
                "tier": "gold",
                "caller_number": "+12125550100",
                "call_reference": "CA11111111111111111111111111111111",
                "priority": 1,
                "secret__crm_token": "***",
            },
            "conversation_config_override": {
                "agent": {"first_message": "Welcome back! How can I help you today?"}
            },
        },
    }
    assert "crm-test-token" not in out
    # The rule's own fallback: ring the concierge desk.
    fallback = fromstring(line_after(out, "fallback (forward), used if that fails:"))
    (dial,) = list(fallback)
    assert dial.attrib["action"] == "/twilio/dial-complete?step=fallback%3Avip"
    assert [number.text for number in dial] == ["+12125550111"]


def test_route_to_twiml(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys,
        "route",
        "--from", "+16175550123",
        "--to", "+12125550123",
        "--at", "2026-12-25T10:00-05:00",
        "--routes", str(EXAMPLE),
    )  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert lines[1] == f"rule:   after-hours ({EXAMPLE})"
    assert lines[2] == "action: voicemail"
    root = fromstring(lines[3])
    assert [child.tag for child in root] == ["Say", "Record", "Hangup"]
    assert root[1].attrib["action"] == "/twilio/voicemail-complete?step=rule%3Aafter-hours"
    assert root[1].attrib["maxLength"] == "180"
    assert "register-call" not in out
    fallback = fromstring(line_after(out, "fallback (say), used if that fails:"))
    assert fallback[0].text == (
        "Sorry, our assistant is unavailable right now. Please call back in a few minutes."
    )


def test_route_without_agent_id(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "route", "--from", "+16175550123", "--to", "+12125550123")
    assert code == 0
    assert "rule:   default ((no routing file))" in out.splitlines()
    assert "no agent_id: the rule names none and ELEVENLABS_AGENT_ID is not set" in out
    assert "register-call" not in out


def test_route_default_agent_from_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ELEVENLABS_AGENT_ID", "agent_default")
    monkeypatch.setenv("ELEVENLABS_API_BASE", "http://127.0.0.1:9999/")
    monkeypatch.setenv("ELEVENLABS_API_KEY", "xi-secret-key")
    code, out, _ = run(
        capsys, "route", "--from", "+16175550123", "--to", "+12125550123", "--at", "2026-03-09"
    )
    assert code == 0
    assert "time:   2026-03-09T00:00:00+00:00" in out
    assert "register-call: POST http://127.0.0.1:9999/v1/convai/twilio/register-call" in out
    assert register_call_body(out) == {
        "agent_id": "agent_default",
        "from_number": "+16175550123",
        "to_number": "+12125550123",
        "direction": "inbound",
    }
    assert "xi-secret-key" not in out
    fallback = fromstring(line_after(out, "fallback (say), used if that fails:"))
    assert [child.tag for child in fallback] == ["Say", "Hangup"]


def test_route_uses_routes_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ROUTES_FILE", str(EXAMPLE))
    code, out, _ = run(
        capsys, "route", "--from", "anonymous", "--to", "+12125550123", "--at", "2026-03-09T14:00Z"
    )
    assert code == 0
    assert f"rule:   anonymous ({EXAMPLE})" in out.splitlines()


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        pytest.param("2026-03-09T14:00", "2026-03-09T14:00:00+00:00", id="no-offset-is-utc"),
        pytest.param("2026-03-09T14:00Z", "2026-03-09T14:00:00+00:00", id="z"),
        pytest.param("2026-03-09T10:00-04:00", "2026-03-09T10:00:00-04:00", id="offset-kept"),
        pytest.param("2026-03-09 10:00:30+01:00", "2026-03-09T10:00:30+01:00", id="space"),
    ],
)
def test_route_at(capsys: pytest.CaptureFixture[str], at: str, expected: str) -> None:
    code, out, _ = run(
        capsys, "route", "--from", "+16175550123", "--to", "+12125550123", "--at", at
    )
    assert code == 0
    assert out.splitlines()[0] == f"time:   {expected}"


@pytest.mark.parametrize("at", ["tomorrow", "2026-13-01T10:00", "10:00", "2026-03-09T25:00"])
def test_route_bad_at(capsys: pytest.CaptureFixture[str], at: str) -> None:
    code, out, err = run(
        capsys, "route", "--from", "+16175550123", "--to", "+12125550123", "--at", at
    )
    assert code == 2
    assert out == ""
    assert err == f"callbridge: --at: {at!r} is not an ISO time like 2026-03-08T09:30\n"


@pytest.mark.parametrize(
    ("geo", "expected_rule"),
    [
        pytest.param(["FromState=CA"], "california", id="california"),
        pytest.param(["FromState=ca"], "california", id="lowercase-value"),
        pytest.param(["FromState=NY"], "business-hours", id="new-york"),
        pytest.param(["FromCity=SAN FRANCISCO", "FromState=CA"], "california", id="two-fields"),
        pytest.param(["FromState=NY", "FromState=CA"], "california", id="last-wins"),
        pytest.param([], "business-hours", id="none"),
    ],
)
def test_route_geo(capsys: pytest.CaptureFixture[str], geo: list[str], expected_rule: str) -> None:
    geo_args = [arg for item in geo for arg in ("--geo", item)]
    code, out, _ = run(
        capsys,
        "route",
        "--from", "+14155550123",
        "--to", "+12125550123",
        "--at", "2026-03-09T10:00-04:00",
        "--routes", str(EXAMPLE),
        *geo_args,
    )  # fmt: skip
    assert code == 0
    assert f"rule:   {expected_rule} ({EXAMPLE})" in out.splitlines()


@pytest.mark.parametrize("item", ["FromState", "FromState=", "Province=ON", "fromstate=CA", "=CA"])
def test_route_bad_geo(capsys: pytest.CaptureFixture[str], item: str) -> None:
    code, out, err = run(
        capsys, "route", "--from", "+16175550123", "--to", "+12125550123", "--geo", item
    )
    assert code == 2
    assert out == ""
    assert err.startswith(
        f"callbridge: --geo {item!r}: expected FIELD=VALUE with FIELD one of FromCity, "
    )


def test_route_invalid_routes_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(BAD_ROUTES, encoding="utf-8")
    code, out, err = run(
        capsys, "route", "--from", "+16175550123", "--to", "+12125550123", "--routes", str(path)
    )
    assert code == 1
    assert out == ""
    assert f"{path}: rule 'closed' (#2): field 'action': unknown action 'transfer'" in err


def test_route_requires_from_and_to(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["route", "--to", "+12125550123"])
    assert exited.value.code == 2
    assert "--from" in capsys.readouterr().err


def test_bad_setting_is_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORT", "eighty")
    code, out, err = run(capsys, "route", "--from", "+16175550123", "--to", "+12125550123")
    assert code == 1
    assert out == ""
    assert "PORT: must be a whole number" in err


# --- the installed console script ------------------------------------------------------------


def test_console_script_routes_check() -> None:
    script = Path(sys.executable).parent / "callbridge"
    assert script.exists(), "the project is installed with its `callbridge` console script"
    # `bridge` is iproute2's network tool on most Linux machines; the project must not shadow it.
    scripts = importlib.metadata.distribution("callbridge").entry_points.select(
        group="console_scripts"
    )
    assert {script.name for script in scripts} == {"callbridge"}
    env = {key: value for key, value in os.environ.items() if key not in SETTINGS_VARIABLES}
    result = subprocess.run(
        [str(script), "routes", "check", "tests/data/routes_example.toml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "tests/data/routes_example.toml: OK, 11 rule(s), 3 schedule(s)"
    )
    assert result.stderr == ""


# --- numbers are checked as the server checks them ------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--from", "16175550111", "--to", "+12125550123"],
            "--from '16175550111': expected an E.164 number like +14155550123, or anonymous "
            "(did you mean +16175550111?)",
        ),
        (
            ["--from", "+16175550123", "--to", "+1 415 555 0123"],
            "--to '+1 415 555 0123': expected an E.164 number like +14155550123 "
            "(did you mean +14155550123?)",
        ),
        (
            ["--from", "+16175550123", "--to", "+14155550123x"],
            "--to '+14155550123x': expected an E.164 number like +14155550123",
        ),
        (
            ["--from", "(617) 555-0111", "--to", "+12125550123"],
            "--from '(617) 555-0111': expected an E.164 number like +14155550123, or anonymous",
        ),
        (
            ["--from", "+16175550123", "--to", "anonymous"],
            "--to 'anonymous': expected an E.164 number like +14155550123",
        ),
    ],
)
def test_route_refuses_a_number_that_is_not_e164(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, "route", *argv, "--routes", str(EXAMPLE))
    assert (code, out, err) == (2, "", f"callbridge: {message}\n")


@pytest.mark.parametrize("caller", ["anonymous", "Restricted", "+266696687"])
def test_route_takes_a_withheld_caller(capsys: pytest.CaptureFixture[str], caller: str) -> None:
    code, out, _ = run(
        capsys, "route", "--from", caller, "--to", "+12125550123", "--routes", str(EXAMPLE)
    )
    assert code == 0
    assert out.splitlines()[1] == f"rule:   anonymous ({EXAMPLE})"


# --- serve ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "host"),
    [({}, "127.0.0.1"), ({"PORT": ""}, "127.0.0.1"), ({"PORT": "31337"}, "every interface")],
)
def test_serve_listens_on_this_machine_only_unless_a_platform_sets_port(
    environ: dict[str, str], host: str
) -> None:
    from bridge.cli.serve import ALL_INTERFACES, default_host

    assert default_host(environ) == {"every interface": ALL_INTERFACES}.get(host, host)


def test_serve_help_says_where_it_listens(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "default: 127.0.0.1, this machine only; 0.0.0.0, every interface, when $PORT is set" in (
        help_text
    )


def test_routes_check_shows_lookups(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "routes.toml"
    path.write_text(
        '[[rules]]\nname = "a"\naction = "agent"\n'
        'lookup = { url = "https://crm.example/l", timeout = 0.8 }\n\n'
        '[[rules]]\nname = "b"\naction = "hangup"\nlookup = false\n\n'
        '[[rules]]\nname = "c"\naction = "hangup"\n',
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "routes", "check", str(path))
    assert code == 0
    assert (
        "1. a: when always -> agent (default agent), lookup https://crm.example/l within 0.8 s"
        in out
    )
    assert "2. b: when always -> hangup, lookup off" in out
    assert "3. c: when always -> hangup\n" in out


# --- route --lookup ----------------------------------------------------------------------

LOOKUP_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SIMPLE_ROUTES = """
[[rules]]
name = "quiet"
when = { callers = ["+12125550199"] }
action = "hangup"
lookup = false

[[rules]]
name = "sales"
action = "agent"
agent_id = "agent_rule"
dynamic_variables = { tier = "basic" }
"""


@pytest.fixture
def fake_lookup(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeLookup, str]]:
    fake = FakeLookup(secret=LOOKUP_SECRET)
    monkeypatch.setenv("LOOKUP_SECRET", LOOKUP_SECRET)
    with running_server(fake.app) as base:
        yield fake, f"{base}{LOOKUP_PATH}"


def route_with_lookup(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, *extra: str, caller: str = "+12125550100"
) -> tuple[int, str, str]:
    path = tmp_path / "routes.toml"
    path.write_text(SIMPLE_ROUTES, encoding="utf-8")
    return run(
        capsys, "route", "--from", caller, "--to", "+12125550123", "--routes", str(path), *extra
    )


def test_route_lookup_shows_what_the_lookup_changes(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    fake_lookup: tuple[FakeLookup, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake, url = fake_lookup
    monkeypatch.setenv("LOOKUP_URL", url)
    fake.reply = {
        "agent_id": "agent_vip",
        "dynamic_variables": {"tier": "gold", "secret__pin": "never-shown:pin!"},
    }
    code, out, err = route_with_lookup(capsys, tmp_path, "--lookup")
    assert code == 0, err
    assert f"lookup: POST {url} -> ok HTTP 200 in " in out
    assert "lookup changes: agent_id, dynamic_variables.tier, dynamic_variables.secret__pin" in out
    before, after = out.split("with the lookup, action: agent")
    assert '"agent_id": "agent_rule"' in before and '"tier": "basic"' in before
    assert '"agent_id": "agent_vip"' in after and '"tier": "gold"' in after
    assert '"secret__pin": "***"' in after and "never-shown:pin!" not in out
    [sent] = fake.requests
    assert sent["rule"] == "sales" and sent["caller_id"] == "+12125550100"


def test_route_lookup_to_a_url_with_an_action(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_lookup: tuple[FakeLookup, str]
) -> None:
    fake, url = fake_lookup
    fake.reply = {"action": {"action": "forward", "to": ["+12125550111"]}}
    code, out, _ = route_with_lookup(capsys, tmp_path, "--lookup", url)
    assert code == 0
    assert "lookup changes: action=forward" in out
    assert "with the lookup, action: forward" in out
    assert "step=lookup%3Asales" in out and "+12125550111" in out


@pytest.mark.parametrize(
    ("reply", "status", "problem"),
    [
        ({}, 500, "-> http_error HTTP 500"),
        ({"action": {"action": "forward", "to": ["555"]}}, 200, "-> invalid HTTP 200"),
    ],
)
def test_route_lookup_failures_exit_1(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    fake_lookup: tuple[FakeLookup, str],
    reply: dict[str, Any],
    status: int,
    problem: str,
) -> None:
    fake, url = fake_lookup
    fake.reply, fake.status = reply, status
    code, out, err = route_with_lookup(capsys, tmp_path, "--lookup", url)
    assert code == 1
    assert problem in out
    assert "the call would go on with the rule's values" in err


def test_route_lookup_without_any_lookup(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = route_with_lookup(capsys, tmp_path, "--lookup")
    assert code == 1
    assert "LOOKUP_URL is not set and the rule has no lookup" in err
    code, _, err = route_with_lookup(capsys, tmp_path, "--lookup", caller="+12125550199")
    assert code == 1 and "turned off for this rule (lookup = false)" in err


def test_route_lookup_without_a_secret(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = route_with_lookup(capsys, tmp_path, "--lookup", "http://127.0.0.1:9/l")
    assert code == 1
    assert "-> error in" in out and "no signing secret" in err
