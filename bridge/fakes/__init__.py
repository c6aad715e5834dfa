"""Local stand-ins for the upstream APIs, used by the tests, the benchmark and the sandbox.

They follow the documented request and response shapes and reject malformed
requests the way the real APIs do (ElevenLabs: 422 with field errors; Twilio:
400 with Twilio's error codes)."""

from bridge.fakes.elevenlabs import FakeElevenLabs
from bridge.fakes.lookup import FakeLookup
from bridge.fakes.twilio import FakeCall, FakeTwilio

__all__ = ["FakeCall", "FakeElevenLabs", "FakeLookup", "FakeTwilio"]
