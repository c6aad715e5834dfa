"""The s3:// audio store on a real S3-compatible server (moto on loopback): prefixes,
configuration from Settings, and errors that never carry credentials."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from bridge.audio import names
from bridge.audio.files import FileAudioStore
from bridge.audio.opening import open_audio_store
from bridge.audio.s3 import S3AudioStore, S3Options, _reason
from bridge.audio.store import AudioStoreError
from bridge.secret import Secret
from tests.helpers import (
    S3_ACCESS_KEY_ID,
    S3_BUCKET,
    S3_SECRET_ACCESS_KEY,
    S3Server,
    free_port,
    make_settings,
)

pytestmark = pytest.mark.anyio

NAME = names.recording("RE" + "a" * 32)


async def test_objects_go_under_the_prefix(s3_server: S3Server) -> None:
    store = open_audio_store(s3_server.settings("tenant-a/audio"))
    assert store.location == f"s3://{S3_BUCKET}/tenant-a/audio"
    await store.put(NAME, b"voicemail")
    assert s3_server.objects("tenant-a/") == {f"tenant-a/audio/{NAME}": b"voicemail"}


async def test_stores_with_other_prefixes_do_not_see_each_others_objects(
    s3_server: S3Server,
) -> None:
    first = open_audio_store(s3_server.settings())
    second = open_audio_store(s3_server.settings())
    await first.put(NAME, b"first")
    assert await second.read(NAME) is None
    assert await second.delete([NAME]) == 0
    assert await first.size(NAME) == len(b"first")


async def test_no_prefix_is_the_bucket_root(s3_server: S3Server) -> None:
    store = open_audio_store(s3_server.settings(""))
    assert store.location == f"s3://{S3_BUCKET}"
    name = names.post_call_audio("conv_at_the_root", "0" * 64)
    await store.put(name, b"root")
    try:
        assert s3_server.objects("post-call/conv_at_the_root")[name] == b"root"
    finally:
        await store.delete([name])


def test_settings_choose_the_backend(tmp_path: Path) -> None:
    default = open_audio_store(make_settings(call_audio_dir=tmp_path / "audio"))
    assert isinstance(default, FileAudioStore) and default.root == tmp_path / "audio"
    chosen = open_audio_store(make_settings(audio_store="s3://bucket-name/a/b/"))
    assert isinstance(chosen, S3AudioStore)
    assert (chosen.options.bucket, chosen.options.prefix) == ("bucket-name", "a/b")


def test_the_s3_store_is_configured_from_settings_only() -> None:
    store = open_audio_store(
        make_settings(
            audio_store="s3://bucket-name/p",
            aws_access_key_id="AKIAEXAMPLE",
            aws_secret_access_key=Secret("shh"),
            aws_session_token=Secret("session"),
            aws_region="eu-west-1",
            aws_endpoint_url="https://acct.r2.cloudflarestorage.com",
        )
    )
    assert isinstance(store, S3AudioStore)
    config = store._store.config
    assert config["access_key_id"] == "AKIAEXAMPLE"
    assert config["secret_access_key"] == "shh"
    assert config["session_token"] == "session"
    assert config["region"] == "eu-west-1"
    assert config["endpoint"] == "https://acct.r2.cloudflarestorage.com"
    assert store._store.client_options is not None
    assert "allow_http" not in store._store.client_options
    assert "shh" not in repr(store.options)


async def test_an_unreachable_endpoint_is_an_audio_store_error_without_secrets(
    s3_server: S3Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = s3_server.settings(aws_endpoint_url=f"http://127.0.0.1:{free_port()}")
    store = open_audio_store(settings)
    assert isinstance(store, S3AudioStore)
    store = S3AudioStore(dataclasses.replace(store.options, max_retries=1, retry_seconds=1))
    operations = [
        store.put(NAME, b"x"),
        store.read(NAME),
        store.size(NAME),
        store.delete([NAME]),
    ]
    for operation in operations:
        with pytest.raises(AudioStoreError) as raised:
            await operation
        message = str(raised.value)
        assert "unreachable" in message and message.startswith(f"s3://{S3_BUCKET}/")
        for secret in (S3_SECRET_ACCESS_KEY, S3_ACCESS_KEY_ID):
            assert secret not in message
            assert secret not in caplog.text
        assert raised.value.__cause__ is None and raised.value.__suppress_context__


async def test_a_missing_bucket_is_named_in_the_error(s3_server: S3Server) -> None:
    store = open_audio_store(s3_server.settings(audio_store="s3://no-such-bucket/x"))
    with pytest.raises(AudioStoreError, match=r"could not store .*: HTTP 404 \(no such bucket\?\)"):
        await store.put(NAME, b"x")


async def test_a_stream_that_breaks_is_an_audio_store_error(s3_server: S3Server) -> None:
    store = open_audio_store(s3_server.settings())
    assert isinstance(store, S3AudioStore)

    async def broken() -> object:
        yield b"part"
        raise OSError("connection reset by peer with a URL?X-Amz-Signature=abc")

    chunks = store._chunks(NAME, broken())  # type: ignore[arg-type]
    assert await anext(chunks) == b"part"
    with pytest.raises(AudioStoreError) as raised:
        await anext(chunks)
    assert "X-Amz-Signature" not in str(raised.value)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (PermissionError("AccessDenied <AWSAccessKeyId>AKIA</AWSAccessKeyId>"), "access denied"),
        (RuntimeError("Server returned non-2xx status code: 403 Forbidden: <AKIA>"), "HTTP 403"),
        (RuntimeError("inner: Status { status: 500, body: None }"), "HTTP 500"),
        (RuntimeError("HTTP error: error sending request"), "the endpoint is unreachable"),
        (RuntimeError("operation timed out"), "timed out"),
        (ValueError("Generic S3 error: something new and secret"), "ValueError"),
    ],
)
def test_reasons_are_ours_never_the_librarys_text(error: Exception, reason: str) -> None:
    assert _reason(error).startswith(reason)
    assert "AKIA" not in _reason(error) and "secret" not in _reason(error)


def test_a_configuration_the_library_refuses_is_an_audio_store_error() -> None:
    with pytest.raises(AudioStoreError, match="cannot be configured") as raised:
        S3AudioStore(S3Options(bucket="b-b-b", max_retries=-1))
    assert raised.value.__cause__ is None


async def test_signing_and_deleting_failures_are_audio_store_errors(s3_server: S3Server) -> None:
    store = open_audio_store(s3_server.settings())
    assert isinstance(store, S3AudioStore)
    await store.put(NAME, b"x")

    async def refused(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Server returned non-2xx status code: 403 Forbidden: AKIA...")

    import obstore

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(obstore, "sign_async", refused)
        patch.setattr(obstore, "delete_async", refused)
        with pytest.raises(AudioStoreError, match=r"could not sign a link to .*: HTTP 403"):
            await store.link(NAME, 60)
        with pytest.raises(AudioStoreError, match=r"could not delete 1 object\(s\): HTTP 403"):
            await store.delete([NAME])
    assert await store.delete([NAME]) == 1
