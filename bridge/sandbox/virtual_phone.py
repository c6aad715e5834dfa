"""The virtual phone network behind the stand-in Twilio: it plays each call the bridge
places, as Twilio and the callee would.

For a created call it posts the status callbacks the call asked for (initiated,
ringing, answered, completed; signed, numbered, with Twilio's fields), and when
the callee answers it asks the call's answer URL for TwiML and shows it. Who
answers depends on the number called (`CALLEES`); everyone else is a person.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx

from bridge.fakes import FakeCall, FakeTwilio
from bridge.sandbox.background import Background
from bridge.sandbox.report import Reporter
from bridge.simulate import voice_webhook as simulate

CALLEES = {
    "+14155550124": "busy",
    "+14155550125": "no-answer",
    "+14155550126": "machine",
}
# Which status callback event reports which call status (Twilio's StatusCallbackEvent).
EVENT_OF = {"initiated": "initiated", "ringing": "ringing", "in-progress": "answered"}
SIP_CODES = {"completed": "200", "busy": "486", "no-answer": "487", "canceled": "487"}
ENDED = frozenset({"completed", "canceled", "failed", "busy", "no-answer"})
POLL = 0.05


@dataclass(frozen=True)
class Timing:
    ring: float = 1.0  # seconds the phone rings before it is answered
    talk: float = 4.0  # seconds a connected call lasts


class VirtualPhone:
    def __init__(
        self,
        *,
        twilio: FakeTwilio,
        client: httpx.AsyncClient,
        report: Reporter,
        background: Background,
        timing: Timing,
    ) -> None:
        self.twilio = twilio
        self.client = client
        self.report = report
        self.background = background
        self.timing = timing

    def call_created(self, sid: str) -> None:
        call = self.twilio.calls.get(sid)
        if call is not None:
            self.background.spawn(_Call(self, call).play())


class _Call:
    """One call's progress: its callbacks are numbered in the order they are sent."""

    def __init__(self, phone: VirtualPhone, call: FakeCall) -> None:
        self.phone = phone
        self.call = call
        self.sequence = 0
        self.answered_at: float | None = None
        self.answered_by: str | None = None  # with machine detection: who picked up
        self.events = set(call.params.get("StatusCallbackEvent", []))
        self.callee = CALLEES.get(call.param("To") or "", "person")

    def show(self, text: str) -> None:
        self.phone.report("phone", f"{self.call.sid} {text}")

    async def play(self) -> None:
        timing = self.phone.timing
        await self.progress("initiated")
        await asyncio.sleep(min(0.2, timing.ring))
        await self.progress("ringing")
        if self.callee == "busy":
            await asyncio.sleep(timing.ring / 2)
            await self.end("busy")
            return
        if self.callee == "no-answer":
            rings = float(self.call.param("Timeout") or 30)
            await asyncio.sleep(min(rings, 2 * timing.ring))
            await self.end("no-answer")
            return
        if await self.wait(timing.ring):
            return
        self.answered_at = time.monotonic()
        answer = await self.answer()
        await self.progress("in-progress")
        if answer is not None and answer.ok and answer.twiml is not None:
            talks = {"Connect", "Dial"} & set(answer.twiml.verbs)
            if await self.wait(timing.talk if talks else min(1.0, timing.talk)):
                return
        await self.end("completed")

    async def answer(self) -> simulate.Verdict | None:
        """Ask the answer URL what to do, as Twilio does when the callee picks up."""
        url = self.call.param("Url")
        if not url:  # created with inline TwiML
            self.show(f"answered; TwiML given with the call: {self.call.param('Twiml')}")
            return None
        form = simulate.voice_form(
            from_number=self.call.param("From") or "",
            to_number=self.call.param("To") or "",
            call_sid=self.call.sid,
            account_sid=self.phone.twilio.account_sid,
            direction="outbound-api",
            status="in-progress",
        )
        machine_detection = self.call.param("MachineDetection")
        if machine_detection:
            self.answered_by = form["AnsweredBy"] = self.detected(machine_detection)
        who = "an answering machine" if self.callee == "machine" else "a person"
        self.show(f"answered by {who}; asking the answer URL for TwiML")
        delivery = await simulate.deliver(
            self.phone.client, url, form, auth_token=self.phone.twilio.auth_token
        )
        verdict = simulate.judge(delivery)
        if verdict.ok:
            twiml = simulate.pretty_twiml(delivery.body)
            self.show(f"answer URL -> {simulate.describe(delivery.body)}\n{twiml}")
        else:
            self.show(f"answer URL failed, the callee hears Twilio's error: {verdict.problem}")
        return verdict

    def detected(self, machine_detection: str) -> str:
        if self.callee != "machine":
            return "human"
        # DetectMessageEnd waits for the greeting to end, so it reports the beep.
        return "machine_end_beep" if machine_detection == "DetectMessageEnd" else "machine_start"

    async def wait(self, seconds: float) -> bool:
        """Let the call go on; True when it was ended meanwhile (the bridge hung it up)."""
        seen = len(self.call.updates)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(POLL)
            for update in self.call.updates[seen:]:
                if "Twiml" in update:
                    self.show(f"redirected: {simulate.describe(update['Twiml'][0])}")
                if "Url" in update:
                    self.show(f"redirected to {update['Url'][0]}")
            seen = len(self.call.updates)
            status = self.call.resource.get("status")
            if status in ENDED:
                await self.end(str(status), already=True)
                return True
        return False

    async def progress(self, status: str) -> None:
        self.call.resource["status"] = status
        if status == "in-progress":
            self.call.resource["start_time"] = now()
        self.show(status)
        if EVENT_OF[status] in self.events:
            await self.callback(self.form(status))

    async def end(self, status: str, *, already: bool = False) -> None:
        duration = 0
        if self.answered_at is not None:
            duration = max(1, round(time.monotonic() - self.answered_at))
        resource = self.call.resource
        resource.update(status=status, end_time=now(), duration=str(duration))
        self.show(f"{status} after {duration} s" + (" (ended through the API)" if already else ""))
        # Twilio always reports the end of a call to its StatusCallback.
        await self.callback({**self.form(status), **ended(status, duration)})

    def form(self, status: str) -> dict[str, str]:
        form = callback_form(
            from_number=self.call.param("From") or "",
            to_number=self.call.param("To") or "",
            call_sid=self.call.sid,
            account_sid=self.phone.twilio.account_sid,
            direction="outbound-api",
            status=status,
        )
        if self.answered_by:  # Twilio repeats the detection result in later callbacks
            form["AnsweredBy"] = self.answered_by
        return form

    async def callback(self, form: dict[str, str]) -> None:
        url = self.call.param("StatusCallback")
        if not url:
            return
        form["SequenceNumber"] = str(self.sequence)
        self.sequence += 1
        delivery = await simulate.deliver(
            self.phone.client, url, form, auth_token=self.phone.twilio.auth_token
        )
        if delivery.status != 200:
            self.show(f"status callback {form['CallStatus']} -> {simulate.judge(delivery).problem}")


def callback_form(
    *,
    from_number: str,
    to_number: str,
    call_sid: str,
    account_sid: str,
    direction: str,
    status: str,
) -> dict[str, str]:
    """A status callback's form: the call's fields, and when and why it was sent."""
    form = simulate.voice_form(
        from_number=from_number,
        to_number=to_number,
        call_sid=call_sid,
        account_sid=account_sid,
        direction=direction,
        status=status,
    )
    form.pop("CallToken", None)  # only the voice webhook of an incoming call has it
    form.update(CallbackSource="call-progress-events", Timestamp=now())
    return form


def ended(status: str, duration: int) -> dict[str, str]:
    """What a callback adds at the end of a call: seconds, billed minutes, SIP code."""
    return {
        "CallDuration": str(duration),
        "Duration": str((duration + 59) // 60),
        "SipResponseCode": SIP_CODES.get(status, "200"),
    }


def now() -> str:
    # Twilio's dates are RFC 2822, like "Tue, 31 Aug 2010 20:36:28 +0000".
    return format_datetime(datetime.now(UTC).replace(microsecond=0))
