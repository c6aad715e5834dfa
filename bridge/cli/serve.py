"""`callbridge serve`: run the server under uvicorn, after a summary of its settings."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from typing import Any

from bridge.cli.db import upgrade_database

# Heroku allows 30 s between SIGTERM and SIGKILL; Twilio waits 15 s at most for a
# webhook, so everything in flight finishes well inside this.
GRACEFUL_SHUTDOWN_SECONDS = 25
# uvicorn's limits, the same in the Procfile (tests/test_cli_serve.py compares them).
# Its proxy-header handling is off: it would take the leftmost X-Forwarded-For, which
# the client writes; the app reads the proxies' headers itself (TRUSTED_PROXY_COUNT).
UVICORN_OPTIONS: dict[str, Any] = {
    # httptools with a time and size limit for request heads (bridge.web.connections).
    "http": "bridge.web.connections:Protocol",
    "proxy_headers": False,
    "timeout_keep_alive": 5,
    "limit_concurrency": 1000,
    "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
}
METRICS_DIRECTORY_ENV = "PROMETHEUS_MULTIPROC_DIR"
LOCAL_HOST = "127.0.0.1"
ALL_INTERFACES = "0.0.0.0"  # noqa: S104 - where a platform such as Heroku routes requests


def add_parser(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="run the server (uvicorn)",
        description="Run the server under uvicorn, after a summary of its settings. It "
        "creates the database (DATABASE_URL) when there is none, and migrates it.",
    )
    serve.add_argument(
        "--host",
        default=None,
        help=f"the address to listen on (default: {LOCAL_HOST}, this machine only; "
        f"{ALL_INTERFACES}, every interface, when $PORT is set, as on Heroku)",
    )
    serve.add_argument("--port", type=int, default=None, help="default: $PORT or 8000")
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: $WEB_CONCURRENCY or 1)",
    )
    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="run no campaign worker in the server (CAMPAIGN_WORKER=false): "
        "`callbridge worker` processes run the campaigns",
    )
    serve.set_defaults(handler=_serve)


def default_host(environ: Mapping[str, str] = os.environ) -> str:
    """Every interface on a platform that sets $PORT (Heroku), else only this machine."""
    return ALL_INTERFACES if environ.get("PORT", "").strip() else LOCAL_HOST


def _serve(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    import uvicorn

    from bridge.routing import RoutingTable, load_routes
    from bridge.settings import Settings

    if args.no_worker:
        # Read by the app each worker process builds (bridge.app:app), as every setting.
        os.environ["CAMPAIGN_WORKER"] = "false"
    settings = Settings.from_env()
    table = load_routes(settings.routes_file) if settings.routes_file else RoutingTable()
    port = args.port or settings.port
    host = args.host or default_host()
    print(f"callbridge on http://{host}:{port}")
    for name, value in settings.summary():
        print(f"  {name:<26} {value}")
    print(f"  {'routing':<26} {table.source}: {len(table.rules)} rule(s)")
    for note in settings.missing():
        print(f"  ! {note}")
    # No setup for a new user: the (local SQLite) database is brought up to date here.
    print(f"  {'database schema':<26} {upgrade_database(settings)}")
    workers = args.workers or int(os.environ.get("WEB_CONCURRENCY") or 1)
    # Workers add their metrics up in a directory of their own, fresh for each run.
    metrics_directory = None
    if workers > 1 and not os.environ.get(METRICS_DIRECTORY_ENV):
        metrics_directory = tempfile.mkdtemp(prefix="callbridge-metrics-")
        os.environ[METRICS_DIRECTORY_ENV] = metrics_directory
    try:
        uvicorn.run(
            "bridge.app:app",
            host=host,
            port=port,
            workers=workers,
            log_level=settings.log_level.lower(),
            **UVICORN_OPTIONS,
        )
    finally:
        if metrics_directory is not None:
            shutil.rmtree(metrics_directory, ignore_errors=True)
    return 0
