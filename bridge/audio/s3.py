"""The audio store in an S3-compatible bucket (`AUDIO_STORE=s3://BUCKET/PREFIX`): AWS S3,
Cloudflare R2, Bucketeer on Heroku, or any server that speaks the S3 API.

Built on obstore (the Rust `object_store` crate): asynchronous, streaming reads and
presigned URLs, SigV4 done by the library. Configured only from Settings
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION,
AWS_ENDPOINT_URL); with AWS_ENDPOINT_URL the bucket is addressed path-style
(`https://endpoint/bucket/key`), which every S3-compatible server accepts.

obstore is imported when a store is made, not with this module's users, so the CLI
starts without it. Its errors become AudioStoreError with a message made here: the
operation, the object and the HTTP status or "unreachable", never the library's text
(an S3 error body may echo the access key id, a request's URL may carry a signature).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bridge.audio.names import is_audio_name
from bridge.audio.store import AudioStoreError, StoredAudio
from bridge.secret import Secret

if TYPE_CHECKING:
    from obstore.store import S3Store

CHUNK = 64 * 1024
# How many HEAD requests a delete sends at once (to count what existed).
HEAD_CONCURRENCY = 16
_STATUS = re.compile(r"status code: (\d{3})|status: (\d{3})")


@dataclass(frozen=True, slots=True)
class S3Options:
    """Where the bucket is and how to reach it (from Settings: `from_settings`)."""

    bucket: str
    prefix: str = ""
    access_key_id: str = ""
    secret_access_key: Secret = field(default_factory=lambda: Secret(""))
    session_token: Secret = field(default_factory=lambda: Secret(""))
    region: str = ""
    endpoint_url: str = ""
    # Seconds to connect, and for a whole request; retries of 5xx and connection
    # failures (with backoff) stop after `retry_seconds`.
    connect_timeout: float = 5.0
    timeout: float = 60.0
    max_retries: int = 3
    retry_seconds: float = 15.0


class S3AudioStore:
    def __init__(self, options: S3Options) -> None:
        self.options = options
        self.location = f"s3://{options.bucket}/{options.prefix}".rstrip("/")
        self._store = _open(options)

    def _key(self, name: str) -> str:
        if not is_audio_name(name):
            raise ValueError(f"not an audio name the bridge makes: {name!r}")
        return name

    async def put(self, name: str, audio: bytes, content_type: str = "audio/mpeg") -> StoredAudio:
        import obstore

        key = self._key(name)
        try:
            await obstore.put_async(
                self._store, key, audio, attributes={"Content-Type": content_type}
            )
        except Exception as exc:
            raise self._error("store", name, exc) from None
        return StoredAudio(name=name, bytes=len(audio), sha256=hashlib.sha256(audio).hexdigest())

    async def read(self, name: str) -> AsyncIterator[bytes] | None:
        import obstore

        key = self._key(name)
        try:
            result = await obstore.get_async(self._store, key)
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._error("read", name, exc) from None
        return self._chunks(name, result.stream(min_chunk_size=CHUNK))

    async def _chunks(self, name: str, stream: AsyncIterator[Any]) -> AsyncIterator[bytes]:
        try:
            async for chunk in stream:
                yield bytes(chunk)
        except Exception as exc:
            raise self._error("read", name, exc) from None

    async def size(self, name: str) -> int | None:
        import obstore

        key = self._key(name)
        try:
            meta = await obstore.head_async(self._store, key)
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._error("look up", name, exc) from None
        return int(meta["size"])

    async def link(self, name: str, expires_in: int) -> str | None:
        import obstore

        key = self._key(name)
        try:
            return await obstore.sign_async(self._store, "GET", key, timedelta(seconds=expires_in))
        except Exception as exc:
            raise self._error("sign a link to", name, exc) from None

    async def delete(self, names: Iterable[str]) -> int:
        """Delete the objects (one DeleteObjects request per 1000); S3 does not say
        which existed, so each is looked up first to count them."""
        import obstore

        keys = [self._key(name) for name in names]
        if not keys:
            return 0
        limit = asyncio.Semaphore(HEAD_CONCURRENCY)

        async def exists(name: str) -> bool:
            async with limit:
                return await self.size(name) is not None

        found = [
            key
            for key, there in zip(keys, await asyncio.gather(*map(exists, keys)), strict=True)
            if there
        ]
        if found:
            try:
                await obstore.delete_async(self._store, found)
            except Exception as exc:
                raise self._error("delete", f"{len(found)} object(s)", exc) from None
        return len(found)

    def _error(self, doing: str, name: str, exc: BaseException) -> AudioStoreError:
        return AudioStoreError(f"{self.location}: could not {doing} {name}: {_reason(exc)}")


def _open(options: S3Options) -> S3Store:
    from obstore.store import S3Store

    config: dict[str, Any] = {}
    if options.access_key_id:
        config["access_key_id"] = options.access_key_id
    if options.secret_access_key:
        config["secret_access_key"] = options.secret_access_key.reveal()
    if options.session_token:
        config["session_token"] = options.session_token.reveal()
    if options.region:
        config["region"] = options.region
    client: dict[str, Any] = {
        "connect_timeout": timedelta(seconds=options.connect_timeout),
        "timeout": timedelta(seconds=options.timeout),
    }
    if options.endpoint_url:
        # Path-style: `endpoint/bucket/key` works on every S3-compatible server and on
        # a loopback endpoint, where a bucket subdomain would not resolve.
        config["endpoint"] = options.endpoint_url.rstrip("/")
        config["virtual_hosted_style_request"] = False
        if urlsplit(options.endpoint_url).scheme == "http":
            client["allow_http"] = True
    try:
        return S3Store(
            options.bucket,
            prefix=options.prefix or None,
            config=config,  # type: ignore[arg-type]
            client_options=client,  # type: ignore[arg-type]
            retry_config={
                "max_retries": options.max_retries,
                "retry_timeout": timedelta(seconds=options.retry_seconds),
            },
        )
    except Exception as exc:
        raise AudioStoreError(
            f"s3://{options.bucket}: cannot be configured: {_reason(exc)}"
        ) from None


def _reason(exc: BaseException) -> str:
    """What went wrong, in words of ours: the library's message may carry URLs and
    response bodies, so only the HTTP status (or that none came) is taken from it."""
    if isinstance(exc, PermissionError):
        return "access denied (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
    text = str(exc)
    found = _STATUS.search(text)
    if found:
        status = found.group(1) or found.group(2)
        hint = {
            "403": " (access denied: check the AWS_* credentials and the bucket's policy)",
            "404": " (no such bucket?)",
        }.get(status, "")
        return f"HTTP {status}{hint}"
    if "error sending request" in text or "connect" in text.lower():
        return "the endpoint is unreachable"
    if "timed out" in text.lower() or "timeout" in text.lower():
        return "timed out"
    return type(exc).__name__
