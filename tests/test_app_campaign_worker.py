"""The campaign worker inside the server (CAMPAIGN_WORKER, `callbridge serve
--no-worker`), and how Heroku runs it (the Procfile's worker process, app.json)."""

from __future__ import annotations

import asyncio
import json
import shlex
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.campaigns.options import CampaignOptions
from bridge.campaigns.store import NewRecipient, create_campaign
from bridge.settings import Settings
from bridge.storage.database import Database
from bridge.storage.tables import campaign_recipients
from tests.helpers import (
    Upstreams,
    clear_settings_environment,
    outbound_settings,
    run_cli,
)

ROOT = Path(__file__).parent.parent
CALLEES = ["+14155550111", "+14155550112"]
# Open at any hour, so the test does not depend on when it runs.
ALWAYS = {
    "calling_hours": {
        "open": "00:00",
        "close": "23:59",
        "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
    },
    "allow_outside_legal_hours": True,
    "timezone": "UTC",
    "rate": 50,
}


def add_campaign(database_url: str) -> None:
    async def add() -> None:
        database = Database(database_url)
        engine = await database.engine()
        async with engine.begin() as connection:
            await create_campaign(
                connection,
                name="in the server",
                agent_id="agent_c",
                options=CampaignOptions.model_validate(ALWAYS),
                recipients=[
                    NewRecipient(line=n + 2, phone=number, time_zones=("UTC",))
                    for n, number in enumerate(CALLEES)
                ],
                now=datetime.now(UTC),
            )
        await database.dispose()

    asyncio.run(add())


def states(database_url: str) -> list[str]:
    async def read() -> list[str]:
        database = Database(database_url)
        engine = await database.engine()
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(campaign_recipients.c.state).order_by(campaign_recipients.c.id)
            )
            found = [row.state for row in rows]
        await database.dispose()
        return found

    return asyncio.run(read())


def test_the_server_runs_a_campaign_worker_by_default(tmp_path: Path) -> None:
    assert Settings().campaign_worker is True
    upstreams = Upstreams()
    settings = outbound_settings(tmp_path, campaign_worker=True)
    add_campaign(settings.database_url)
    app = create_app(settings, transport=upstreams.transport)

    with TestClient(app):
        deadline = time.monotonic() + 10
        while sum(upstreams.dialled().values()) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)

    assert upstreams.dialled() == {number: 1 for number in CALLEES}
    assert states(settings.database_url) == ["in_progress", "in_progress"]


def test_campaign_worker_false_leaves_campaigns_to_the_worker_processes(tmp_path: Path) -> None:
    upstreams = Upstreams()
    settings = outbound_settings(tmp_path, campaign_worker=False)
    add_campaign(settings.database_url)
    app = create_app(settings, transport=upstreams.transport)

    with TestClient(app):
        time.sleep(0.6)

    assert app.state.campaign_worker is None
    assert upstreams.dialled() == {}
    assert states(settings.database_url) == ["pending", "pending"]


@pytest.mark.parametrize(
    ("value", "expected"), [(None, True), ("false", False), ("0", False), ("true", True)]
)
def test_campaign_worker_is_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str | None, expected: bool
) -> None:
    clear_settings_environment(monkeypatch)
    environ = {} if value is None else {"CAMPAIGN_WORKER": value}
    assert Settings.from_env(environ).campaign_worker is expected


def test_serve_no_worker_turns_the_servers_worker_off(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    import uvicorn

    clear_settings_environment(monkeypatch)
    monkeypatch.setenv("CAMPAIGN_WORKER", "true")
    seen: dict[str, Any] = {}

    def run(app: str, **options: Any) -> None:
        seen["CAMPAIGN_WORKER"] = os.environ.get("CAMPAIGN_WORKER")

    monkeypatch.setattr(uvicorn, "run", run)

    code, _, _ = run_cli(capsys, "serve", "--no-worker")

    assert code == 0
    assert seen == {"CAMPAIGN_WORKER": "false"}


def test_worker_refuses_a_lease_too_short_to_place_a_call(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = run_cli(capsys, "worker", "--lease", "0.5")

    assert code == 2
    assert "--lease must be at least 1 s" in err


def procfile() -> dict[str, list[str]]:
    lines = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    return {
        kind.strip(): shlex.split(command)
        for kind, _, command in (line.partition(":") for line in lines)
    }


def test_heroku_runs_campaigns_in_a_worker_process_and_not_in_the_web_one() -> None:
    processes = procfile()

    assert processes["worker"] == ["callbridge", "worker"]
    assert "CAMPAIGN_WORKER=false" in processes["web"]
    formation = json.loads((ROOT / "app.json").read_text(encoding="utf-8"))["formation"]
    assert formation["worker"]["quantity"] == 1
