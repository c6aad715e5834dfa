"""TwiML the bridge writes (``build``) and TwiML it reads (``check``: ``parse_twiml``,
``check_twiml``)."""

from twiml.build import forward, hangup, reject, say_and_hangup, voicemail
from twiml.check import CheckedTwiML, InvalidTwiML, Reason, check_twiml, parse_twiml

__all__ = [
    "CheckedTwiML",
    "InvalidTwiML",
    "Reason",
    "check_twiml",
    "forward",
    "hangup",
    "parse_twiml",
    "reject",
    "say_and_hangup",
    "voicemail",
]
