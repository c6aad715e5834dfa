"""Local stand-ins for the upstream APIs, used by the tests, the benchmark and the sandbox.

They follow the documented request and response shapes and reject malformed
requests the way the real APIs do (422 with field errors)."""

from bridge.fakes.elevenlabs import FakeElevenLabs

__all__ = ["FakeElevenLabs"]
