"""bridge.reconcile.background: the server's runs every RECONCILE_INTERVAL_SECONDS."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.metrics import Metrics
from bridge.reconcile import background
from bridge.reconcile.service import Service
from bridge.secret import Secret
from bridge.storage.database import Database
from tests.helpers import fresh_sqlite, make_settings

NOWHERE = httpx.MockTransport(lambda request: httpx.Response(500))


@pytest.mark.anyio
async def test_no_interval_no_loop() -> None:
    service = Service(make_settings(), Database("sqlite://"), NOWHERE)
    assert background.start(service, interval=0, grace=300) is None
    await background.stop(None)


@pytest.mark.anyio
async def test_a_failing_run_is_counted_and_the_loop_goes_on(tmp_path: Path) -> None:
    # No tables in this database: every run fails.
    database = Database(f"sqlite:///{tmp_path / 'x.db'}")
    service = Service(make_settings(), database, NOWHERE)
    metrics = Metrics()
    task = background.start(service, interval=0.02, grace=0, metrics=metrics)
    for _ in range(200):
        await asyncio.sleep(0.02)
        if metrics.reconcile_runs.labels("failed")._value.get() >= 2:
            break
    await background.stop(task)
    assert metrics.reconcile_runs.labels("failed")._value.get() >= 2
    await service.aclose()
    await database.dispose()


def test_the_server_reconciles_in_the_background(tmp_path: Path) -> None:
    url = fresh_sqlite(f"sqlite:///{tmp_path / 'bg.sqlite3'}")
    settings = make_settings(
        database_url=url,
        reconcile_interval=0.05,
        elevenlabs_api_key=Secret(""),
        twilio_account_sid="",
    )
    app = create_app(settings, transport=NOWHERE)
    with TestClient(app):
        deadline = time.monotonic() + 10
        runs = app.state.metrics.reconcile_runs.labels("complete")
        while runs._value.get() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runs._value.get() >= 2
