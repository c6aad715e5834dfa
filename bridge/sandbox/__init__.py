"""`callbridge sandbox`: the bridge with local stand-ins for ElevenLabs and Twilio, so a
person with no account can place simulated calls and watch what the bridge does."""

from bridge.sandbox.run import Sandbox, SandboxError, SandboxOptions
from bridge.sandbox.virtual_phone import Timing

__all__ = ["Sandbox", "SandboxError", "SandboxOptions", "Timing"]
