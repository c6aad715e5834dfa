"""What every audio store does (bridge.audio.store.AudioStore), checked on each backend:
a folder (FileAudioStore) and a real S3-compatible server (S3AudioStore on moto)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from bridge.audio import names
from bridge.audio.files import FileAudioStore
from bridge.audio.opening import open_audio_store
from bridge.audio.s3 import S3AudioStore
from bridge.audio.store import AudioStore, AudioStoreError
from tests.helpers import S3Server, make_settings

pytestmark = pytest.mark.anyio

AUDIO = bytes(range(256)) * 1000  # 256 kB, several chunks
NAME = names.post_call_audio("conv_123", "0" * 64)


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> AudioStore:
    if request.param == "file":
        return open_audio_store(make_settings(audio_store=f"file://{tmp_path / 'audio'}"))
    server: S3Server = request.getfixturevalue("s3_server")
    return open_audio_store(server.settings())


async def everything(chunks: AsyncIterator[bytes] | None) -> bytes | None:
    if chunks is None:
        return None
    return b"".join([chunk async for chunk in chunks])


async def test_put_then_read_size_and_delete(store: AudioStore) -> None:
    stored = await store.put(NAME, AUDIO)
    assert (stored.name, stored.bytes) == (NAME, len(AUDIO))
    assert stored.sha256 == hashlib.sha256(AUDIO).hexdigest()
    assert await everything(await store.read(NAME)) == AUDIO
    assert await store.size(NAME) == len(AUDIO)
    assert await store.delete([NAME]) == 1
    assert await store.read(NAME) is None
    assert await store.size(NAME) is None


async def test_a_second_put_replaces_the_object(store: AudioStore) -> None:
    await store.put(NAME, b"first")
    await store.put(NAME, b"second")
    assert await everything(await store.read(NAME)) == b"second"


async def test_missing_objects_are_none_and_not_counted_as_deleted(store: AudioStore) -> None:
    missing = names.recording("RE" + "0" * 32)
    assert await store.read(missing) is None
    assert await store.size(missing) is None
    await store.put(NAME, AUDIO)
    assert await store.delete([missing, NAME]) == 1
    assert await store.delete([]) == 0


async def test_an_empty_object_is_an_object(store: AudioStore) -> None:
    await store.put(NAME, b"")
    assert await store.size(NAME) == 0
    assert await everything(await store.read(NAME)) == b""


@pytest.mark.parametrize("name", ["../secrets.mp3", "/etc/passwd", "post-call/a.wav", "x.mp3"])
async def test_names_the_bridge_does_not_make_are_refused(store: AudioStore, name: str) -> None:
    for operation in (store.put(name, b"x"), store.read(name), store.size(name)):
        with pytest.raises(ValueError, match="not an audio name"):
            await operation
    with pytest.raises(ValueError, match="not an audio name"):
        await store.delete([name])


async def test_only_the_s3_store_has_links(store: AudioStore) -> None:
    await store.put(NAME, AUDIO)
    link = await store.link(NAME, 120)
    if isinstance(store, FileAudioStore):
        assert link is None
        return
    assert isinstance(store, S3AudioStore)
    assert link is not None and "X-Amz-Expires=120" in link
    async with httpx.AsyncClient() as client:
        response = await client.get(link)
    assert response.status_code == 200
    assert response.content == AUDIO
    assert response.headers["content-type"] == "audio/mpeg"


async def test_location_names_the_store_without_credentials(store: AudioStore) -> None:
    assert store.location.startswith(("file://", "s3://callbridge-audio/"))
    assert "secret" not in store.location


async def test_a_file_store_that_cannot_delete_says_so(tmp_path: Path) -> None:
    store = FileAudioStore(tmp_path)
    (tmp_path / "post-call" / "conv_123.mp3").mkdir(parents=True)  # unlink refuses a folder
    with pytest.raises(AudioStoreError, match="could not delete"):
        await store.delete([NAME])
