"""bridge.answer.transfer: moving a live call to a person, without HTTP."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import pytest
from defusedxml.ElementTree import fromstring

from bridge.answer.transfer import NO_TWILIO, Transferred, TransferRequest, transfer
from bridge.twilio.rest import TwilioError
from tests.helpers import make_settings

SID = "CA" + "0" * 32


@dataclass
class Twilio:
    fails: TwilioError | None = None
    redirected: list[tuple[str, str]] = field(default_factory=list)

    async def redirect_call(self, call_sid: str, *, twiml: str) -> None:
        if self.fails is not None:
            raise self.fails
        self.redirected.append((call_sid, twiml))


async def run(to: str, twilio: Twilio | None, **body: Any) -> Transferred:
    settings = make_settings(outbound_allowed_countries=("US",))
    request = TransferRequest.model_validate({"to": to, **body})
    return await transfer(SID, request, settings=settings, twilio=cast(Any, twilio))


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("to", "tag"), [("+14155550199", "Number"), ("sip:desk@pbx.example.com", "Sip")]
)
async def test_a_transfer_redirects_the_call_to_a_dial(to: str, tag: str) -> None:
    twilio = Twilio()
    done = await run(to, twilio, message="One moment.")
    assert (done.status, done.body["transferred"], done.body["to"]) == (200, True, to)
    ((sid, document),) = twilio.redirected
    dial = fromstring(document).find("Dial")
    assert sid == SID and dial is not None
    assert [(child.tag, child.text) for child in dial] == [(tag, to)]


@pytest.mark.anyio
async def test_a_sip_address_skips_the_country_guard_a_number_does_not() -> None:
    assert (await run("sip:someone@abroad.example", Twilio())).status == 200
    refused = await run("+442071838750", Twilio())
    assert (refused.status, refused.body["transferred"]) == (403, False)


@pytest.mark.anyio
async def test_without_twilio_a_transfer_is_503() -> None:
    assert await run("+14155550199", None) == Transferred(503, {"error": NO_TWILIO})


@pytest.mark.anyio
@pytest.mark.parametrize(("upstream", "status"), [(404, 404), (500, 502), (None, 502)])
async def test_twilio_errors(upstream: int | None, status: int) -> None:
    done = await run("+14155550199", Twilio(fails=TwilioError("nope", status=upstream)))
    assert done.status == status
    assert done.body["upstream_status"] == upstream


@pytest.mark.anyio
async def test_a_message_too_long_for_twilio_is_a_problem_with_the_message() -> None:
    done = await run("+14155550199", Twilio(), message="&" * 1000)
    assert done.status == 422
    assert [problem["field"] for problem in done.problems] == ["message"]
