"""The audio store the settings name."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from bridge.audio.files import FileAudioStore
from bridge.audio.store import AudioStore
from bridge.settings import Settings


def open_audio_store(settings: Settings) -> AudioStore:
    parts = urlsplit(settings.audio_store_url)
    if parts.scheme == "file":
        return FileAudioStore(Path(parts.netloc + parts.path))
    raise NotImplementedError("s3:// audio stores are not built yet")
