"""Saying what went wrong with a request to ElevenLabs or Twilio, the same way in
every check, and whether a failed change may still have been applied."""

from __future__ import annotations

from typing import Protocol


class FailedRequest(Protocol):
    """What ElevenLabsError and TwilioError both carry."""

    @property
    def status(self) -> int | None: ...  # None: no HTTP answer

    @property
    def message(self) -> str: ...

    @property
    def not_sent(self) -> bool: ...  # True: the request surely never arrived


def no_contact(service: str, error: FailedRequest, at: str | None = None) -> str:
    """A request without an HTTP answer: "could not reach Twilio at ...: ..." when it
    was never sent, "no answer from ..." when it was (and may have arrived)."""
    reached = "could not reach" if error.not_sent else "no answer from"
    where = f" at {at}" if at else ""
    return f"{reached} {service}{where}: {error.message}"


def describe(service: str, error: FailedRequest) -> str:
    """Any upstream error, in words: no_contact(...), or the error's own text (which
    has the HTTP status)."""
    if error.status is None:
        return no_contact(service, error)
    return str(error)


def surely_not_applied(error: FailedRequest) -> bool:
    """A change that failed like this did not happen: it never left, or the API
    refused it (4xx). After a 5xx, a timeout or a dropped connection it may have."""
    return error.not_sent or (error.status is not None and 400 <= error.status < 500)
