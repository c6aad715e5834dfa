"""The audio store the settings name: `AUDIO_STORE` (`file://PATH` or
`s3://BUCKET/PREFIX`), else a file store in CALL_AUDIO_DIR."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from bridge.audio.files import FileAudioStore
from bridge.audio.store import AudioStore
from bridge.settings import Settings


def open_audio_store(settings: Settings) -> AudioStore:
    """The store; an s3:// one is configured from the AWS_* settings (never read from
    the environment here). Raises AudioStoreError when the library refuses them."""
    parts = urlsplit(settings.audio_store_url)
    if parts.scheme == "s3":
        from bridge.audio.s3 import S3AudioStore, S3Options

        return S3AudioStore(
            S3Options(
                bucket=parts.netloc,
                prefix=parts.path.strip("/"),
                access_key_id=settings.aws_access_key_id,
                secret_access_key=settings.aws_secret_access_key,
                session_token=settings.aws_session_token,
                region=settings.aws_region,
                endpoint_url=settings.aws_endpoint_url,
            )
        )
    return FileAudioStore(Path(parts.netloc + parts.path))
