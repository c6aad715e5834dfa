"""TwiML the bridge writes (``build``) and TwiML it receives (``check``)."""

from twiml.build import forward, hangup, reject, say_and_hangup, voicemail
from twiml.check import CheckedTwiML, InvalidTwiML, Reason, check_twiml

__all__ = [
    "CheckedTwiML",
    "InvalidTwiML",
    "Reason",
    "check_twiml",
    "forward",
    "hangup",
    "reject",
    "say_and_hangup",
    "voicemail",
]
