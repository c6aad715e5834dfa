"""`callbridge campaign FILE` submitting a server-side campaign and following it, and
`callbridge campaign list|show|pause|resume|cancel|results`: in process on SQLite and
PostgreSQL, over HTTP (--url), and Ctrl-C while following (a process of its own)."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, update

from bridge.app import create_app
from bridge.cli.campaign_remote import campaign_options
from bridge.secret import Secret
from bridge.storage.database import Database
from bridge.storage.tables import campaign_recipients, campaigns, do_not_call
from tests.helpers import (
    API_TOKEN,
    SETTINGS_VARIABLES,
    california,
    clear_settings_environment,
    make_settings,
    run_cli,
    running_server,
    without_campaign_worker,
)

ROOT = Path(__file__).parent.parent


def numbers(count: int) -> list[str]:
    """California numbers of this test's own (the PostgreSQL database is shared)."""
    return [california() for _ in range(count)]


@pytest.fixture
def database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The environment of this machine's bridge: DATABASE_URL only (no token needed)."""
    clear_settings_environment(monkeypatch)
    monkeypatch.delenv("CALLBRIDGE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", database_url)
    # Recipients stay as the API left them: no in-process campaign worker dials them.
    monkeypatch.setenv("CAMPAIGN_WORKER", "false")
    yield database_url


def execute(database_url: str, statement: Any) -> list[Any]:
    async def go() -> list[Any]:
        database = Database(database_url)
        try:
            engine = await database.engine()
            async with engine.begin() as connection:
                result = await connection.execute(statement)
                return list(result) if result.returns_rows else []
        finally:
            await database.dispose()

    return asyncio.run(go())


def contacts(tmp_path: Path, rows: list[str], header: str = "phone,name") -> Path:
    path = tmp_path / f"c{uuid.uuid4().hex[:6]}.csv"
    path.write_text(header + "\n" + "".join(f"{row}\n" for row in rows), encoding="utf-8")
    return path


def submit(capsys: pytest.CaptureFixture[str], path: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli(capsys, "campaign", str(path), "--no-follow", *extra)


def test_submit_reports_rows_and_prints_the_id(
    capsys: pytest.CaptureFixture[str], database: str, tmp_path: Path
) -> None:
    a, b = numbers(2)
    path = contacts(tmp_path, [f"{a},Ada", "bad,Bob", f"{a},Again", f"{b},Cy"])
    code, out, err = submit(
        capsys,
        path,
        "--name",
        "spring",
        "--rate",
        "3",
        "--hours",
        "10:00-18:00",
        "--days",
        "mon,tue",
        "--retry-on",
        "busy,no-answer,failed",
        "--retry-attempts",
        "1",
        "--retry-delay",
        "600",
        "--ring-timeout",
        "20",
        "--mode",
        "elevenlabs",
    )
    assert code == 0, err
    campaign_id = out.strip()
    assert campaign_id.startswith("cmp_")
    lines = err.splitlines()
    assert lines[0] == f"{path}:3: invalid: phone 'bad' is not an E.164 number like +14155550123"
    assert lines[1] == f"{path}:4: skipped: duplicate of line 2"
    assert lines[2] == (
        f"campaign {campaign_id} 'spring': 2 recipient(s), 1 invalid, 1 duplicate(s) skipped"
    )
    assert f"callbridge campaign show {campaign_id} --follow" in lines[3]
    (row,) = execute(database, select(campaigns).where(campaigns.c.id == campaign_id))
    assert row.mode == "elevenlabs"
    options = row.options
    assert options["rate"] == 3 and options["ring_timeout"] == 20
    assert options["calling_hours"]["open"].startswith("10:00")
    assert options["calling_hours"]["days"] == ["mon", "tue"]
    assert options["retry"] == {"on": ["busy", "no-answer", "failed"], "attempts": 1, "delay": 600}


def test_list_show_pause_resume_cancel_results(
    capsys: pytest.CaptureFixture[str], database: str, tmp_path: Path
) -> None:
    a, b = numbers(2)
    code, out, err = submit(capsys, contacts(tmp_path, [f"{a},Ada", f"{b},Bob"]))
    assert code == 0, err
    campaign_id = out.strip()

    code, out, _ = run_cli(capsys, "campaign", "list", "--limit", "500")
    assert code == 0
    mine = [line for line in out.splitlines() if line.startswith(campaign_id)]
    assert len(mine) == 1 and " active " in mine[0] and " 0/2 " in mine[0]

    assert submit(capsys, contacts(tmp_path, numbers(1), header="phone"))[0] == 0
    code, out, err = run_cli(capsys, "campaign", "list", "--limit", "1")
    assert code == 0 and len(out.splitlines()) == 1
    cursor = err.split("--cursor ")[1].rstrip(")\n")
    code, more, _ = run_cli(capsys, "campaign", "list", "--limit", "1", "--cursor", cursor)
    assert code == 0 and more != out

    code, out, _ = run_cli(capsys, "campaign", "show", campaign_id)
    assert code == 0
    assert f"campaign   {campaign_id}" in out and "state      active" in out
    assert "recipients 2: pending 2" in out
    assert "hours      09:00-20:00 mon,tue,wed,thu,fri,sat (callee local time)" in out

    assert run_cli(capsys, "campaign", "pause", campaign_id)[1] == f"{campaign_id}: paused\n"
    code, out, err = run_cli(capsys, "campaign", "pause", campaign_id)
    assert (code, out) == (1, "")
    assert err == (
        f"callbridge: Cannot pause campaign '{campaign_id}': it is paused (only a campaign "
        "that is active can be paused).\n"
    )
    code, out, _ = run_cli(capsys, "campaign", "list", "--state", "paused", "--json")
    assert campaign_id in [item["id"] for item in json.loads(out)]
    assert run_cli(capsys, "campaign", "resume", campaign_id)[1] == f"{campaign_id}: active\n"
    assert run_cli(capsys, "campaign", "cancel", campaign_id)[1] == f"{campaign_id}: cancelled\n"

    code, out, _ = run_cli(capsys, "campaign", "results", campaign_id)
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(row["phone"], row["state"]) for row in rows] == [(a, "cancelled"), (b, "cancelled")]
    output = tmp_path / "results.csv"
    code, _, err = run_cli(capsys, "campaign", "results", campaign_id, "--output", str(output))
    assert code == 0 and f"in {output}" in err
    assert output.read_text(encoding="utf-8").startswith("line,id,phone,state")

    code, out, _ = run_cli(capsys, "campaign", "show", campaign_id, "--json")
    assert json.loads(out)["state"] == "cancelled"
    code, out, err = run_cli(capsys, "campaign", "show", "cmp_nope")
    assert (code, out, err) == (1, "", "callbridge: No campaign 'cmp_nope'.\n")


def test_follow_draws_progress_until_the_campaign_is_finished(
    capsys: pytest.CaptureFixture[str], database: str, tmp_path: Path
) -> None:
    phones = numbers(4)
    execute(
        database,
        insert(do_not_call).values(
            number=phones[3], reason="asked", source="api", created_at=datetime.now(UTC)
        ),
    )
    name = f"follow-{uuid.uuid4().hex[:8]}"
    outcomes = ["completed", "busy", "no_answer"]

    def worker() -> None:
        """Stands in for the campaign worker: settles one recipient every 50 ms."""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = execute(database, select(campaigns.c.id).where(campaigns.c.name == name))
            if found:
                break
            time.sleep(0.02)
        (campaign_id,) = found[0]
        for phone, state in zip(phones, outcomes, strict=False):
            time.sleep(0.05)
            execute(
                database,
                update(campaign_recipients)
                .where(campaign_recipients.c.campaign_id == campaign_id)
                .where(campaign_recipients.c.phone == phone)
                .values(state=state, attempts=1),
            )
        # As a worker's pass does once nothing is left to dial or settle.
        time.sleep(0.05)
        execute(
            database,
            update(campaigns).where(campaigns.c.id == campaign_id).values(state="finished"),
        )

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        path = contacts(tmp_path, phones, header="phone")
        code, out, err = run_cli(
            capsys, "campaign", str(path), "--name", name, "--interval", "0.02"
        )
    finally:
        thread.join()
    assert code == 0, err
    campaign_id = out.strip()
    lines = err.splitlines()
    assert "(1 on the do-not-call list)" in lines[0]
    progress = [line for line in lines if line.startswith("[")]
    assert progress[0].startswith("[") and "waiting" in progress[0]
    assert progress[-1] == (
        "[########################] 100% 4/4 final, 0 in progress, 0 waiting; finished"
    )
    assert lines[-2] == (
        f"campaign {campaign_id}: finished: completed 1, busy 1, no_answer 1, do_not_call 1"
    )
    assert lines[-1] == f"results: callbridge campaign results {campaign_id}"


def test_the_bridge_refuses_an_invalid_campaign(
    capsys: pytest.CaptureFixture[str], database: str, tmp_path: Path
) -> None:
    path = contacts(tmp_path, numbers(1), header="phone")
    code, out, err = submit(capsys, path, "--hours", "07:00-20:00")
    assert (code, out) == (2, "")
    assert "calling_hours must be within 08:00-21:00" in err
    assert "allow_outside_legal_hours" in err


def test_a_file_with_no_valid_row_is_refused_before_the_bridge(
    capsys: pytest.CaptureFixture[str], database: str, tmp_path: Path
) -> None:
    path = contacts(tmp_path, ["bad", ""], header="phone")
    code, out, err = submit(capsys, path)
    assert (code, out) == (1, "")
    assert err == (
        f"{path}:2: invalid: phone 'bad' is not an E.164 number like +14155550123\n"
        f"callbridge: {path}: no valid row: nothing to submit\n"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["show"], "campaign show: needs the campaign's id"),
        (["list", "cmp_x"], "campaign list: takes no id"),
        (["pause", "cmp_x", "--follow"], "--follow: only with `campaign show ID`"),
        (["{file}", "cmp_x"], "unexpected 'cmp_x'"),
        (["{file}", "--results", "r.csv"], "--results: only with --local"),
        (["{file}", "--record"], "--record: only with --local"),
        (["{file}", "--retry-on", "busy,later"], "--retry-on: later: expected some of"),
        (["{file}", "--hours", "9"], "--hours '9': expected OPEN-CLOSE"),
    ],
)
def test_usage_errors(
    capsys: pytest.CaptureFixture[str],
    database: str,
    tmp_path: Path,
    argv: list[str],
    message: str,
) -> None:
    path = contacts(tmp_path, numbers(1), header="phone")
    code, out, err = run_cli(capsys, "campaign", *[item.format(file=path) for item in argv])
    assert (code, out) == (2, "")
    assert err.startswith("callbridge: ") and message in err


def test_campaign_options_send_only_what_was_given() -> None:
    args = argparse.Namespace(
        agent="agent_x",
        mode=None,
        machine_detection=False,
        on_machine="message",
        machine_message="Call us back",
        ring_timeout=None,
        record=False,
        rate=None,
        max_in_flight=4,
        start_at="2026-03-02T09:00:00-08:00",
        hours=None,
        days=None,
        timezone="America/Chicago",
        allow_outside_legal_hours=False,
        retry_on="machine",
        retry_attempts=None,
        retry_delay=None,
    )
    assert campaign_options(args) == (
        {"agent_id": "agent_x"},
        {
            "machine_detection": True,
            "on_machine": "message",
            "machine_message": "Call us back",
            "max_in_flight": 4,
            "start_at": "2026-03-02T09:00:00-08:00",
            "timezone": "America/Chicago",
            "retry": {"on": ["machine"]},
        },
    )


def test_over_http_with_an_idempotency_key(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    database: str,
) -> None:
    settings = make_settings(
        bridge_api_token=Secret(API_TOKEN), database_url=database, **without_campaign_worker()
    )
    path = contacts(tmp_path, numbers(2), header="phone")
    key = uuid.uuid4().hex
    with running_server(create_app(settings)) as url:
        monkeypatch.setenv("BRIDGE_API_TOKEN", API_TOKEN)
        argv = ["--url", url, "--idempotency-key", key]
        code, first, err = submit(capsys, path, *argv)
        assert code == 0, err
        assert f"--follow --url {url}" in err
        code, again, err = submit(capsys, path, *argv)
        assert code == 0, err
        assert again == first
        code, out, _ = run_cli(capsys, "campaign", "show", first.strip(), "--url", url)
        assert code == 0 and "recipients 2: pending 2" in out


def test_ctrl_c_stops_following_not_the_campaign(database: str, tmp_path: Path) -> None:
    path = contacts(tmp_path, numbers(2), header="phone")
    env = {name: value for name, value in os.environ.items() if name not in SETTINGS_VARIABLES}
    env["DATABASE_URL"] = database
    env["CAMPAIGN_WORKER"] = "false"
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "campaign", str(path), "--interval", "0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        campaign_id = process.stdout.readline().strip()  # printed once it was submitted
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert campaign_id.startswith("cmp_"), err
    assert process.returncode == 130, err
    assert f"callbridge: detached; campaign {campaign_id} goes on in the bridge" in err
    assert f"callbridge campaign show {campaign_id} --follow" in err
    (row,) = execute(database, select(campaigns.c.state).where(campaigns.c.id == campaign_id))
    assert row.state == "active"
