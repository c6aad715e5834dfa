"""`bridge serve`: run the server under uvicorn, after a summary of its settings."""

from __future__ import annotations

import argparse
from typing import Any

from bridge.cli.db import upgrade_database
from bridge.routing import RoutingTable, load_routes
from bridge.settings import Settings


def add_parser(commands: Any) -> None:
    serve = commands.add_parser("serve", help="run the server (uvicorn)")
    serve.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a server is meant to listen
    serve.add_argument("--port", type=int, default=None, help="default: $PORT or 8000")
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes (default: $WEB_CONCURRENCY or 1)",
    )
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    settings = Settings.from_env()
    table = load_routes(settings.routes_file) if settings.routes_file else RoutingTable()
    port = args.port or settings.port
    print(f"callbridge on http://{args.host}:{port}")
    for name, value in settings.summary():
        print(f"  {name:<26} {value}")
    print(f"  {'routing':<26} {table.source}: {len(table.rules)} rule(s)")
    for note in settings.missing():
        print(f"  ! {note}")
    # No setup for a new user: the (local SQLite) database is brought up to date here.
    print(f"  {'database schema':<26} {upgrade_database(settings)}")
    uvicorn.run(
        "bridge.app:app",
        host=args.host,
        port=port,
        workers=args.workers,
        proxy_headers=True,
        forwarded_allow_ips="*",
        log_level=settings.log_level.lower(),
    )
    return 0
