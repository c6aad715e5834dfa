"""Object names: made by the bridge from checked identifiers, never from request data."""

from __future__ import annotations

import pytest

from bridge.audio import names

DIGEST = "ab" * 32


@pytest.mark.parametrize(
    ("conversation_id", "expected"),
    [
        ("conv_01jx-AB", "post-call/conv_01jx-AB.mp3"),
        ("c" * 128, f"post-call/{'c' * 128}.mp3"),
        # Anything that is not a plain id is replaced by the audio's digest.
        (None, f"post-call/{DIGEST}.mp3"),
        ("", f"post-call/{DIGEST}.mp3"),
        ("../../etc/passwd", f"post-call/{DIGEST}.mp3"),
        ("conv/../x", f"post-call/{DIGEST}.mp3"),
        ("conv.mp3", f"post-call/{DIGEST}.mp3"),
        ("c" * 129, f"post-call/{DIGEST}.mp3"),
        ("conv\n", f"post-call/{DIGEST}.mp3"),
    ],
)
def test_post_call_audio(conversation_id: str | None, expected: str) -> None:
    name = names.post_call_audio(conversation_id, DIGEST)
    assert name == expected
    assert names.is_audio_name(name)


def test_recording() -> None:
    assert names.recording("RE0123abcd") == "recordings/RE0123abcd.mp3"
    assert names.is_audio_name(names.recording("RE0123abcd"))


@pytest.mark.parametrize("sid", ["", "RE/../x", "RE 1", "RE.mp3", "R" * 129, "RE\x00"])
def test_recording_refuses_what_is_not_an_id(sid: str) -> None:
    with pytest.raises(ValueError, match="letters and digits"):
        names.recording(sid)


@pytest.mark.parametrize(
    ("name", "made_by_the_bridge"),
    [
        ("post-call/conv_1.mp3", True),
        ("recordings/RE1.mp3", True),
        ("recordings/RE1.wav", False),
        ("other/RE1.mp3", False),
        ("recordings/../RE1.mp3", False),
        ("/recordings/RE1.mp3", False),
        ("recordings/RE1.mp3/", False),
        ("recordings/sub/RE1.mp3", False),
        ("recordings/.mp3", False),
        ("/srv/call-audio/conv_1.mp3", False),  # a path from before the audio store
        ("", False),
    ],
)
def test_is_audio_name(name: str, made_by_the_bridge: bool) -> None:
    assert names.is_audio_name(name) is made_by_the_bridge
