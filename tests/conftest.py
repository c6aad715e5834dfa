"""Fixtures and hooks; what tests share besides fixtures is in helpers.py."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.fakes import FakeElevenLabs
from bridge.storage.database import create_engine
from tests.helpers import (
    ELEVENLABS_KEY,
    POSTGRES_SERVER,
    S3Server,
    Upstreams,
    fresh_sqlite,
    in_thread,
    migrate_now,
    moto_s3_server,
    outbound_settings,
    running_server,
)


@pytest.fixture(scope="session")
def migrated_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working directory whose default database (./callbridge.sqlite3) is migrated."""
    workdir = tmp_path_factory.mktemp("workdir")
    fresh_sqlite(f"sqlite:///{workdir / 'callbridge.sqlite3'}")
    return workdir


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test run's own on 127.0.0.1:5432, migrated once.

    Each run gets a database named for its process, so runs side by side (two
    checkouts, a benchmark) never empty each other's tables; it is dropped at the end.
    """
    name = f"callbridge_test_{os.getpid()}"
    url = f"{POSTGRES_SERVER}/{name}"

    async def admin(*statements: str) -> None:
        engine = create_engine(f"{POSTGRES_SERVER}/test")
        async with engine.connect() as connection:
            connection = await connection.execution_options(isolation_level="AUTOCOMMIT")
            for statement in statements:
                await connection.execute(text(statement))
        await engine.dispose()

    in_thread(
        lambda: asyncio.run(admin(f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"))
    )
    migrate_now(url)
    yield url
    in_thread(lambda: asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated database of each kind: a fresh SQLite file, the shared PostgreSQL one."""
    if request.param == "sqlite":
        return fresh_sqlite(f"sqlite:///{tmp_path / 'bridge.sqlite3'}")
    postgres: str = request.getfixturevalue("postgres_url")
    return postgres


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def in_migrated_workdir(migrated_workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Apps built with default settings find a migrated SQLite file, and no test
    # writes one into the repository.
    monkeypatch.chdir(migrated_workdir)


@pytest.fixture
def fake_elevenlabs() -> Iterator[tuple[FakeElevenLabs, str]]:
    fake = FakeElevenLabs(api_key=ELEVENLABS_KEY)
    with running_server(fake.app) as base_url:
        yield fake, base_url


@pytest.fixture
def upstreams() -> Upstreams:
    """Fake Twilio and ElevenLabs behind one MockTransport."""
    return Upstreams()


@pytest.fixture
def outbound_client(tmp_path: Path, upstreams: Upstreams) -> Iterator[TestClient]:
    """The app set up for placing calls (`outbound_settings`) against `upstreams`."""
    app = create_app(outbound_settings(tmp_path), transport=upstreams.transport)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """A real S3-compatible server (moto) on loopback, once per test process."""
    with moto_s3_server() as server:
        yield server
