"""`callbridge sandbox`: the real bridge with the stand-in ElevenLabs and Twilio on loopback,
driven end to end: a simulated inbound call and outbound calls through the virtual
phone, down to the call log and its transcripts."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from defusedxml.ElementTree import fromstring

from bridge.call import Call
from bridge.routing import RoutingTable, parse_routes
from bridge.routing.schedule import WEEKDAYS
from bridge.sandbox import Sandbox, SandboxOptions, Timing
from bridge.sandbox.contacts import EXAMPLE_CONTACTS, contacts_file
from bridge.sandbox.credentials import load_or_create
from bridge.sandbox.numbers import (
    AFTER_HOURS_LINE,
    BLOCKED_CALLER,
    CALLER,
    EXAMPLE_ROUTES,
    OUR_NUMBER,
    SPANISH_LINE,
    UK_CALLER,
)
from bridge.sandbox.virtual_phone import CALLEES
from bridge.settings import Settings
from bridge.simulate import voice_webhook as simulate
from tests.helpers import SECRET_PIN, S3Server, clear_settings_environment, free_port, run_cli

ROOT = Path(__file__).parent.parent
Found = TypeVar("Found")


@dataclass
class Running:
    sandbox: Sandbox
    lines: list[str]
    opened: list[str] = field(default_factory=list)  # what it opened in "the browser"

    @property
    def url(self) -> str:
        return self.sandbox.bridge_url

    @property
    def bearer(self) -> dict[str, str]:
        assert self.sandbox.credentials is not None
        return {"authorization": f"Bearer {self.sandbox.credentials.bridge_api_token}"}

    def output(self) -> str:
        return "\n".join(self.lines)

    def call(self, key: str) -> dict[str, Any] | None:
        response = httpx.get(f"{self.url}/calls/{key}", headers=self.bearer)
        return response.json() if response.status_code == 200 else None


def eventually(probe: Callable[[], Found | None], what: str, timeout: float = 10.0) -> Found:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found is not None:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> Iterator[Running]:
    lines: list[str] = []
    options = SandboxOptions(
        directory=tmp_path_factory.mktemp("sandbox"),
        port=0,
        timing=Timing(ring=0.1, talk=0.3),
        # `--audio-store s3://…`: call audio in a real S3-compatible server.
        audio=s3_server.settings(prefix="sandbox"),
    )
    opened: list[str] = []
    running = Sandbox(options, out=lines.append, open_console=opened.append)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(running.run())
        except BaseException as exc:  # handed to the test below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert running.ready.wait(20) or errors, "the sandbox did not start"
    assert not errors, errors
    yield Running(running, lines, opened)
    running.stop()
    thread.join(15)
    assert not thread.is_alive() and not errors, errors
    assert lines[-1] == "sandbox stopped"


# --- a call comes in --------------------------------------------------------------


def test_simulated_inbound_call_end_to_end(
    sandbox: Running, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = sandbox.sandbox.credentials
    assert credentials is not None
    clear_settings_environment(monkeypatch)
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", credentials.twilio_auth_token)
    code, out, err = run_cli(
        capsys,
        "simulate",
        "inbound",
        "--url",
        f"{sandbox.url}/twilio/inbound",
        "--from",
        CALLER,
        "--to",
        OUR_NUMBER,
    )
    assert code == 0, err

    # The TwiML connects the caller to the stand-in ElevenLabs' stream.
    twiml = out[out.index("<?xml") : out.index("</Response>") + len("</Response>")]
    stream = fromstring(twiml).find("./Connect/Stream")
    assert stream is not None
    assert stream.get("url", "").startswith("wss://")
    assert "agent_id=agent_sandbox&conversation_signature=fake" in stream.get("url", "")
    parameter = stream.find("Parameter[@name='conversation_id']")
    assert parameter is not None
    conversation_id = parameter.get("value")
    (call_sid,) = re.findall(r"CallSid=(CA[0-9a-f]{32})", out)
    (registered,) = [
        body for body in sandbox.sandbox.elevenlabs.requests if body["from_number"] == CALLER
    ]
    assert registered["agent_id"] == "agent_sandbox" and registered["direction"] == "inbound"

    # The call log: routed by the "main line" rule, ended, and given its transcript.
    def logged() -> dict[str, Any] | None:
        record = sandbox.call(call_sid)
        done = record and record["status"] == "completed" and record["transcript"]
        return record if done else None

    record = eventually(logged, "the inbound call's record, completed with a transcript")
    assert record["direction"] == "inbound"
    assert record["rule"] == "main line" and record["outcome"] == "connected"
    assert record["conversation_id"] == conversation_id
    assert record["from"] == CALLER and record["to"] == OUR_NUMBER
    assert record["summary"].startswith("A simulated inbound conversation")
    assert [turn["role"] for turn in record["transcript"]] == ["agent", "user", "agent"]
    listed = httpx.get(
        f"{sandbox.url}/calls", params={"direction": "inbound"}, headers=sandbox.bearer
    )
    assert call_sid in [call["call_sid"] for call in listed.json()["calls"]]

    # What the sandbox showed: the decision and the register-call, secrets hidden.
    shown = sandbox.output()
    assert f"call_sid={call_sid}" in shown and 'rule="main line"' in shown
    assert "register-call agent=agent_sandbox" in shown
    assert "secret__crm_token='***'" in shown
    assert "sandbox-crm" not in shown
    assert "sandbox-crm" not in json.dumps(record)
    watching = shown[shown.index("Watching") :]
    assert credentials.twilio_auth_token not in watching  # the banner's export line only


def test_a_rejected_inbound_call_ends_busy(
    sandbox: Running, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = sandbox.sandbox.credentials
    assert credentials is not None
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", credentials.twilio_auth_token)
    code, out, _ = run_cli(
        capsys,
        "simulate",
        "inbound",
        "--url",
        sandbox.url,
        "--from",
        BLOCKED_CALLER,
        "--to",
        OUR_NUMBER,
    )
    assert code == 0
    assert "Twilio would: Reject (busy)" in out
    (call_sid,) = re.findall(r"CallSid=(CA[0-9a-f]{32})", out)
    record = eventually(
        lambda: (
            ((r := sandbox.call(call_sid)) and r["status"] == "busy" and r["rule"] and r) or None
        ),
        "the rejected call's record",
    )
    assert record["rule"] == "blocklist" and record["action"] == "reject"


def test_forward_no_answer_then_a_voicemail_in_the_audio_store(
    sandbox: Running,
    s3_server: S3Server,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    credentials = sandbox.sandbox.credentials
    assert credentials is not None
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", credentials.twilio_auth_token)
    code, out, err = run_cli(
        capsys,
        "simulate",
        "inbound",
        "--url",
        sandbox.url,
        "--from",
        CALLER,
        "--to",
        AFTER_HOURS_LINE,
    )
    assert code == 0, err
    (call_sid,) = re.findall(r"CallSid=(CA[0-9a-f]{32})", out)

    # The desk rings out, the caller leaves a message, the bridge fetches it.
    def stored() -> dict[str, Any] | None:
        record = sandbox.call(call_sid)
        events = record["events"] if record else []
        done = any(event.get("data", {}).get("status") == "stored" for event in events)
        return record if done and record and record["status"] == "completed" else None

    record = eventually(stored, "the voicemail, stored")
    assert record["rule"] == "after hours" and record["action"] == "forward"
    kinds = [event["kind"] for event in record["events"]]
    assert "dial_result" in kinds and "voicemail" in kinds
    (dial,) = [event for event in record["events"] if event["kind"] == "dial_result"]
    assert dial["data"]["status"] == "no-answer"
    (recording,) = sandbox.sandbox.twilio.recordings.items.values()
    assert recording.call_sid == call_sid
    name = f"sandbox/recordings/{recording.sid}.mp3"
    assert s3_server.objects("sandbox/recordings/")[name] == recording.audio

    # Listened to from the call log: the API's link redirects to the bucket.
    (voicemail,) = [item for item in record["audio"] if item["kind"] == "voicemail"]
    assert voicemail["file"] == f"{recording.sid}.mp3"
    assert voicemail["sha256"] == hashlib.sha256(recording.audio).hexdigest()
    link = httpx.get(f"{sandbox.url}{voicemail['url']}", headers=sandbox.bearer)
    assert link.status_code == 307
    assert httpx.get(link.headers["location"]).content == recording.audio
    texts = [step["text"] for step in record["timeline"]]
    assert any(text.startswith("voicemail") and "with audio" in text for text in texts), texts
    listed = httpx.get(
        f"{sandbox.url}/calls", params={"has_voicemail": "true"}, headers=sandbox.bearer
    )
    assert call_sid in [call["call_sid"] for call in listed.json()["calls"]]
    # And from the command line, with the same link.
    monkeypatch.setenv("BRIDGE_API_TOKEN", credentials.bridge_api_token)
    code, out, err = run_cli(capsys, "calls", "show", call_sid, "--url", sandbox.url)
    assert code == 0, err
    assert f"{sandbox.url}{voicemail['url']}" in out
    shown = sandbox.output()
    assert "DialCallStatus=no-answer" in shown
    assert f"recording {recording.sid}" in shown
    assert "-> 200 audio" in shown


def test_a_forward_answered_by_a_person(
    sandbox: Running, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    credentials = sandbox.sandbox.credentials
    assert credentials is not None
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", credentials.twilio_auth_token)
    code, out, err = run_cli(
        capsys,
        "simulate",
        "inbound",
        "--url",
        sandbox.url,
        "--from",
        UK_CALLER,
        "--to",
        OUR_NUMBER,
    )
    assert code == 0, err
    (call_sid,) = re.findall(r"CallSid=(CA[0-9a-f]{32})", out)

    def answered() -> dict[str, Any] | None:
        record = sandbox.call(call_sid)
        results = [e for e in (record or {}).get("events", []) if e["kind"] == "dial_result"]
        return results[0] if results and record and record["status"] == "completed" else None

    dial = eventually(answered, "the desk's dial result")
    assert dial["data"]["status"] == "completed" and dial["data"]["duration"] >= 1
    assert "DialCallStatus=completed" in sandbox.output()


def test_an_inbound_call_can_be_transferred(tmp_path: Path) -> None:
    lines: list[str] = []
    options = SandboxOptions(directory=tmp_path, port=0, timing=Timing(ring=0.1, talk=3.0))
    running = Sandbox(options, out=lines.append)
    thread = threading.Thread(target=lambda: asyncio.run(running.run()), daemon=True)
    thread.start()
    assert running.ready.wait(20)
    try:
        sandbox = Running(running, lines)
        assert running.credentials is not None
        token = running.credentials.twilio_auth_token
        form = simulate.voice_form(from_number=CALLER, to_number=OUR_NUMBER)
        url = f"{sandbox.url}/twilio/inbound"

        async def call() -> None:
            async with httpx.AsyncClient() as client:
                delivered = await simulate.deliver(client, url, form, auth_token=token)
                assert delivered.status == 200

        asyncio.run(call())
        sid = form["CallSid"]
        eventually(lambda: running.twilio.calls.get(sid), "the call at the stand-in Twilio")
        response = httpx.post(
            f"{sandbox.url}/calls/{sid}/transfer",
            json={"to": "+14155550111", "message": "Moving you to a person."},
            headers=sandbox.bearer,
        )
        assert response.status_code == 200, response.text
        eventually(
            lambda: "transferred: " in sandbox.output() or None, "the phone following the transfer"
        )
        record = eventually(
            lambda: ((r := sandbox.call(sid)) and r["status"] == "completed" and r) or None,
            "the transferred call, completed",
        )
        assert any(event["kind"] == "transfer" for event in record["events"])
    finally:
        running.stop()
        thread.join(15)


# --- a call goes out ---------------------------------------------------------------


def test_outbound_call_end_to_end(sandbox: Running) -> None:
    placed = httpx.post(
        f"{sandbox.url}/calls",
        json={"to": CALLER, "dynamic_variables": {"name": "Ada", "secret__pin": SECRET_PIN}},
        headers=sandbox.bearer,
    )
    assert placed.status_code == 201, placed.text
    assert placed.json()["mode"] == "twilio"
    call_sid = placed.json()["call_sid"]

    # The stand-in Twilio was asked to create the call, with the bridge's callbacks.
    created = sandbox.sandbox.twilio.calls[call_sid]
    assert created.param("To") == CALLER and created.param("From") == OUR_NUMBER
    assert (created.param("Url") or "").startswith(f"{sandbox.url}/twilio/outbound-answer?call=")
    assert created.param("StatusCallback") == f"{sandbox.url}/twilio/status"

    def finished() -> dict[str, Any] | None:
        record = sandbox.call(call_sid)
        done = record and record["status"] == "completed" and record["transcript"]
        return record if done else None

    record = eventually(finished, "the outbound call, completed with a transcript")
    statuses = [e["data"]["status"] for e in record["events"] if e["kind"] == "status"]
    assert statuses == ["initiated", "ringing", "in-progress", "completed"]
    (answer,) = [e["data"] for e in record["events"] if e["kind"] == "outbound_answer"]
    assert answer["outcome"] == "connected" and answer["agent_id"] == "agent_sandbox"
    assert record["conversation_id"] == answer["conversation_id"]
    assert record["duration"] is not None and record["answered_at"] and record["ended_at"]
    assert record["transcript"][0]["message"] == "Hello! How can I help you today?"
    assert created.resource["status"] == "completed"

    # register-call got the secret; nothing shown or stored has it.
    (registered,) = [
        body for body in sandbox.sandbox.elevenlabs.requests if body["to_number"] == CALLER
    ]
    variables = registered["conversation_initiation_client_data"]["dynamic_variables"]
    assert variables == {"name": "Ada", "secret__pin": SECRET_PIN}
    shown = sandbox.output()
    assert f"create call {OUR_NUMBER} -> {CALLER}" in shown
    assert f"{call_sid} answered by a person" in shown
    assert "secret__pin='***'" in shown
    assert SECRET_PIN not in shown and SECRET_PIN not in json.dumps(record)


@pytest.mark.parametrize(
    ("callee", "options", "status", "answered_by"),
    [
        ("+14155550124", {}, "busy", None),
        ("+14155550125", {}, "no-answer", None),
        (
            "+14155550126",
            {
                "machine_detection": True,
                "on_machine": "message",
                "machine_message": "Please call us back.",
            },
            "completed",
            "machine_end_beep",
        ),
        ("+14155550126", {"machine_detection": True}, "completed", "machine_start"),
    ],
)
def test_the_virtual_phone_plays_each_kind_of_callee(
    sandbox: Running, callee: str, options: dict[str, Any], status: str, answered_by: str | None
) -> None:
    placed = httpx.post(
        f"{sandbox.url}/calls", json={"to": callee, **options}, headers=sandbox.bearer
    )
    assert placed.status_code == 201, placed.text
    call_sid = placed.json()["call_sid"]
    record = eventually(
        lambda: ((r := sandbox.call(call_sid)) and r["status"] == status and r) or None,
        f"status {status}",
    )
    assert record["answered_by"] == answered_by
    answers = [e["data"] for e in record["events"] if e["kind"] == "outbound_answer"]
    if answered_by is None:
        assert answers == []  # nobody answered: no TwiML was asked for
    else:
        (answer,) = answers
        assert answer["outcome"] == "handled"  # a machine: hung up on, or left a message


def test_native_elevenlabs_mode_gets_a_transcript(sandbox: Running) -> None:
    placed = httpx.post(
        f"{sandbox.url}/calls", json={"to": CALLER, "mode": "elevenlabs"}, headers=sandbox.bearer
    )
    assert placed.status_code == 201, placed.text
    conversation_id = placed.json()["conversation_id"]
    record = eventually(
        lambda: ((r := sandbox.call(conversation_id)) and r["transcript"] and r) or None,
        "the transcript of a native outbound call",
    )
    assert record["mode"] == "elevenlabs"
    assert "outbound-call (twilio) agent=agent_sandbox" in sandbox.output()


# --- a campaign ---------------------------------------------------------------------

# The banner's campaign, with a shorter retry delay.
CAMPAIGN_OPTIONS = {
    "machine_detection": True,
    "retry": {"on": ["busy", "no-answer", "machine"], "attempts": 1, "delay": 1},
    "calling_hours": {"open": "00:00", "close": "23:59", "days": list(WEEKDAYS)},
    "allow_outside_legal_hours": True,
}
NUMBER_OF = {behaviour: number for number, behaviour in CALLEES.items()}
# Each contact's final state and its attempts' outcomes: the person once, the rest
# tried again once.
PLAYED = {
    CALLER: ("completed", ["completed"]),
    NUMBER_OF["busy"]: ("busy", ["busy", "busy"]),
    NUMBER_OF["no-answer"]: ("no_answer", ["no-answer", "no-answer"]),
    NUMBER_OF["machine"]: ("machine", ["machine", "machine"]),
}


def finished_campaign(sandbox: Running, campaign_id: str) -> list[dict[str, Any]]:
    """The campaign's recipients once it has finished (or failed the test after 30 s)."""

    def finished() -> dict[str, Any] | None:
        shown = httpx.get(f"{sandbox.url}/campaigns/{campaign_id}", headers=sandbox.bearer)
        return shown.json() if shown.json()["state"] in ("finished", "cancelled") else None

    campaign = eventually(finished, f"campaign {campaign_id} to finish", timeout=30)
    assert campaign["state"] == "finished"
    listed = httpx.get(
        f"{sandbox.url}/campaigns/{campaign_id}/recipients", headers=sandbox.bearer
    ).json()
    recipients: list[dict[str, Any]] = listed["recipients"]
    return recipients


def assert_played_as_planned(sandbox: Running, recipients: list[dict[str, Any]]) -> None:
    played = {
        item["phone"]: (item["state"], [attempt["outcome"] for attempt in item["attempt_log"]])
        for item in recipients
    }
    assert played == PLAYED
    sids = [attempt["call_sid"] for item in recipients for attempt in item["attempt_log"]]
    assert len(set(sids)) == len(sids) == 7
    for item in recipients:
        for attempt in item["attempt_log"]:  # each a call the virtual phone played
            call = sandbox.sandbox.twilio.calls[attempt["call_sid"]]
            assert call.param("To") == item["phone"]
            assert call.param("MachineDetection") == "Enable"


def test_the_sandbox_runs_its_contacts_as_a_campaign(sandbox: Running) -> None:
    contacts = sandbox.sandbox.contacts_file
    assert contacts == sandbox.sandbox.options.directory / "contacts.csv"
    assert contacts.read_text() == EXAMPLE_CONTACTS
    created = httpx.post(
        f"{sandbox.url}/campaigns",
        params={"name": "sandbox demo", "options": json.dumps(CAMPAIGN_OPTIONS)},
        content=contacts.read_bytes(),
        headers={**sandbox.bearer, "content-type": "text/csv"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["accepted"] == 4 and created.json()["invalid_count"] == 0
    campaign_id = created.json()["id"]

    recipients = finished_campaign(sandbox, campaign_id)
    assert_played_as_planned(sandbox, recipients)
    person = next(item for item in recipients if item["phone"] == CALLER)
    assert person["variables"] == {"name": "Ada", "plays": "answers"}
    # The watch shows each campaign call as it is placed, and how each contact ended.
    shown = sandbox.output()
    for item in recipients:
        for attempt in item["attempt_log"]:
            assert f"create call {OUR_NUMBER} -> {item['phone']}" in shown
            assert (
                f"event=campaign_dialled campaign_id={campaign_id} recipient={item['id']} "
                f"attempt={attempt['attempt']} " in shown
            )
    eventually(
        lambda: f"phone='{NUMBER_OF['busy']}' state='busy' attempts=2" in sandbox.output() or None,
        "the demo receiver's line for the busy contact",
    )


def test_the_banners_campaign_line_works_as_pasted(
    sandbox: Running, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (line,) = [line for line in sandbox.lines if line.startswith("  callbridge campaign ")]
    argv = shlex.split(line)
    assert argv[:3] == ["callbridge", "campaign", str(sandbox.sandbox.contacts_file)]
    # In the other terminal, after `. DIR/env.sh`.
    clear_settings_environment(monkeypatch)
    env_file = sandbox.sandbox.options.directory / "env.sh"
    for name, value in re.findall(r"^export (\w+)=(\S+)$", env_file.read_text(), re.M):
        monkeypatch.setenv(name, value)
    code, out, err = run_cli(capsys, *argv[1:], "--interval", "0.2")
    assert code == 0, err
    campaign_id = out.strip()
    assert f"campaign {campaign_id}: finished" in err
    assert_played_as_planned(sandbox, finished_campaign(sandbox, campaign_id))


# --- the sandbox itself ---------------------------------------------------------------


def test_the_banner_says_what_to_run(sandbox: Running) -> None:
    credentials = sandbox.sandbox.credentials
    assert credentials is not None
    shown = sandbox.output()
    directory = sandbox.sandbox.options.directory
    assert f"export TWILIO_AUTH_TOKEN={credentials.twilio_auth_token}" in shown
    assert f"export BRIDGE_API_TOKEN={credentials.bridge_api_token}" in shown
    assert f". {directory / 'env.sh'}" in shown
    assert (
        f"callbridge simulate inbound --url {sandbox.url}/twilio/inbound --from {CALLER}"
        f" --to {OUR_NUMBER}" in shown
    )
    assert f"callbridge call {CALLER} --url {sandbox.url}" in shown
    assert f"callbridge calls --url {sandbox.url}" in shown
    # The console: opened once it answers, and named right under the title.
    # Signed in by the page's script from the fragment (tests/test_web_ui_browser.py).
    assert sandbox.opened == [f"{sandbox.url}/ui#token={credentials.bridge_api_token}"]
    title = sandbox.lines.index(
        next(line for line in sandbox.lines if "callbridge sandbox:" in line)
    )
    assert sandbox.lines[title + 1].startswith(f"Console: {sandbox.url}/ui ")
    # Secrets that only the bridge and the stand-ins share are not shown.
    assert credentials.elevenlabs_api_key not in shown
    assert credentials.elevenlabs_webhook_secret not in shown
    env_file = directory / "env.sh"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert f"export TWILIO_AUTH_TOKEN={credentials.twilio_auth_token}\n" in env_file.read_text()


def test_the_contacts_file_is_written_once(tmp_path: Path) -> None:
    path = contacts_file(tmp_path)
    assert path == tmp_path / "contacts.csv" and path.read_text() == EXAMPLE_CONTACTS
    path.write_text("phone,name\n+14155550123,Me\n")
    assert contacts_file(tmp_path).read_text() == "phone,name\n+14155550123,Me\n"


@pytest.mark.parametrize(("flags", "opened"), [((), True), (("--no-browser",), False)])
def test_the_command_opens_the_console_unless_told_not_to(
    flags: tuple[str, ...],
    opened: bool,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import bridge.sandbox
    from bridge.sandbox import browser

    urls: list[str] = []
    started: list[Sandbox] = []
    monkeypatch.setattr(browser, "open_console", urls.append)  # never a real browser

    class StopsOnceShown(Sandbox):
        def _show_banner(self, settings: Settings, table: RoutingTable) -> None:
            super()._show_banner(settings, table)
            started.append(self)
            self.stop()

    monkeypatch.setattr(bridge.sandbox, "Sandbox", StopsOnceShown)
    code, out, err = run_cli(capsys, "sandbox", "--port", "0", "--dir", str(tmp_path), *flags)
    assert code == 0, err
    (sandbox,) = started
    assert sandbox.credentials is not None
    token = sandbox.credentials.bridge_api_token
    assert urls == ([f"{sandbox.bridge_url}/ui#token={token}"] if opened else [])
    assert f"Console: {sandbox.bridge_url}/ui " in out


def test_credentials_are_kept_per_directory(tmp_path: Path) -> None:
    first = load_or_create(tmp_path)
    assert load_or_create(tmp_path) == first
    other = tmp_path / "other"
    other.mkdir()
    assert load_or_create(other).bridge_api_token != first.bridge_api_token
    (tmp_path / "credentials.json").write_text("{not json")
    assert load_or_create(tmp_path) != first  # unreadable: made anew


@pytest.mark.parametrize(
    ("caller", "called", "rule"),
    [
        (CALLER, OUR_NUMBER, "main line"),
        ("anonymous", OUR_NUMBER, "withheld numbers"),
        (BLOCKED_CALLER, OUR_NUMBER, "blocklist"),
        (UK_CALLER, OUR_NUMBER, "uk callers"),
        (CALLER, SPANISH_LINE, "spanish line"),
        (CALLER, AFTER_HOURS_LINE, "after hours"),
        (CALLER, "+14155550177", "default"),
    ],
)
def test_the_example_rules_route_as_the_banner_says(caller: str, called: str, rule: str) -> None:
    table = parse_routes(EXAMPLE_ROUTES, source="sandbox")
    call = Call(call_sid="CA1", from_number=caller, to_number=called)
    assert table.choose(call, datetime.now(UTC)).rule == rule


def test_the_example_files_own_comments_are_right() -> None:
    table = parse_routes(EXAMPLE_ROUTES, source="sandbox")
    examples = re.findall(r"--from (\S+) --to (\S+) +-> (.+)", EXAMPLE_ROUTES)
    assert len(examples) == 6
    for caller, called, rule in examples:
        call = Call(call_sid="CA1", from_number=caller, to_number=called)
        assert table.choose(call, datetime.now(UTC)).rule == rule


def test_a_taken_port_is_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run_cli(capsys, "sandbox", "--port", str(port), "--dir", str(tmp_path))
    assert code == 1
    assert f"port {port} on 127.0.0.1 is not free" in err and "--port" in err


def test_bad_routes_are_reported(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    routes = tmp_path / "routes.toml"
    routes.write_text('[[rules]]\nname = "x"\naction = "transfer"\n')
    code, _, err = run_cli(capsys, "sandbox", "--dir", str(tmp_path), "--routes", str(routes))
    assert code == 1 and "routes.toml" in err
    code, _, err = run_cli(capsys, "sandbox", "--routes", str(tmp_path / "missing.toml"))
    assert code == 2 and "--routes" in err


def test_a_bad_audio_store_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "sandbox", "--audio-store", "ftp://bucket")
    assert code == 2 and "--audio-store" in err and "AUDIO_STORE: must be file://PATH" in err


def test_the_audio_store_takes_only_the_aws_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.cli.sandbox import _audio
    from bridge.sandbox.config import sandbox_settings
    from bridge.sandbox.credentials import Credentials

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("ELEVENLABS_API_KEY", "a-real-key-left-in-the-shell")
    audio = _audio("s3://callbridge-audio/sandbox")
    assert audio is not None and not audio.elevenlabs_api_key
    settings = sandbox_settings(
        Credentials.new(),
        bridge_url="http://127.0.0.1:1",
        elevenlabs_url="http://127.0.0.1:2",
        twilio_url="http://127.0.0.1:3",
        directory=Path("sb"),
        routes_file=Path("sb/routes.toml"),
        audio=audio,
    )
    assert settings.audio_store_url == "s3://callbridge-audio/sandbox"
    assert settings.aws_access_key_id == "AKIDEXAMPLE"
    assert settings.aws_endpoint_url == "http://127.0.0.1:9000"
    assert settings.elevenlabs_api_key.reveal() != "a-real-key-left-in-the-shell"


def test_the_command_runs_until_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("TWILIO_")}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "bridge.cli", "sandbox", "--port", str(port), "--dir", "sb"),
            "--no-browser",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def healthy() -> bool | None:
            if process.poll() is not None:
                raise AssertionError(process.communicate()[0])
            try:
                return httpx.get(f"{base}/healthz").status_code == 200 or None
            except httpx.TransportError:
                return None

        eventually(healthy, "the sandbox's /healthz", timeout=20)
        # The banner's env file works for a command in another terminal.
        exports = dict(
            re.findall(r"^export (\w+)=(\S+)$", (tmp_path / "sb" / "env.sh").read_text(), re.M)
        )
        bearer = {"authorization": f"Bearer {exports['BRIDGE_API_TOKEN']}"}
        health = httpx.get(f"{base}/healthz", headers=bearer).json()
        # Everything is configured (plain http on loopback is fine).
        assert health["problems"] == []
        assert health["routes"]["rules"] == 6
        simulated = subprocess.run(
            [
                sys.executable,
                "-m",
                "bridge.cli",
                "simulate",
                "inbound",
                "--url",
                base,
                "--from",
                "anonymous",
                "--to",
                OUR_NUMBER,
            ],
            env={**env, **exports},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert simulated.returncode == 0, simulated.stderr
        assert (
            "Twilio would: Say 'We do not accept calls from withheld numbers." in simulated.stdout
        )
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, out
    assert "callbridge sandbox" in out and "Watching" in out
    assert 'rule="withheld numbers" action=say' in out
    assert out.rstrip().endswith("sandbox stopped")
    assert (tmp_path / "sb" / "callbridge.sqlite3").exists()
    assert (tmp_path / "sb" / "routes.toml").read_text() == EXAMPLE_ROUTES
    assert (tmp_path / "sb" / "contacts.csv").read_text() == EXAMPLE_CONTACTS
