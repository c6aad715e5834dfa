"""What every audio store does (`AudioStore`) and what is kept about a stored object."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StoredAudio:
    """What the call log keeps about audio instead of the audio itself."""

    name: str
    bytes: int
    sha256: str


class AudioStoreError(Exception):
    """The store could not be reached or refused the operation (worth retrying)."""


class AudioStore(Protocol):
    # Where the store is, fit to print: `file:///srv/audio`, `s3://bucket/prefix`.
    location: str

    async def put(self, name: str, audio: bytes, content_type: str = "audio/mpeg") -> StoredAudio:
        """Store `audio` under `name` atomically (a reader never sees half of it)."""
        ...

    async def read(self, name: str) -> AsyncIterator[bytes] | None:
        """The object's bytes in chunks, or None when there is no such object."""
        ...

    async def size(self, name: str) -> int | None:
        """The object's size in bytes, or None when there is no such object."""
        ...

    async def link(self, name: str, expires_in: int) -> str | None:
        """A short-lived URL a browser can fetch the object from without credentials
        (a presigned URL), or None when the store has none (stream it instead)."""
        ...

    async def delete(self, names: Iterable[str]) -> int:
        """Delete these objects; how many existed. Missing ones are not an error."""
        ...
