"""The schema comes from migrations; a server on an unmigrated database refuses to start."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic import command
from starlette.testclient import TestClient

from bridge.app import create_app
from bridge.storage import migrate
from tests.helpers import fresh_sqlite, make_settings, migrate_now, run_cli

ROOT = Path(__file__).parent.parent


def revision(url: str) -> str | None:
    return asyncio.run(migrate.current_revision(url))


def test_the_server_refuses_to_start_on_an_unmigrated_database(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(make_settings(database_url=f"sqlite:///{tmp_path / 'new.sqlite3'}"))
    with pytest.raises(migrate.NotMigrated, match="Run `callbridge db upgrade`"), TestClient(app):
        pass
    assert "refusing to start" in caplog.text


def test_upgrade_is_idempotent_and_reversible(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite3'}"
    assert revision(url) is None
    migrate_now(url)
    migrate_now(url)
    assert revision(url) == migrate.head_revision()
    command.downgrade(migrate.alembic_config(url), "base")
    assert revision(url) is None
    migrate_now(url)
    assert revision(url) == migrate.head_revision()


def test_postgres_is_at_the_newest_schema(postgres_url: str) -> None:
    assert revision(postgres_url) == migrate.head_revision()


def test_db_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    code, out, _ = run_cli(capsys, "db", "current")
    assert (code, out) == (1, f"database: no schema; newest: {migrate.head_revision()}\n")
    code, out, _ = run_cli(capsys, "db", "upgrade")
    assert code == 0 and migrate.head_revision() in out
    code, out, _ = run_cli(capsys, "db", "current")
    assert code == 0


def test_heroku_runs_migrations_in_the_release_phase() -> None:
    procfile = (ROOT / "Procfile").read_text(encoding="utf-8").splitlines()
    assert "release: callbridge db upgrade" in procfile


def test_the_tests_template_database_is_at_the_newest_schema(tmp_path: Path) -> None:
    # Most tests copy one migrated SQLite file instead of migrating their own.
    url = fresh_sqlite(f"sqlite:///{tmp_path / 'copy.sqlite3'}")
    assert revision(url) == migrate.head_revision()
