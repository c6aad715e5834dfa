"""The audio store in a local folder (`AUDIO_STORE=file://PATH`, or CALL_AUDIO_DIR).

A Heroku dyno's disk is wiped on every restart: use it for development and for
servers with a persistent disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

from bridge.audio.names import is_audio_name
from bridge.audio.store import AudioStoreError, StoredAudio

CHUNK = 64 * 1024
_LEGACY_FILE = re.compile(r"[A-Za-z0-9_-]{1,128}\.mp3")


class FileAudioStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.location = f"file://{root}"

    def _path(self, name: str) -> Path:
        if is_audio_name(name):
            return self.root / name
        legacy = self._legacy(name)
        if legacy is None:
            raise ValueError(f"not an audio name the bridge makes: {name!r}")
        return legacy

    def _legacy(self, name: str) -> Path | None:
        """A file written before the audio store (calls.audio_path was the absolute path
        of `CALL_AUDIO_DIR/<conversation_id>.mp3`), when it is in this store's folder."""
        path = Path(name)
        if not (path.is_absolute() and _LEGACY_FILE.fullmatch(path.name)):
            return None
        return path if path.parent == self.root.resolve() else None

    async def put(self, name: str, audio: bytes, content_type: str = "audio/mpeg") -> StoredAudio:
        target = self._path(name)
        try:
            await asyncio.to_thread(_write_atomically, target, audio)
        except OSError as exc:  # a full disk, a read-only folder: the store refused it
            raise AudioStoreError(f"{self.location}: could not store {name}: {exc}") from exc
        return StoredAudio(name=name, bytes=len(audio), sha256=hashlib.sha256(audio).hexdigest())

    async def read(self, name: str) -> AsyncIterator[bytes] | None:
        path = self._path(name)
        if not await asyncio.to_thread(path.is_file):
            return None
        return _chunks(path)

    async def size(self, name: str) -> int | None:
        path = self._path(name)
        try:
            return (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None

    async def link(self, name: str, expires_in: int) -> str | None:
        return None

    async def delete(self, names: Iterable[str]) -> int:
        paths = [self._path(name) for name in names]
        try:
            return await asyncio.to_thread(_unlink_all, paths)
        except OSError as exc:
            raise AudioStoreError(f"{self.location}: could not delete: {exc}") from exc


def _write_atomically(target: Path, audio: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".audio-", suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(audio)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _unlink_all(paths: list[Path]) -> int:
    deleted = 0
    for path in paths:
        try:
            path.unlink()
            deleted += 1
        except FileNotFoundError:
            pass
    return deleted


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    with await asyncio.to_thread(path.open, "rb") as file:
        while chunk := await asyncio.to_thread(file.read, CHUNK):
            yield chunk
