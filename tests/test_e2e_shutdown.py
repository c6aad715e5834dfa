"""Graceful shutdown: on SIGTERM, calls in flight get their TwiML, and their call-log
entries reach the database; new requests are not served."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from bridge.fakes import FakeElevenLabs
from tests.helpers import (
    AUTH_TOKEN,
    ELEVENLABS_KEY,
    SETTINGS_VARIABLES,
    free_port,
    running_server,
    start_server_process,
    twilio_form,
    twilio_signature,
)

ROOT = Path(__file__).parent.parent
UPSTREAM_LATENCY = 2.0


def procfile(process_type: str) -> list[str]:
    """A Procfile line as Heroku runs it: through a shell, with $PORT expanded."""
    for line in (ROOT / "Procfile").read_text(encoding="utf-8").splitlines():
        kind, _, command = line.partition(":")
        if kind.strip() == process_type:
            return ["/bin/bash", "-c", "exec " + command.strip()]
    raise AssertionError(f"the Procfile has no {process_type} process")


@pytest.mark.parametrize(
    ("launcher", "workers"),
    [
        pytest.param("callbridge serve", 1, id="bridge-serve"),
        # The Procfile's web process, as Heroku runs it, with two workers.
        pytest.param("procfile", 2, id="procfile-two-workers"),
    ],
)
def test_sigterm_lets_calls_in_flight_finish_and_takes_no_new_work(
    launcher: str, workers: int, tmp_path: Path
) -> None:
    fake = FakeElevenLabs(api_key=ELEVENLABS_KEY, latency=UPSTREAM_LATENCY)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    database = tmp_path / "bridge.sqlite3"
    log = tmp_path / "server.log"
    with running_server(fake.app) as elevenlabs:
        env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
        env.update(
            ELEVENLABS_API_KEY=ELEVENLABS_KEY,
            ELEVENLABS_AGENT_ID="agent_default",
            ELEVENLABS_API_BASE=elevenlabs,
            TWILIO_AUTH_TOKEN=AUTH_TOKEN,
            PUBLIC_BASE_URL=base,
            DATABASE_URL=f"sqlite:///{database}",
            LOG_LEVEL="INFO",  # uvicorn's "Shutting down" tells when each worker stops
            PORT=str(port),
            WEB_CONCURRENCY=str(workers),
            TMPDIR=str(tmp_path),
        )
        if launcher == "callbridge serve":
            command = [sys.executable, "-m", "bridge.cli", "serve", "--host", "127.0.0.1"]
        else:
            subprocess.run(procfile("release"), env=env, check=True, capture_output=True)
            command = procfile("web")
        process = start_server_process(command, env, base, log)
        try:
            form = twilio_form(CallSid="CA" + "5" * 32)
            answered: list[httpx.Response] = []

            def place_call() -> None:
                answered.append(
                    httpx.post(
                        f"{base}/twilio/inbound",
                        data=form,
                        headers={
                            "X-Twilio-Signature": twilio_signature(f"{base}/twilio/inbound", form)
                        },
                        timeout=30,
                    )
                )

            caller = threading.Thread(target=place_call)
            caller.start()
            deadline = time.monotonic() + 10
            while not fake.requests:  # the call is waiting on register-call
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.02)
            process.send_signal(signal.SIGTERM)
            # Every worker has closed its listening socket (on a busy machine this
            # takes a while; a fixed pause raced with it).
            while log.read_text().count("Shutting down") < workers:
                assert time.monotonic() < deadline + 20, log.read_text()
                time.sleep(0.02)

            # No new work: a new request is refused or never answered.
            late = twilio_form(CallSid="CA" + "6" * 32)
            with pytest.raises(httpx.TransportError):
                httpx.post(
                    f"{base}/twilio/inbound",
                    data=late,
                    headers={
                        "X-Twilio-Signature": twilio_signature(f"{base}/twilio/inbound", late)
                    },
                    timeout=UPSTREAM_LATENCY + 1,
                )

            caller.join(timeout=30)
            # uvicorn re-raises the signal once it has shut down cleanly.
            assert process.wait(timeout=30) in (0, -signal.SIGTERM), log.read_text()
            assert "Traceback" not in log.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()

    assert len(answered) == 1
    response = answered[0]
    assert response.status_code == 200
    assert "<Connect>" in response.text and "<Stream" in response.text
    assert len(fake.requests) == 1  # the late call never reached the agent
    # The call-log writer batches inbound calls; it flushed them on the way out.
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT call_sid, outcome FROM calls").fetchall()
    assert rows == [("CA" + "5" * 32, "connected")]
