"""Phone numbers on the command line: E.164, as the server wants them, checked before
anything is sent or matched, with the number probably meant when it is not."""

from __future__ import annotations

from bridge.cli.errors import UsageError


def e164_argument(name: str, value: str, *, anonymous_ok: bool = False) -> str:
    """`value` when it is an E.164 number (or, with `anonymous_ok`, a withheld-number
    word as Twilio sends it), else a usage error naming option `name`."""
    from bridge import phone  # phonenumbers: only for the commands that take a number

    if phone.is_e164(value) or (anonymous_ok and phone.is_anonymous(value)):
        return value
    withheld = ", or anonymous" if anonymous_ok else ""
    meant = phone.suggestion(value)
    hint = f" (did you mean {meant}?)" if meant else ""
    raise UsageError(
        f"{name} {value!r}: expected an E.164 number like +14155550123{withheld}{hint}"
    )
