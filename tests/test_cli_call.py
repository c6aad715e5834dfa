"""`callbridge call` and `callbridge campaign` from the command line: in process (the app built
from the environment, fake upstreams on loopback) and over HTTP (`--url`, the app
served by uvicorn)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bridge.app import create_app
from bridge.cli import main, parse_variables
from bridge.fakes import FakeElevenLabs, FakeTwilio
from tests.helpers import (
    ACCOUNT_SID,
    API_TOKEN,
    AUTH_TOKEN,
    CONTACTS,
    ELEVENLABS_KEY,
    GOOD,
    OUR_NUMBER,
    PUBLIC,
    SETTINGS_VARIABLES,
    Upstreams,
    clear_settings_environment,
    free_port,
    fresh_sqlite,
    outbound_settings,
    results_rows,
    run_cli,
    running_server,
)

ROOT = Path(__file__).parent.parent
CALLEE = "+14155550123"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_settings_environment(monkeypatch)
    monkeypatch.delenv("CALLBRIDGE_URL", raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    return run_cli(capsys, *argv)


@dataclass
class LoopbackFakes:
    twilio: FakeTwilio
    elevenlabs: FakeElevenLabs


@pytest.fixture
def bridge_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[LoopbackFakes]:
    """The environment of a deployed bridge, its upstreams being fakes on loopback."""
    fakes = LoopbackFakes(
        FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN),
        FakeElevenLabs(api_key=ELEVENLABS_KEY),
    )
    with running_server(fakes.twilio.app) as twilio, running_server(fakes.elevenlabs.app) as xi:
        for name, value in {
            "BRIDGE_API_TOKEN": API_TOKEN,
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_PHONE_NUMBER": OUR_NUMBER,
            "TWILIO_API_BASE": twilio,
            "ELEVENLABS_API_KEY": ELEVENLABS_KEY,
            "ELEVENLABS_AGENT_ID": "agent_default",
            "ELEVENLABS_AGENT_PHONE_NUMBER_ID": "phnum_test",
            "ELEVENLABS_API_BASE": xi,
            "PUBLIC_BASE_URL": PUBLIC,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bridge.sqlite3'}",
        }.items():
            monkeypatch.setenv(name, value)
        # The bridge's database exists (a command in process never creates one).
        fresh_sqlite(os.environ["DATABASE_URL"])
        yield fakes


@pytest.fixture
def served_bridge(tmp_path: Path) -> Iterator[tuple[str, Upstreams]]:
    """The bridge served by uvicorn on loopback (its upstreams faked in process)."""
    upstreams = Upstreams()
    app = create_app(outbound_settings(tmp_path), transport=upstreams.transport)
    with running_server(app) as url:
        yield url, upstreams


# --- --var -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["name=Ada"], {"name": "Ada"}),
        (["slot=Tuesday 10:00", "empty="], {"slot": "Tuesday 10:00", "empty": ""}),
        (["url=https://x.test/?a=b"], {"url": "https://x.test/?a=b"}),
        (["n:=42", "ratio:=0.5", "vip:=true", "no:=false", "none:=null"], {
            "n": 42, "ratio": 0.5, "vip": True, "no": False, "none": None,
        }),
        (["quoted:=\"42\""], {"quoted": "42"}),
        (["n=1", "n:=2"], {"n": 2}),
        (["secret__pin=8642"], {"secret__pin": "8642"}),
    ],
)  # fmt: skip
def test_parse_variables(items: list[str], expected: dict[str, Any]) -> None:
    assert parse_variables(items) == expected


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("name", "--var 'name': expected NAME=VALUE or NAME:=JSON"),
        ("=Ada", "--var '=Ada': expected NAME=VALUE or NAME:=JSON"),
        (":=1", "--var ':=1': expected NAME=VALUE or NAME:=JSON"),
        ("n:=forty", "--var 'n:=forty': 'forty' is not JSON (for a string, use n=...)"),
        ("n:=[1]", "--var 'n:=[1]': a variable is a string, number, true, false or null"),
        ("n:={}", "--var 'n:={}': a variable is a string, number, true, false or null"),
        ("n:=1e999", "--var 'n:=1e999': a variable is a string, number, true, false or null"),
    ],
)
def test_a_bad_var_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], item: str, message: str
) -> None:
    code, out, err = run(capsys, "call", CALLEE, "--var", item)
    assert (code, out, err) == (2, "", f"callbridge: {message}\n")


# --- callbridge call, in process ---------------------------------------------------------------


def test_call_in_process(capsys: pytest.CaptureFixture[str], bridge_env: LoopbackFakes) -> None:
    code, out, err = run(capsys, "call", CALLEE, "--var", "name=Ada", "--record")
    assert (code, err) == (0, "")
    (call,) = bridge_env.twilio.calls.values()
    assert call.param("To") == CALLEE and call.param("Record") == "true"
    assert out.splitlines() == [
        f"placed: {CALLEE} via twilio (agent agent_default)",
        f"  call_sid:        {call.sid}",
        "  conversation_id: (set when the call is answered)",
        "  status:          queued",
    ]


def test_call_in_process_native_mode_with_variables(
    capsys: pytest.CaptureFixture[str], bridge_env: LoopbackFakes
) -> None:
    code, out, _ = run(
        capsys,
        "call", CALLEE,
        "--mode", "elevenlabs",
        "--agent", "agent_reminders",
        "--var", "name=Ada",
        "--var", "visits:=3",
        "--var", "vip:=true",
    )  # fmt: skip
    assert code == 0
    (sent,) = bridge_env.elevenlabs.outbound_requests
    assert sent["body"] == {
        "agent_id": "agent_reminders",
        "agent_phone_number_id": "phnum_test",
        "to_number": CALLEE,
        "conversation_initiation_client_data": {
            "dynamic_variables": {"name": "Ada", "visits": 3, "vip": True}
        },
    }
    lines = out.splitlines()
    assert lines[0] == f"placed: {CALLEE} via elevenlabs (agent agent_reminders)"
    assert lines[2].startswith("  conversation_id: conv_")


def test_call_in_process_idempotency_key(
    capsys: pytest.CaptureFixture[str], bridge_env: LoopbackFakes
) -> None:
    first = run(capsys, "call", CALLEE, "--idempotency-key", "reminder-42")
    second = run(capsys, "call", CALLEE, "--idempotency-key", "reminder-42")
    assert first[0] == second[0] == 0
    assert len(bridge_env.twilio.calls) == 1
    assert second[1] == first[1] + (
        "  replayed: this Idempotency-Key was used before; nothing was dialled now\n"
    )
    code, _, err = run(capsys, "call", "+14155550124", "--idempotency-key", "reminder-42")
    assert code == 1
    assert err == (
        "callbridge: call not placed: HTTP 422: This Idempotency-Key was already used with a "
        "different request.\n"
    )
    assert len(bridge_env.twilio.calls) == 1


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["+19005550100"], "HTTP 403: +19005550100 is a premium-rate number"),
        (["+447812345678"], "HTTP 403: +447812345678 is in GB"),
        ([CALLEE, "--ring-timeout", "2"], "HTTP 422: Invalid request: ring_timeout: "),
    ],
)
def test_call_refused_in_process(
    capsys: pytest.CaptureFixture[str], bridge_env: LoopbackFakes, argv: list[str], error: str
) -> None:
    code, out, err = run(capsys, "call", *argv)
    assert (code, out) == (1, "")
    assert err.startswith(f"callbridge: call not placed: {error}")
    assert bridge_env.twilio.calls == {}


@pytest.mark.parametrize(
    ("number", "hint"),
    [
        ("4155550123", ""),
        ("14155550123", " (did you mean +14155550123?)"),
        ("+1 415 555 0123", " (did you mean +14155550123?)"),
        ("+14155550123x", ""),
    ],
)
@pytest.mark.parametrize("where", [[], ["--url", "http://127.0.0.1:9", "--token", "t"]])
def test_a_number_that_is_not_e164_is_a_usage_error_before_any_request(
    capsys: pytest.CaptureFixture[str],
    bridge_env: LoopbackFakes,
    number: str,
    hint: str,
    where: list[str],
) -> None:
    code, out, err = run(capsys, "call", number, *where)
    assert (code, out) == (2, "")
    assert err == (f"callbridge: to {number!r}: expected an E.164 number like +14155550123{hint}\n")
    assert bridge_env.twilio.calls == {} and bridge_env.elevenlabs.outbound_requests == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("   ", "is blank: give the words to leave on the machine"),
        ("\t\n", "is blank: give the words to leave on the machine"),
        (
            "Hi\x1b[2J there",
            "contains control characters ('\\x1b'), which a spoken message cannot carry",
        ),
        (
            "Hi\x00\x07",
            "contains control characters ('\\x00', '\\x07'), which a spoken message cannot carry",
        ),
    ],
)
@pytest.mark.parametrize("command", ["call", "campaign"])
def test_a_machine_message_twilio_cannot_say_is_a_usage_error_before_any_request(
    capsys: pytest.CaptureFixture[str],
    bridge_env: LoopbackFakes,
    tmp_path: Path,
    text: str,
    problem: str,
    command: str,
) -> None:
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(f"phone\n{CALLEE}\n", encoding="utf-8")
    target = CALLEE if command == "call" else str(contacts)
    code, out, err = run(capsys, command, target, "--machine-message", text)
    assert (code, out) == (2, "")
    assert err == f"callbridge: --machine-message: {problem}\n"
    assert bridge_env.twilio.calls == {} and bridge_env.elevenlabs.outbound_requests == []


@pytest.mark.parametrize(
    "text", ["Hello, this is Ada. Call back on 415 555 0123.", "Zwei\nZeilen\tok"]
)
def test_a_machine_message_twilio_can_say_is_sent(
    capsys: pytest.CaptureFixture[str], bridge_env: LoopbackFakes, text: str
) -> None:
    code, _, err = run(capsys, "call", CALLEE, "--machine-message", text)
    assert code == 0, err
    assert len(bridge_env.twilio.calls) == 1


def test_call_in_process_needs_the_database(
    capsys: pytest.CaptureFixture[str], bridge_env: LoopbackFakes, tmp_path: Path
) -> None:
    (tmp_path / "bridge.sqlite3").unlink()
    code, out, err = run(capsys, "call", CALLEE)
    assert (code, out) == (1, "")
    assert err == (
        f"callbridge: no database at {tmp_path / 'bridge.sqlite3'} (DATABASE_URL): "
        "`callbridge db upgrade` creates it, and `callbridge serve` does too. For a running "
        "bridge, pass --url or set CALLBRIDGE_URL.\n"
    )
    assert not (tmp_path / "bridge.sqlite3").exists()
    assert bridge_env.twilio.calls == {}


def test_campaign_in_process_needs_the_database(
    capsys: pytest.CaptureFixture[str], bridge_env: LoopbackFakes, tmp_path: Path
) -> None:
    (tmp_path / "bridge.sqlite3").unlink()
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(f"phone\n{CALLEE}\n", encoding="utf-8")
    code, out, err = run(capsys, "campaign", str(contacts))
    assert (code, out) == (1, "")
    assert err.startswith(f"callbridge: no database at {tmp_path / 'bridge.sqlite3'} ")
    assert "campaign 'contacts.csv'" not in err  # refused before it was announced
    assert not (tmp_path / "bridge.sqlite3").exists()
    assert not (tmp_path / "contacts.results.csv").exists()


def test_callbridge_url_is_the_default_for_url(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    served_bridge: tuple[str, Upstreams],
) -> None:
    url, upstreams = served_bridge
    monkeypatch.setenv("CALLBRIDGE_URL", url)
    monkeypatch.setenv("BRIDGE_API_TOKEN", API_TOKEN)
    code, _, err = run(capsys, "call", CALLEE)
    assert (code, err) == (0, "")
    assert len(upstreams.twilio.calls) == 1
    # --url still wins; a bad CALLBRIDGE_URL is named as such.
    monkeypatch.setenv("CALLBRIDGE_URL", "bridge.example.com")
    code, _, err = run(capsys, "call", CALLEE)
    assert (code, err) == (
        2,
        "callbridge: CALLBRIDGE_URL='bridge.example.com': expected a URL like "
        "https://bridge.example.com\n",
    )
    code, _, err = run(capsys, "call", CALLEE, "--url", url)
    assert (code, err) == (0, "")
    assert len(upstreams.twilio.calls) == 2


def test_call_in_process_needs_the_api_token(
    capsys: pytest.CaptureFixture[str], bridge_env: LoopbackFakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BRIDGE_API_TOKEN")
    code, _, err = run(capsys, "call", CALLEE)
    assert code == 1
    assert "HTTP 503: BRIDGE_API_TOKEN is not set" in err
    assert bridge_env.twilio.calls == {}


def test_call_in_process_with_bad_settings(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_API_BASE", "twilio.test")
    code, out, err = run(capsys, "call", CALLEE)
    assert (code, out) == (1, "")
    assert "TWILIO_API_BASE: must be an http(s) URL" in err


# --- callbridge call --url ---------------------------------------------------------------------


def test_call_over_http(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    served_bridge: tuple[str, Upstreams],
) -> None:
    url, upstreams = served_bridge
    monkeypatch.setenv("BRIDGE_API_TOKEN", API_TOKEN)
    code, out, err = run(
        capsys, "call", CALLEE, "--url", url + "/", "--machine-message", "Call us back."
    )
    assert (code, err) == (0, "")
    (call,) = upstreams.twilio.calls.values()
    assert call.param("MachineDetection") == "DetectMessageEnd"
    assert out.splitlines()[1] == f"  call_sid:        {call.sid}"


def test_call_over_http_json(
    capsys: pytest.CaptureFixture[str], served_bridge: tuple[str, Upstreams]
) -> None:
    url, upstreams = served_bridge
    code, out, _ = run(
        capsys, "call", CALLEE, "--url", url, "--token", API_TOKEN, "--mode", "sip", "--json"
    )
    assert code == 0
    body = json.loads(out)
    assert body["mode"] == "sip" and body["sip_call_id"].startswith("sipcall_")
    assert upstreams.elevenlabs.outbound_requests[0]["path"] == "/v1/convai/sip-trunk/outbound-call"


@pytest.mark.parametrize(
    ("argv", "code", "error"),
    [
        (
            ["--token", "wrong"],
            1,
            "callbridge: call not placed: HTTP 401: Missing or invalid bearer",
        ),
        (
            [],
            2,
            "callbridge: --url needs the bridge's API token: set BRIDGE_API_TOKEN or pass --token",
        ),
    ],
)
def test_call_over_http_token(
    capsys: pytest.CaptureFixture[str],
    served_bridge: tuple[str, Upstreams],
    argv: list[str],
    code: int,
    error: str,
) -> None:
    url, upstreams = served_bridge
    result = run(capsys, "call", CALLEE, "--url", url, *argv)
    assert result[0] == code and result[1] == ""
    assert result[2].startswith(error)
    assert upstreams.twilio.calls == {}


@pytest.mark.parametrize(
    ("url", "code", "error"),
    [
        ("bridge.example.com", 2, "callbridge: --url 'bridge.example.com': expected a URL like "),
        ("ftp://bridge.example.com", 2, "callbridge: --url 'ftp://bridge.example.com': expected"),
        ("http://127.0.0.1:{port}", 1, "callbridge: call not placed: cannot reach the bridge"),
    ],
)
def test_call_over_http_bad_url(
    capsys: pytest.CaptureFixture[str], url: str, code: int, error: str
) -> None:
    url = url.format(port=free_port())  # a port nothing listens on, chosen when the test runs
    result = run(capsys, "call", CALLEE, "--url", url, "--token", API_TOKEN)
    assert result[:2] == (code, "")
    assert result[2].startswith(error)
    assert "may have been placed" not in result[2]  # never connected: certainly not placed


def test_plain_http_to_another_host_warns(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://0.0.0.0:{free_port()}"  # not a loopback name; nothing listens there
    code, _, err = run(capsys, "call", CALLEE, "--url", url, "--token", API_TOKEN)
    assert code == 1
    assert err.startswith(f"callbridge: warning: {url} is not https; the token travels in clear\n")


# --- callbridge campaign -----------------------------------------------------------------------


def test_campaign_over_http(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    served_bridge: tuple[str, Upstreams],
) -> None:
    url, upstreams = served_bridge
    monkeypatch.setenv("BRIDGE_API_TOKEN", API_TOKEN)
    contacts = tmp_path / "contacts.csv"
    contacts.write_bytes(CONTACTS.read_bytes())
    results = tmp_path / "out" / "results.csv"
    results.parent.mkdir()
    argv = ["campaign", str(contacts), "--local", "--url", url, "--rate", "50"]
    argv += ["--results", str(results)]
    code, out, err = run(capsys, *argv)
    assert (code, out) == (1, "")  # the premium-rate row failed
    lines = err.splitlines()
    assert lines[0] == (
        f"campaign 'contacts.csv': 7 row(s), 50 call(s)/s, at most 5 in flight, "
        f"results in {results}"
    )
    assert f"{contacts}:5: invalid: no phone number" in lines
    assert lines[-1] == "7/7 rows: 3 placed, 1 failed, 2 invalid, 1 skipped, 0 in flight"
    statuses = [row["status"] for row in results_rows(results)]
    assert statuses == ["placed", "placed", "invalid", "invalid", "failed", "skipped", "placed"]

    # Again: nothing is dialled twice; only the refused row is tried (and refused) again.
    code, _, err = run(capsys, *argv)
    assert code == 1
    assert err.splitlines()[-1] == (
        "7/7 rows: 3 placed (3 before this run), 1 failed, 2 invalid, 1 skipped, 0 in flight"
    )
    assert len(upstreams.twilio.calls) == 3


def test_campaign_in_process(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, bridge_env: LoopbackFakes
) -> None:
    contacts = tmp_path / "march.csv"
    contacts.write_text(
        "phone,name\n" + "".join(f"{n},P{i}\n" for i, n in enumerate(GOOD[:3])),
        encoding="utf-8",
    )
    code, out, err = run(
        capsys, "campaign", str(contacts), "--local", "--rate", "100", "--mode", "elevenlabs"
    )
    assert (code, out) == (0, ""), err
    rows = results_rows(tmp_path / "march.results.csv")
    assert [(row["number"], row["status"]) for row in rows] == [(n, "placed") for n in GOOD[:3]]
    assert all(row["conversation_id"].startswith("conv_") for row in rows)
    assert len(bridge_env.elevenlabs.outbound_requests) == 3


@pytest.mark.parametrize(
    ("contents", "extra", "error"),
    [
        ("name,number\nAda,+14155550101\n", [], "no 'phone' column in the header"),
        ("phone\n+14155550101\n", ["--results", "{contacts}"], "--results: must not be"),
        (None, [], "cannot read: No such file or directory"),
        (
            "phone\n+14155550101\n",
            ["--results", "{tmp}/notes.csv"],
            "notes.csv: exists and is not a results file of `callbridge campaign`",
        ),
    ],
)
def test_campaign_that_cannot_start(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    contents: str | None,
    extra: list[str],
    error: str,
) -> None:
    contacts = tmp_path / "contacts.csv"
    if contents is not None:
        contacts.write_text(contents, encoding="utf-8")
    notes = tmp_path / "notes.csv"
    notes.write_text("my,own,notes\n", encoding="utf-8")
    extra = [item.format(contacts=contacts, tmp=tmp_path) for item in extra]
    code, out, err = run(capsys, "campaign", str(contacts), "--local", "--token", "t", *extra)
    assert (code, out) == (2, "")
    assert err.startswith("callbridge: ") and error in err
    assert notes.read_text(encoding="utf-8") == "my,own,notes\n"
    assert not list(tmp_path.glob("*.sqlite3"))  # refused before a bridge was built


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--rate", "0", "'0': must be more than 0"),
        ("--rate", "fast", "'fast' is not a number"),
        ("--max-in-flight", "0", "'0': must be at least 1"),
        ("--mode", "fax", "invalid choice: 'fax'"),
    ],
)
def test_campaign_bad_options(
    capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["campaign", "contacts.csv", option, value])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def campaign_process(
    tmp_path: Path, url: str, numbers: list[str]
) -> tuple[subprocess.Popen[str], Path, list[str]]:
    """`callbridge campaign` calling `numbers` through the bridge at `url`, in a process of
    its own: the process, its results file, and its arguments (to run it again)."""
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("phone\n" + "".join(f"{n}\n" for n in numbers), encoding="utf-8")
    env = {name: value for name, value in os.environ.items() if name not in SETTINGS_VARIABLES}
    env["BRIDGE_API_TOKEN"] = API_TOKEN
    argv = ["campaign", str(contacts), "--local", "--url", url, "--rate", "5"]
    argv += ["--max-in-flight", "2"]
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return process, tmp_path / "contacts.results.csv", argv


def test_campaign_ctrl_c_then_resume(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, served_bridge: tuple[str, Upstreams]
) -> None:
    url, upstreams = served_bridge
    upstreams.twilio.latency = 0.2
    numbers = [f"+1415555{n:04d}" for n in range(300, 310)]
    process, results, argv = campaign_process(tmp_path, url, numbers)
    try:
        deadline = time.monotonic() + 30
        while not (results.exists() and ",placed," in results.read_text(encoding="utf-8")):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert "interrupted: no new calls; waiting for " in err
    assert f"callbridge: interrupted; results in {results}; run the same command to go on" in err
    first = results_rows(results)
    placed = [row["number"] for row in first if row["status"] == "placed"]
    assert 1 <= len(placed) < len(numbers)
    assert {row["status"] for row in first} == {"placed", "skipped"}
    assert len(upstreams.twilio.calls) == len(placed)  # in-flight calls were waited for

    code, _, err = run(capsys, *argv, "--rate", "100", "--token", API_TOKEN)
    assert code == 0, err
    assert upstreams.dialled() == dict.fromkeys(numbers, 1)


def test_a_second_run_of_a_campaign_refuses_to_start(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, served_bridge: tuple[str, Upstreams]
) -> None:
    url, upstreams = served_bridge
    upstreams.twilio.latency = 0.2
    numbers = [f"+1415555{n:04d}" for n in range(500, 508)]
    first, results, argv = campaign_process(tmp_path, url, numbers)
    try:
        deadline = time.monotonic() + 30
        while not results.exists():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        code, out, err = run(capsys, *argv, "--token", API_TOKEN)
        assert first.poll() is None  # the first run was still going
        _, first_err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert (code, out) == (1, "")
    assert err == (
        f"callbridge: {results}: another `callbridge campaign` (process {first.pid}) is using "
        "this results file; wait for it to finish, then run again (rows it placed are not "
        "dialled twice)\n"
    )
    assert first.returncode == 0, first_err
    assert [row["status"] for row in results_rows(results)] == ["placed"] * len(numbers)
    assert upstreams.dialled() == dict.fromkeys(numbers, 1)

    code, _, err = run(capsys, *argv, "--rate", "100", "--token", API_TOKEN)  # free again
    assert code == 0, err
    assert upstreams.dialled() == dict.fromkeys(numbers, 1)


def test_in_process_campaign_does_not_abandon_calls_in_flight(
    tmp_path: Path, bridge_env: LoopbackFakes
) -> None:
    bridge_env.twilio.latency = 1.0
    numbers = [f"+1415555{n:04d}" for n in range(400, 406)]
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("phone\n" + "".join(f"{n}\n" for n in numbers), encoding="utf-8")
    results = tmp_path / "contacts.results.csv"
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "campaign", str(contacts), "--local", "--rate", "10"],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (results.exists() and results.stat().st_size > 0):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.3)  # a few calls are now waiting on Twilio
        process.send_signal(signal.SIGINT)
        time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert "still waiting for " in err and "call(s) in flight" in err
    placed = [row["number"] for row in results_rows(results) if row["status"] == "placed"]
    assert placed and len(placed) < len(numbers)
    assert sorted(call.param("To") or "" for call in bridge_env.twilio.calls.values()) == placed


# --- help --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], ["call", "place one outbound call", "campaign", "one call per row of a CSV file"]),
        (["call"], ["NAME:=JSON", "--idempotency-key", "--machine-detection", "exit status"]),
        (["campaign"], ["'phone' column", "Idempotency-Key", "--max-in-flight", "exit status"]),
    ],
)
def test_help(capsys: pytest.CaptureFixture[str], argv: list[str], expected: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for text in expected:
        assert text in out
