"""The phone network's side of an incoming call: once the bridge has answered the
voice webhook (sent by `callbridge simulate inbound`), the caller stays on for as long as
the TwiML keeps them, then the call ends and the number's status callback reports it.
(A real number reports to the "Call status changes" URL set in the Twilio console;
the sandbox's number reports to the bridge's /twilio/status.)

The TwiML is followed as Twilio follows it: a `<Dial action>` rings the number
dialled (the virtual phone's callees: busy, no-answer, else a person who answers)
and posts its `DialCallStatus` to the action URL; a `<Record action>` "records" a
short message (a recording with audio at the stand-in Twilio), posts the action
and then the recording status callback. The next TwiML is followed in turn. The
call is known to the stand-in Twilio while it lasts, so it can be transferred
(`POST .../Calls/{sid}.json` with new TwiML), and the new TwiML is followed too.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urljoin
from xml.etree.ElementTree import Element

import httpx

import twiml
from bridge.fakes import FakeCall, FakeTwilio
from bridge.fakes.twilio_recordings import post_recording_status
from bridge.sandbox.background import Background
from bridge.sandbox.report import Reporter
from bridge.sandbox.tap import Exchange
from bridge.sandbox.virtual_phone import CALLEES, Timing, callback_form, ended
from bridge.simulate import voice_webhook as simulate
from bridge.twilio.form import Form
from bridge.twilio.paths import INBOUND_PATH, STATUS_PATH

# Verbs that keep the caller on the line for a while (a conversation, a person, a message).
LASTING = frozenset({"Connect", "Dial", "Record", "Gather"})
# A loop of TwiML documents (a rule that dials itself) ends after this many.
MAX_DOCUMENTS = 10
POLL = 0.05


class IncomingCalls:
    def __init__(
        self,
        *,
        bridge_url: str,
        auth_token: str,
        client: httpx.AsyncClient,
        report: Reporter,
        background: Background,
        timing: Timing,
        twilio: FakeTwilio | None = None,
    ) -> None:
        self.status_url = bridge_url + STATUS_PATH
        self.inbound_url = bridge_url + INBOUND_PATH
        self.auth_token = auth_token
        self.client = client
        self.report = report
        self.background = background
        self.timing = timing
        self.twilio = twilio or FakeTwilio(auth_token=auth_token)

    def arrived(self, exchange: Exchange) -> None:
        form = Form.parse(exchange.body)
        self.report(
            "phone",
            f"{form.get('CallSid', '-')} incoming call {form.get('From', '-')} -> "
            f"{form.get('To', '-')}: voice webhook to the bridge",
        )

    def answered(self, exchange: Exchange) -> None:
        form = Form.parse(exchange.body)
        sid = form.get("CallSid", "-")
        if exchange.status != 200:
            self.report("phone", f"{sid} the bridge answered HTTP {exchange.status}")
            return
        body = exchange.response.decode("utf-8", "replace")
        try:
            checked = twiml.check_twiml(body)
        except twiml.InvalidTwiML as exc:
            self.report("phone", f"{sid} the bridge answered with no TwiML ({exc})")
            return
        self.report("phone", f"{sid} the bridge answered: {simulate.describe(body)}")
        if form.get("CallSid") and "From" in form and form.get("To"):
            self.background.spawn(_Incoming(self, form).play(checked))


class _Incoming:
    """One incoming call, from the bridge's first answer to its status callback."""

    def __init__(self, calls: IncomingCalls, form: Form) -> None:
        self.calls = calls
        self.form = form
        self.sid = form.get("CallSid")
        self.started = time.monotonic()
        self.call = self._register()

    def show(self, text: str) -> None:
        self.calls.report("phone", f"{self.sid} {text}")

    def _register(self) -> FakeCall:
        """The call as the stand-in Twilio's REST API sees it (so it can be updated)."""
        return self.calls.twilio.add_live_call(
            self.sid, from_number=self.form.get("From"), to_number=self.form.get("To")
        )

    async def play(self, checked: twiml.CheckedTwiML) -> None:
        status, url = "completed", self.calls.inbound_url
        document: twiml.CheckedTwiML | None = checked
        for _ in range(MAX_DOCUMENTS):
            if document is None:
                break
            if document.verbs[:1] == ("Reject",):
                reject = document.root.find("Reject")
                reason = reject.get("reason") if reject is not None else None
                # Twilio ends a rejected call as busy or no-answer, by the reason given.
                status = "busy" if reason == "busy" else "no-answer"
                break
            document, url = await self._follow(document, url)
        if self.call.resource.get("status") in ("completed", "canceled"):
            status = str(self.call.resource["status"])
        duration = 0 if status != "completed" else max(1, round(time.monotonic() - self.started))
        self.call.resource.update(status=status, duration=str(duration))
        self.show(f"{status} after {duration} s")
        callback = callback_form(
            from_number=self.form.get("From"),
            to_number=self.form.get("To"),
            call_sid=self.sid,
            account_sid=self.form.get("AccountSid", simulate.PLACEHOLDER_ACCOUNT_SID),
            direction="inbound",
            status=status,
        )
        delivery = await simulate.deliver(
            self.calls.client,
            self.calls.status_url,
            {**callback, **ended(status, duration)},
            auth_token=self.calls.auth_token,
        )
        if delivery.status != 200:
            self.show(f"status callback: {simulate.judge(delivery).problem}")

    async def _follow(
        self, document: twiml.CheckedTwiML, url: str
    ) -> tuple[twiml.CheckedTwiML | None, str]:
        """Play one TwiML document; the next one (and its URL) when it leads to one."""
        for verb in document.root:
            tag = verb.tag.rsplit("}", 1)[-1]
            if tag == "Dial" and verb.get("action"):
                return await self._dial(verb, url)
            if tag == "Record" and verb.get("action"):
                return await self._record(verb, url)
        timing = self.calls.timing
        seconds = timing.talk if LASTING & set(document.verbs) else min(1.0, timing.talk)
        return await self._talk(seconds), url

    async def _talk(self, seconds: float) -> twiml.CheckedTwiML | None:
        """Stay on the line; new TwiML when the call is transferred meanwhile."""
        seen = len(self.call.updates)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            await asyncio.sleep(POLL)
            for update in self.call.updates[seen:]:
                if "Twiml" in update:
                    self.show(f"transferred: {simulate.describe(update['Twiml'][0])}")
                    try:
                        return twiml.check_twiml(update["Twiml"][0])
                    except twiml.InvalidTwiML as exc:
                        self.show(f"the new TwiML is not valid ({exc}): Twilio would end the call")
                        return None
            seen = len(self.call.updates)
            if self.call.resource.get("status") in ("completed", "canceled"):
                return None
        return None

    async def _dial(self, dial: Element, url: str) -> tuple[twiml.CheckedTwiML | None, str]:
        numbers = [(child.text or "").strip() for child in dial]
        callee = next((CALLEES[n] for n in numbers if n in CALLEES), "person")
        timing = self.calls.timing
        ring = min(float(dial.get("timeout") or 30), 2 * timing.ring)
        self.show(f"dialling {', '.join(numbers) or '-'}: {callee}")
        if callee == "person":
            await asyncio.sleep(timing.ring)
            started = time.monotonic()
            moved = await self._talk(timing.talk)
            if moved is not None:
                return moved, url
            fields = {"DialCallStatus": "completed"}
            fields["DialCallDuration"] = str(max(1, round(time.monotonic() - started)))
        else:
            await asyncio.sleep(ring / 2 if callee == "busy" else ring)
            status = "busy" if callee == "busy" else "no-answer"
            fields = {"DialCallStatus": status, "DialCallDuration": "0"}
        fields["DialCallSid"] = simulate.new_call_sid()
        return await self._action(urljoin(url, dial.get("action")), fields)

    async def _record(self, record: Element, url: str) -> tuple[twiml.CheckedTwiML | None, str]:
        await asyncio.sleep(min(1.0, self.calls.timing.talk))
        recording = self.calls.twilio.recordings.add(self.sid)
        self.show(f"left a {recording.duration} s message: recording {recording.sid}")
        account_sid = self.calls.twilio.account_sid
        fields = {
            "RecordingSid": recording.sid,
            "RecordingUrl": f"https://api.twilio.com/2010-04-01/Accounts/{account_sid}"
            f"/Recordings/{recording.sid}",
            "RecordingDuration": str(recording.duration),
            "Digits": "hangup",
        }
        following = await self._action(urljoin(url, record.get("action")), fields)
        status_url = record.get("recordingStatusCallback")
        if status_url:
            form = self.calls.twilio.recordings.status_form(recording, account_sid=account_sid)
            response = await post_recording_status(
                self.calls.client,
                urljoin(url, status_url),
                form,
                auth_token=self.calls.auth_token,
            )
            self.show(f"recording status callback (completed) -> HTTP {response.status_code}")
        return following

    async def _action(
        self, action_url: str, fields: dict[str, str]
    ) -> tuple[twiml.CheckedTwiML | None, str]:
        """Post to an action URL as Twilio does; the TwiML it answers with."""
        form = simulate.voice_form(
            from_number=self.form.get("From"),
            to_number=self.form.get("To"),
            call_sid=self.sid,
            account_sid=self.form.get("AccountSid", simulate.PLACEHOLDER_ACCOUNT_SID),
            status="in-progress",
            params=fields,
        )
        form.pop("CallToken", None)
        delivery = await simulate.deliver(
            self.calls.client, action_url, form, auth_token=self.calls.auth_token
        )
        shown = " ".join(f"{name}={value}" for name, value in fields.items())
        if delivery.status != 200:
            self.show(f"action {shown} -> {simulate.judge(delivery).problem}")
            return None, action_url
        try:
            checked = twiml.check_twiml(delivery.body)
        except twiml.InvalidTwiML as exc:
            self.show(f"action {shown} -> no TwiML ({exc})")
            return None, action_url
        self.show(f"action {shown} -> {simulate.describe(delivery.body)}")
        return checked, action_url
