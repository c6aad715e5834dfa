"""The phone network's side of an incoming call: once the bridge has answered the
voice webhook (sent by `callbridge simulate inbound`), the caller stays on for as long as
the TwiML keeps them, then the call ends and the number's status callback reports it.
(A real number reports to the "Call status changes" URL set in the Twilio console;
the sandbox's number reports to the bridge's /twilio/status.)"""

from __future__ import annotations

import asyncio

import httpx

import twiml
from bridge.sandbox.background import Background
from bridge.sandbox.report import Reporter
from bridge.sandbox.tap import Exchange
from bridge.sandbox.virtual_phone import Timing, callback_form, ended
from bridge.simulate import voice_webhook as simulate
from bridge.twilio.form import Form
from bridge.twilio.paths import STATUS_PATH

# Verbs that keep the caller on the line for a while (a conversation, a person, a message).
LASTING = frozenset({"Connect", "Dial", "Record", "Gather"})


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
    ) -> None:
        self.status_url = bridge_url + STATUS_PATH
        self.auth_token = auth_token
        self.client = client
        self.report = report
        self.background = background
        self.timing = timing

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
            self.background.spawn(self._play(form, checked))

    async def _play(self, form: Form, checked: twiml.CheckedTwiML) -> None:
        duration = 0
        if checked.verbs[:1] == ("Reject",):
            reject = checked.root.find("Reject")
            reason = reject.get("reason") if reject is not None else None
            # Twilio ends a rejected call as busy or no-answer, by the reason given.
            status = "busy" if reason == "busy" else "no-answer"
        else:
            seconds = (
                self.timing.talk if LASTING & set(checked.verbs) else min(1.0, self.timing.talk)
            )
            await asyncio.sleep(seconds)
            status = "completed"
            duration = max(1, round(seconds))
        sid = form.get("CallSid")
        self.report("phone", f"{sid} {status} after {duration} s")
        callback = callback_form(
            from_number=form.get("From"),
            to_number=form.get("To"),
            call_sid=sid,
            account_sid=form.get("AccountSid", simulate.PLACEHOLDER_ACCOUNT_SID),
            direction="inbound",
            status=status,
        )
        delivery = await simulate.deliver(
            self.client,
            self.status_url,
            {**callback, **ended(status, duration)},
            auth_token=self.auth_token,
        )
        if delivery.status != 200:
            self.report("phone", f"{sid} status callback: {simulate.judge(delivery).problem}")
