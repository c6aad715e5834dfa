"""The Twilio account and its phone numbers (IncomingPhoneNumbers), through the SDK
over the bridge's httpx seam (`bridge.twilio.rest`): what `callbridge doctor` reads to
check that calls to TWILIO_PHONE_NUMBER reach the bridge, and changes to fix it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from twilio.base.exceptions import TwilioException, TwilioRestException

from bridge.twilio.rest import TwilioError, TwilioREST, json_object

NUMBER_SID = re.compile(r"^PN[0-9a-fA-F]{32}$")
# The fields of an IncomingPhoneNumber that decide where its calls go; the names are
# both the resource's JSON fields and the SDK's update() arguments.
ROUTING_FIELDS = (
    "voice_url",
    "voice_method",
    "status_callback",
    "status_callback_method",
    "voice_application_sid",
    "trunk_sid",
)


@dataclass(frozen=True)
class PhoneNumber:
    sid: str
    phone_number: str
    # voice_url, voice_method, ...: "" when Twilio has none (it says "" or null).
    config: dict[str, str]

    @classmethod
    def from_resource(cls, raw: dict[str, Any]) -> PhoneNumber:
        sid, number = raw.get("sid"), raw.get("phone_number")
        if not isinstance(sid, str) or not NUMBER_SID.fullmatch(sid) or not isinstance(number, str):
            raise TwilioError("the phone number resource has no valid sid or phone_number")
        config = {name: _text(raw.get(name)) for name in ROUTING_FIELDS}
        return cls(sid=sid, phone_number=number, config=config)


class TwilioNumbers(TwilioREST):
    """Account and IncomingPhoneNumbers calls; errors are TwilioError, as in TwilioREST."""

    async def account(self) -> dict[str, Any]:
        """The account resource, without the auth token the API includes in it."""
        response = await self._sdk(
            lambda client: client.api.v2010.accounts(self._account_sid).fetch_async()
        )
        account = json_object(response)
        account.pop("auth_token", None)
        return account

    async def find_number(self, phone_number: str) -> PhoneNumber | None:
        """The account's number that is exactly `phone_number`, if it has it."""

        async def first_page(client: Any) -> Any:
            # One page is enough: the filter is the whole E.164 number.
            try:
                return await client.incoming_phone_numbers.page_async(
                    phone_number=phone_number, page_size=50
                )
            except TwilioRestException:
                raise
            except TwilioException as exc:  # a 200 whose body is not a list page
                raise TwilioError(f"unexpected list response: {exc}", status=200) from None

        response = await self._sdk(first_page)
        records = json_object(response).get("incoming_phone_numbers")
        if not isinstance(records, list):
            raise TwilioError("the response has no incoming_phone_numbers list")
        for raw in records:
            if isinstance(raw, dict) and raw.get("phone_number") == phone_number:
                return PhoneNumber.from_resource(raw)
        return None

    async def fetch_number(self, sid: str) -> PhoneNumber:
        _check_sid(sid)
        response = await self._sdk(lambda client: client.incoming_phone_numbers(sid).fetch_async())
        return PhoneNumber.from_resource(json_object(response))

    async def update_number(self, sid: str, changes: dict[str, str]) -> PhoneNumber:
        """Set routing fields (ROUTING_FIELDS names; "" removes a value)."""
        _check_sid(sid)
        unknown = set(changes) - set(ROUTING_FIELDS)
        if unknown:
            raise ValueError(f"not phone number routing fields: {', '.join(sorted(unknown))}")
        response = await self._sdk(
            lambda client: client.incoming_phone_numbers(sid).update_async(**changes)
        )
        return PhoneNumber.from_resource(json_object(response))


def _check_sid(sid: str) -> None:
    # The SDK puts the sid into the URL path unescaped.
    if not NUMBER_SID.fullmatch(sid):
        raise ValueError(f"{sid!r} is not a Twilio phone number SID")


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
