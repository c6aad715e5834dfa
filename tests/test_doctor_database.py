"""`callbridge doctor` and the database: DATABASE_URL reached and its schema current,
no database file created on the way; with no settings at all, a pointer to the sandbox."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.doctor import Options, Report, render_text, run_doctor
from bridge.doctor.results import CheckResult
from bridge.storage.migrate import head_revision

NAME = "settings.DATABASE_URL"
# Where the doctor has nothing on the network to look at.
OFFLINE = Options(skip_public=True, timeout=3)


def run(environ: dict[str, str]) -> Report:
    return asyncio.run(run_doctor(environ, OFFLINE))


def database_line(report: Report) -> CheckResult:
    (found,) = [check for check in report.checks if check.name == NAME]
    return found


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_without_any_settings_the_doctor_points_to_the_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    report = run({})
    first = report.checks[0]
    assert (first.name, first.status) == ("settings", "fail")
    assert "`callbridge sandbox`" in (first.fix or "")
    database = database_line(report)
    assert database.status == "pass"
    assert database.detail == (
        "sqlite:///./callbridge.sqlite3: no database file yet; `callbridge db upgrade` "
        f"(or `callbridge serve`) creates {tmp_path / 'callbridge.sqlite3'}"
    )
    assert list(tmp_path.iterdir()) == []
    text = render_text(report)
    assert text.startswith("FAIL  settings: none of the bridge's variables is set")
    assert "fix: to try callbridge on this machine without any account, run" in text


def test_the_pointer_is_not_shown_once_anything_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    report = run({"ELEVENLABS_AGENT_ID": "agent_1"})
    assert "settings" not in [check.name for check in report.checks]


def test_a_migrated_database_passes() -> None:
    # The working directory's ./callbridge.sqlite3 is migrated (see conftest).
    database = database_line(run({}))
    assert (database.status, database.detail) == (
        "pass",
        f"sqlite:///./callbridge.sqlite3: reachable, schema up to date ({head_revision()})",
    )


def test_a_migrated_postgresql_database_passes(postgres_url: str) -> None:
    database = database_line(run({"DATABASE_URL": postgres_url}))
    assert database.status == "pass", database.detail
    assert database.detail.endswith(f"reachable, schema up to date ({head_revision()})")


@pytest.mark.parametrize(
    ("name", "words", "fix"),
    [
        pytest.param(
            "empty.sqlite3", "reachable, but the database has no schema yet", "db upgrade"
        ),
        pytest.param("no/such/folder/db.sqlite3", "the folder", "DATABASE_URL"),
    ],
)
def test_sqlite_problems(tmp_path: Path, name: str, words: str, fix: str) -> None:
    if name == "empty.sqlite3":
        sqlite3.connect(tmp_path / name).close()
    before = sorted(tmp_path.rglob("*"))
    database = database_line(run({"DATABASE_URL": f"sqlite:///{tmp_path / name}"}))
    assert database.status == "fail"
    assert words in database.detail
    assert fix in (database.fix or "")
    assert sorted(tmp_path.rglob("*")) == before


def test_an_unreachable_database_fails_without_showing_its_password() -> None:
    port = closed_port()
    report = run({"DATABASE_URL": f"postgresql://bridge:hunter2-secret@127.0.0.1:{port}/calls"})
    database = database_line(report)
    assert database.status == "fail"
    assert database.detail.startswith(
        f"postgresql://bridge:***@127.0.0.1:{port}/calls: could not connect: "
    )
    assert "hunter2-secret" not in render_text(report)


def test_not_a_database_url() -> None:
    database = database_line(run({"DATABASE_URL": "callbridge.sqlite3"}))
    assert database.status == "fail"
    assert database.detail.startswith("callbridge.sqlite3 is not a database URL")


def test_the_command_creates_no_database_file(tmp_path: Path) -> None:
    settings_prefixes = ("ELEVENLABS_", "TWILIO_", "BRIDGE_", "PUBLIC_", "DATABASE_", "ROUTES_")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(settings_prefixes)}
    done = subprocess.run(
        [sys.executable, "-m", "bridge", "doctor", "--skip-public"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "run `callbridge sandbox`" in done.stdout
    assert "PASS  settings DATABASE_URL: sqlite:///./callbridge.sqlite3: no database file" in (
        done.stdout
    )
    assert list(tmp_path.iterdir()) == []
