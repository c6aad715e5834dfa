"""The sandbox's three apps, wired: each stand-in behind a tap that shows what it
receives and sets the virtual phone or the post-call webhooks going, and the real
bridge, whose inbound webhook is watched so the phone network can end the call."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from starlette.types import ASGIApp

from bridge.app import create_app
from bridge.fakes import FakeElevenLabs, FakeTwilio
from bridge.routing import RoutingTable
from bridge.sandbox.background import Background
from bridge.sandbox.conversation import PostCallWebhooks
from bridge.sandbox.incoming import IncomingCalls
from bridge.sandbox.report import Reporter
from bridge.sandbox.tap import Tap
from bridge.sandbox.virtual_phone import Timing, VirtualPhone
from bridge.sandbox.watch import ElevenLabsWatch, TwilioWatch
from bridge.settings import Settings
from bridge.twilio.paths import INBOUND_PATH


@dataclass(frozen=True)
class Stage:
    bridge: ASGIApp
    elevenlabs: ASGIApp
    twilio: ASGIApp


def assemble(
    *,
    settings: Settings,
    table: RoutingTable,
    elevenlabs: FakeElevenLabs,
    twilio: FakeTwilio,
    client: httpx.AsyncClient,
    report: Reporter,
    background: Background,
    timing: Timing,
    transcripts: bool,
) -> Stage:
    bridge_url = settings.public_base_url
    webhooks = (
        PostCallWebhooks(
            bridge_url=bridge_url,
            secret=settings.elevenlabs_webhook_secret.reveal(),
            client=client,
            report=report,
            background=background,
            # The transcript comes once the call is over, as ElevenLabs sends it.
            after=timing.ring + timing.talk + 0.5,
        )
        if transcripts
        else None
    )
    phone = VirtualPhone(
        twilio=twilio, client=client, report=report, background=background, timing=timing
    )
    incoming = IncomingCalls(
        bridge_url=bridge_url,
        auth_token=settings.twilio_auth_token.reveal(),
        client=client,
        report=report,
        background=background,
        timing=timing,
        twilio=twilio,
    )
    elevenlabs_watch = ElevenLabsWatch(report, webhooks)
    twilio_watch = TwilioWatch(report, phone)
    return Stage(
        bridge=Tap(
            create_app(settings, table=table),
            arrived=incoming.arrived,
            answered=incoming.answered,
            paths=frozenset({INBOUND_PATH}),
        ),
        elevenlabs=Tap(
            elevenlabs.app, arrived=elevenlabs_watch.arrived, answered=elevenlabs_watch.answered
        ),
        twilio=Tap(twilio.app, arrived=twilio_watch.arrived, answered=twilio_watch.answered),
    )
