"""The sandbox: the real bridge and the stand-in ElevenLabs and Twilio APIs, each on its
own loopback port, in one process and one event loop, until Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bridge.fakes import FakeElevenLabs, FakeTwilio
from bridge.routing import RoutingTable, load_routes
from bridge.sandbox import contacts, numbers, servers
from bridge.sandbox.background import Background
from bridge.sandbox.banner import banner, sign_in_url
from bridge.sandbox.config import DATABASE_FILE, sandbox_settings
from bridge.sandbox.credentials import Credentials, load_or_create, write_env_file
from bridge.sandbox.integrations import DemoIntegrations, events_secret
from bridge.sandbox.report import Reporter
from bridge.sandbox.stage import assemble
from bridge.sandbox.virtual_phone import Timing
from bridge.settings import Settings
from bridge.storage import migrate

STARTUP_SECONDS = 15.0


class SandboxError(RuntimeError):
    """The sandbox cannot start; the message says why and what to do."""


@dataclass(frozen=True)
class SandboxOptions:
    directory: Path = Path("sandbox")
    port: int = 8000  # 0: any free port
    routes_file: Path | None = None
    timing: Timing = field(default_factory=Timing)
    transcripts: bool = True
    # Where call audio goes (AUDIO_STORE and the AWS_* variables, nothing else);
    # None: the folder DIR/call-audio.
    audio: Settings | None = None


class Sandbox:
    """Run with `asyncio.run(sandbox.run())`; `ready` is set once it answers, and
    `stop()` (from any thread) or Ctrl-C ends it."""

    def __init__(
        self,
        options: SandboxOptions,
        *,
        out: Callable[[str], None] | None = None,
        open_console: Callable[[str], None] | None = None,
    ):
        """`open_console`: called with the console's sign-in link (`banner.sign_in_url`)
        once the sandbox answers (`bridge.sandbox.browser.open_console` opens the
        person's browser); None: not."""
        self.options = options
        self.report = Reporter(out)
        self.open_console = open_console
        self.contacts_file: Path | None = None
        self.ready = threading.Event()
        self.credentials: Credentials | None = None
        self.settings: Settings | None = None
        self.bridge_url = ""
        self.integrations_url = ""
        self.elevenlabs = FakeElevenLabs()
        self.integrations: DemoIntegrations  # made with the credentials, in run()
        self.twilio = FakeTwilio()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._stop_early = False

    def stop(self) -> None:
        """Ask the sandbox to stop; safe from any thread, before or while it runs."""
        self._stop_early = True
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        if self._stop_early:
            self._stopping.set()
        options = self.options
        try:
            options.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SandboxError(
                f"cannot use {options.directory} as the sandbox directory: {exc}"
            ) from None
        routes_file = numbers.routes_file(options.directory, options.routes_file)
        table = load_routes(routes_file)  # RoutesError names the file and the rule
        self.contacts_file = contacts.contacts_file(options.directory)
        credentials = self.credentials = load_or_create(options.directory)
        self.integrations = DemoIntegrations(
            events_secret(credentials.bridge_api_token), self.report
        )
        self.elevenlabs = FakeElevenLabs(api_key=credentials.elevenlabs_api_key)
        self.twilio = FakeTwilio(
            account_sid=credentials.twilio_account_sid, auth_token=credentials.twilio_auth_token
        )
        with contextlib.ExitStack() as sockets:
            try:
                bridge_socket = sockets.enter_context(servers.loopback_socket(options.port))
            except servers.PortTaken as exc:
                raise SandboxError(f"{exc}: is a bridge running there? Use --port N.") from None
            elevenlabs_socket = sockets.enter_context(servers.loopback_socket(0))
            twilio_socket = sockets.enter_context(servers.loopback_socket(0))
            integrations_socket = sockets.enter_context(servers.loopback_socket(0))
            self.integrations_url = servers.url_of(integrations_socket)
            self.bridge_url = servers.url_of(bridge_socket)
            write_env_file(options.directory, credentials, self.bridge_url)
            settings = self.settings = sandbox_settings(
                credentials,
                bridge_url=self.bridge_url,
                elevenlabs_url=servers.url_of(elevenlabs_socket),
                twilio_url=servers.url_of(twilio_socket),
                directory=options.directory,
                routes_file=routes_file,
                audio=options.audio,
                integrations_url=self.integrations_url,
            )
            await migrate.upgrade(settings.database_url)
            with self.report.bridge_log():
                await self._serve(
                    settings,
                    table,
                    bridge_socket=bridge_socket,
                    elevenlabs_socket=elevenlabs_socket,
                    twilio_socket=twilio_socket,
                    integrations_socket=integrations_socket,
                )

    async def _serve(
        self,
        settings: Settings,
        table: RoutingTable,
        *,
        bridge_socket: socket.socket,
        elevenlabs_socket: socket.socket,
        twilio_socket: socket.socket,
        integrations_socket: socket.socket,
    ) -> None:
        background = Background()
        async with httpx.AsyncClient() as client:
            stage = assemble(
                settings=settings,
                table=table,
                elevenlabs=self.elevenlabs,
                twilio=self.twilio,
                client=client,
                report=self.report,
                background=background,
                timing=self.options.timing,
                transcripts=self.options.transcripts,
            )
            fakes = [
                (servers.server(stage.elevenlabs, lifespan=False), elevenlabs_socket),
                (servers.server(stage.twilio, lifespan=False), twilio_socket),
                (servers.server(self.integrations.app, lifespan=False), integrations_socket),
            ]
            bridge = servers.server(stage.bridge, lifespan=True)
            running = [
                asyncio.create_task(server.serve(sockets=[sock]))
                for server, sock in [*fakes, (bridge, bridge_socket)]
            ]
            try:
                await self._started([server for server, _ in fakes] + [bridge], running)
                self._show_banner(settings, table)
                self.ready.set()
                if self.open_console is not None and self.credentials is not None:
                    # Opened signed in: the token is the sandbox's own, made up here.
                    token = self.credentials.bridge_api_token
                    self.open_console(sign_in_url(self.bridge_url, token))
                with self._ctrl_c([bridge, *(server for server, _ in fakes)]):
                    await self._until_stopped(running)
            finally:
                # In order: no new calls, the bridge flushes its call log, then the fakes go.
                await background.aclose()
                bridge.should_exit = True
                await asyncio.gather(running[-1], return_exceptions=True)
                for server, _ in fakes:
                    server.should_exit = True
                await asyncio.gather(*running, return_exceptions=True)
                self.report.plain("sandbox stopped")

    async def _started(
        self, started: list[servers.QuietServer], running: list[asyncio.Task[None]]
    ) -> None:
        deadline = asyncio.get_running_loop().time() + STARTUP_SECONDS
        while not all(server.started for server in started):
            failed = [task for task in running if task.done()]
            if failed or asyncio.get_running_loop().time() > deadline:
                raise SandboxError("a sandbox server did not start; see the messages above")
            await asyncio.sleep(0.02)

    async def _until_stopped(self, running: list[asyncio.Task[None]]) -> None:
        assert self._stopping is not None
        stopping = asyncio.create_task(self._stopping.wait())
        await asyncio.wait([stopping, *running], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()

    @contextlib.contextmanager
    def _ctrl_c(self, running: list[servers.QuietServer]) -> Iterator[None]:
        """First Ctrl-C: stop in order. Another: stop now, requests in flight or not."""
        loop = asyncio.get_running_loop()

        def pressed() -> None:
            if self._stopping is not None and self._stopping.is_set():
                self.report.plain("stopping now")
                # A forced stop cancels the bridge's shutdown; its traceback would only alarm.
                logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
                for server in running:
                    server.force_exit = True
                return
            self.report.plain("stopping... (Ctrl-C again to stop at once)")
            self.stop()

        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, pressed)
                handled.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread
                pass
        try:
            yield
        finally:
            for sig in handled:
                loop.remove_signal_handler(sig)

    def _show_banner(self, settings: Settings, table: RoutingTable) -> None:
        assert self.credentials is not None
        directory = self.options.directory
        lines = banner(
            bridge_url=self.bridge_url,
            elevenlabs_url=settings.elevenlabs_api_base,
            twilio_url=settings.twilio_api_base,
            credentials=self.credentials,
            directory=directory,
            routes=f"{table.source}: {len(table.rules)} rule(s); edit it and restart",
            database=directory / DATABASE_FILE,
            timing=self.options.timing,
            integrations=self.integrations_url,
            contacts=self.contacts_file,
        )
        for line in lines:
            self.report.plain(line)
