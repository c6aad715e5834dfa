"""The ASGI application: `bridge.app:app`."""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from bridge import forwarded
from bridge.answer.inbound import InboundBridge
from bridge.answer.outbound import OutboundAnswerer
from bridge.audio.opening import open_audio_store
from bridge.audio.store import AudioStore
from bridge.calllog.records import CallRecords
from bridge.calllog.writer import CallLogWriter
from bridge.campaigns import worker as campaign_worker
from bridge.campaigns.assembly import paced_dialer, worker_for
from bridge.elevenlabs.api import ElevenLabsAPI
from bridge.elevenlabs.register_call import ElevenLabsClient
from bridge.events.listing import outbox_health
from bridge.events.outbox import Outbox
from bridge.events.sender import sender_for
from bridge.lookup.hook import lookups_for
from bridge.metrics import Metrics
from bridge.outbound.dialer import Dialer
from bridge.outbound.idempotency import IdempotencyKeys, server_key
from bridge.outbound.sealing import Sealer
from bridge.reconcile import background as reconcile_background
from bridge.reconcile.service import Service as ReconcileService
from bridge.recordings.fetcher import fetcher_for
from bridge.recordings.sweep import RecordingSweep
from bridge.routing import RoutingTable, load_routes
from bridge.settings import Settings, Severity
from bridge.storage.database import Database
from bridge.storage.migrate import NotMigrated, ensure_current
from bridge.transport.factory import make_transport
from bridge.transport.timing import TimedTransport
from bridge.twilio import paths
from bridge.twilio.rest import TwilioREST
from bridge.web import (
    ai_caller_api,
    call_audio,
    calls_api,
    calls_read_api,
    campaigns_api,
    dnc_api,
    elevenlabs_webhook,
    events_api,
    metrics_api,
    ui,
    ui_campaigns,
    ui_console,
    ui_dnc,
    ui_render,
)
from bridge.web import twilio_webhooks as webhooks
from bridge.web.auth import token_matches
from bridge.web.recording_status import recording_status
from bridge.web.throttle import LoginThrottle

logger = logging.getLogger("bridge")
GC_THRESHOLD = 10_000


class BridgeApp(Starlette):
    """Starlette, with Twilio's webhook POSTs dispatched ahead of its middleware stack.

    The webhooks are the hot path and handle their own errors (they always answer
    with TwiML), so Starlette's error and exception middleware add nothing there but
    CPU; every other request, and other methods on those paths, go through Starlette.
    """

    def __init__(self, *, webhooks: Mapping[str, ASGIApp], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.webhooks = webhooks
        self.trusted_proxies = 0  # TRUSTED_PROXY_COUNT

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        forwarded.behind_proxies(scope, self.trusted_proxies)  # the client's address, scheme
        if scope["type"] == "http" and scope["method"] == "POST":
            endpoint = self.webhooks.get(scope["path"])
            if endpoint is not None:
                scope["app"] = self
                await endpoint(scope, receive, send)
                return
        await super().__call__(scope, receive, send)


def create_app(
    settings: Settings | None = None,
    *,
    table: RoutingTable | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    now: Callable[[], datetime] | None = None,
    audio_store: AudioStore | None = None,
) -> BridgeApp:
    """Build the app. Raises SettingsError or RoutesError on bad configuration, and
    AudioStoreError when the s3:// store's library refuses its AWS_* settings."""
    settings = settings or Settings.from_env()
    if audio_store is None:
        audio_store = open_audio_store(settings)
    if table is None:
        table = load_routes(settings.routes_file) if settings.routes_file else RoutingTable()
    transport = transport or make_transport(
        settings.upstream_transport, settings.upstream_max_connections
    )
    metrics = Metrics()
    transport = TimedTransport(transport, metrics.upstream_seconds)
    elevenlabs = (
        ElevenLabsClient(
            api_key=settings.elevenlabs_api_key,
            base_url=settings.elevenlabs_api_base,
            transport=transport,
        )
        if settings.elevenlabs_configured
        else None
    )
    elevenlabs_api = (
        ElevenLabsAPI(
            api_key=settings.elevenlabs_api_key,
            base_url=settings.elevenlabs_api_base,
            transport=transport,
        )
        if settings.elevenlabs_configured
        else None
    )
    database = Database(settings.database_url)
    twilio = (
        TwilioREST(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            api_base=settings.twilio_api_base,
            transport=transport,
        )
        if settings.twilio_configured
        else None
    )
    events = Outbox.from_settings(settings)
    call_records = CallRecords(database, events=events)
    event_sender = sender_for(settings, database, metrics=metrics)
    recording_fetcher = fetcher_for(
        settings, database, transport, store=audio_store, count=metrics.count_recording
    )
    recording_sweep = RecordingSweep(recording_fetcher)
    # Secret variables of pending calls are sealed under the API token's key.
    sealer = Sealer(settings.bridge_api_token.reveal()) if settings.bridge_api_token else None
    dialer = Dialer(
        settings=settings,
        database=database,
        elevenlabs=elevenlabs_api,
        twilio=twilio,
        sealer=sealer,
    )
    # The lookup hook (LOOKUP_URL, the rules' own); None when none is configured.
    lookups = lookups_for(
        url=settings.lookup_url,
        timeout=settings.lookup_timeout,
        secrets=settings.lookup_signing_secrets,
        rule_lookups=(rule.lookup for rule in table.rules),
        transport=transport,
    )
    outbound_answerer = OutboundAnswerer(
        database=database,
        sealer=sealer,
        elevenlabs=elevenlabs,
        deadline=settings.inbound_deadline,
        lookups=lookups,
        lookup_by_default=settings.outbound_lookup,
    )
    call_log_writer = CallLogWriter(
        database,
        on_failure=metrics.call_log_failures.inc,
        on_dropped=metrics.call_log_dropped.inc,
        events=events,
    )
    # Reconciliation in the background (bridge.reconcile): what the bridge missed.
    # Its runs also retry the recordings whose fetch is due (after a crash, say).
    reconcile = ReconcileService(
        settings,
        database,
        transport,
        metrics=metrics,
        also=[recording_fetcher.retry_due_recordings],
    )
    idempotency = IdempotencyKeys(database, key=server_key(settings.bridge_api_token.reveal()))
    # The campaign worker in this process (CAMPAIGN_WORKER; `callbridge serve --no-worker`).
    campaign_dialer, campaign_twilio = paced_dialer(
        settings, database=database, transport=transport, elevenlabs=elevenlabs_api
    )
    campaigns = (
        worker_for(
            settings,
            database=database,
            dialer=campaign_dialer,
            records=call_records,
            metrics=metrics,
            events=events,
        )
        if settings.campaign_worker
        else None
    )
    inbound_kwargs: dict[str, Any] = {"now": now} if now else {}
    inbound = InboundBridge(
        table=table,
        elevenlabs=elevenlabs,
        default_agent_id=settings.elevenlabs_agent_id,
        deadline=settings.inbound_deadline,
        lookups=lookups,
        # Any deployment Twilio reaches has an auth token; the API token is optional.
        sealer=sealer
        or (Sealer(settings.twilio_auth_token.reveal()) if settings.twilio_auth_token else None),
        **inbound_kwargs,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        configure_logging(settings.log_level)
        try:
            await ensure_current(settings.database_url)
        except NotMigrated as exc:
            logger.error("refusing to start: %s", exc)
            raise
        call_log_writer.start()
        recording_sweep.start()
        if event_sender is not None:
            event_sender.start()
        tune_garbage_collector()
        logger.info("routing: %s, %d rule(s)", table.source, len(table.rules))
        for note in settings.notes():
            if note.severity is Severity.DANGER:
                logger.warning("!!! %s !!!", note.text)
            else:
                logger.warning("%s", note.text)
        app.state.ready = True
        reconciling = reconcile_background.start(
            reconcile,
            interval=settings.reconcile_interval,
            grace=settings.reconcile_grace,
            metrics=metrics,
        )
        campaigning = campaign_worker.start(campaigns) if campaigns is not None else None
        try:
            yield
        finally:
            app.state.ready = False
            # The background work first: its clients share the transport closed below.
            await campaign_worker.stop(campaigning)
            await reconcile_background.stop(reconciling)
            if event_sender is not None:
                await event_sender.stop()
            await recording_sweep.stop()
            await reconcile.aclose()
            if recording_fetcher.twilio is not None:
                await recording_fetcher.twilio.aclose()
            if elevenlabs_api is not None:
                await elevenlabs_api.aclose()
            await call_log_writer.stop()
            if twilio is not None:
                await twilio.aclose()
            if campaign_twilio is not None:
                await campaign_twilio.aclose()
            await transport.aclose()
            await database.dispose()

    twilio_routes = {
        paths.INBOUND_PATH: webhooks.inbound,
        paths.DIAL_COMPLETE_PATH: webhooks.dial_complete,
        paths.VOICEMAIL_COMPLETE_PATH: webhooks.voicemail_complete,
        paths.OUTBOUND_ANSWER_PATH: webhooks.outbound_answer,
        paths.STATUS_PATH: webhooks.status_callback,
        paths.RECORDING_STATUS_PATH: recording_status,
    }
    app = BridgeApp(
        webhooks=twilio_routes,
        routes=[
            *(Route(path, endpoint, methods=["POST"]) for path, endpoint in twilio_routes.items()),
            Route(paths.HEALTH_PATH, healthz, methods=["GET"]),
            *metrics_api.routes,
            *calls_api.routes,
            *ai_caller_api.routes,
            *elevenlabs_webhook.routes,
            *calls_read_api.routes,
            *events_api.routes,
            *dnc_api.routes,
            *campaigns_api.routes,
            *call_audio.routes,
            *ui.routes,
            *ui_console.routes,
            *ui_campaigns.routes,
            *ui_dnc.routes,
            # The console's CSS and script, from the package (no CDN: works offline).
            Mount("/ui/static", StaticFiles(directory=ui_render.STATIC), name="ui-static"),
        ],
        lifespan=lifespan,
    )
    # No redirect from /path/ to /path: Starlette would build it from the scheme the
    # server saw (http:// behind a TLS proxy), so such paths get 404 instead.
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.ready = False  # until the lifespan has started (database checked)
    app.trusted_proxies = settings.trusted_proxy_count
    app.state.table = table
    app.state.inbound = inbound
    app.state.elevenlabs_api = elevenlabs_api
    app.state.twilio = twilio
    app.state.database = database
    app.state.dialer = dialer
    app.state.sealer = sealer
    app.state.idempotency = idempotency
    app.state.outbound_answerer = outbound_answerer
    app.state.call_records = call_records
    app.state.event_sender = event_sender
    app.state.audio_store = audio_store
    app.state.recording_fetcher = recording_fetcher
    app.state.call_log_writer = call_log_writer
    app.state.reconcile = reconcile
    app.state.campaign_worker = campaigns
    app.state.metrics = metrics
    app.state.login_throttle = LoginThrottle(
        failures=ui.LOGIN_FAILURES, window=ui.LOGIN_WINDOW_SECONDS
    )
    return app


async def healthz(request: Request) -> JSONResponse:
    """Liveness and readiness for anyone; the configuration notes and routing only
    with BRIDGE_API_TOKEN or METRICS_TOKEN (they say, e.g., that signatures are not
    checked). Never secret values."""
    settings: Settings = request.app.state.settings
    body: dict[str, Any] = {"status": "ok", "ready": request.app.state.ready}
    authorization = request.headers.get("authorization")
    if any(
        token and token_matches(authorization, token.reveal())
        for token in (settings.bridge_api_token, settings.metrics_token)
    ):
        table: RoutingTable = request.app.state.table
        body["problems"] = settings.missing()
        body["routes"] = {"source": table.source, "rules": len(table.rules)}
        if settings.events_webhook_urls:
            try:
                body["events"] = await outbox_health(request.app.state.database, datetime.now(UTC))
            except Exception:
                # /healthz answers even when the database does not.
                logger.exception("event=healthz_outbox_failed")
                body["events"] = None
    return JSONResponse(body)


def tune_garbage_collector() -> None:
    """Keep the cyclic GC off the hot path.

    Under load the collector took an eighth of the bridge's CPU, mostly rescanning
    objects that live as long as the process (modules, settings, the routing table).
    `gc.freeze()` moves those out of its sight; a larger first-generation threshold
    makes collections of the short-lived per-call objects rarer.
    """
    gc.collect()
    gc.freeze()
    _, second, third = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, second, third)


def configure_logging(level: str) -> None:
    ours = logging.getLogger("bridge")
    ours.setLevel(level)
    # Leave logging alone when the host (pytest, gunicorn, a dictConfig) already set it up.
    if not ours.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        ours.addHandler(handler)
        ours.propagate = False


def __getattr__(name: str) -> Starlette:
    # `bridge.app:app` is built on first use, so importing this module (tests, the CLI)
    # does not read the environment; uvicorn's getattr builds it once at startup.
    if name == "app":
        if "app" not in _built:
            _built["app"] = _app_from_environment()
        return _built["app"]
    raise AttributeError(name)


_built: dict[str, Starlette] = {}


def _app_from_environment() -> Starlette:
    import os
    import sys

    from bridge.routing import RoutesError
    from bridge.settings import Problem, SettingsError, diagnostics

    try:
        settings = Settings.from_env()
        unguarded = diagnostics.unguarded_host(settings, os.environ)
        if unguarded:
            raise SettingsError([Problem("PUBLIC_BASE_URL", unguarded)])
        return create_app(settings)
    except (SettingsError, RoutesError) as exc:
        print(f"callbridge: refusing to start:\n{exc}", file=sys.stderr)
        raise SystemExit(2) from None
