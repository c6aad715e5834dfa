"""AUDIO_STORE and the AWS_* variables the s3:// store is configured with."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.settings import Settings, SettingsError


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("file:///srv/call-audio", "file:///srv/call-audio"),
        ("file:///srv/call-audio/", "file:///srv/call-audio"),
        ("file://call-audio", "file://call-audio"),
        ("s3://callbridge-audio", "s3://callbridge-audio"),
        ("s3://callbridge-audio/", "s3://callbridge-audio"),
        ("s3://callbridge-audio/prod/calls/", "s3://callbridge-audio/prod/calls"),
        ("s3://my.bucket-1/p", "s3://my.bucket-1/p"),
    ],
)
def test_accepted_audio_stores(value: str, expected: str) -> None:
    settings = Settings.from_env({"AUDIO_STORE": value})
    assert settings.audio_store == expected
    assert settings.audio_store_url == expected


@pytest.mark.parametrize(
    "value",
    [
        "/srv/call-audio",  # a path, not a URL
        "call-audio",
        "file://",
        "s3://",
        "s3:///prefix",
        "s3://Upper-Case/p",
        "s3://ab/p",  # too short
        f"s3://{'b' * 64}/p",  # too long
        "s3://-bucket/p",
        "s3://bucket_name/p",
        "s3://bucket/p?versionId=1",
        "gs://bucket/p",
        "https://bucket.s3.amazonaws.com/p",
    ],
)
def test_a_bad_audio_store_names_the_variable_and_the_rule(value: str) -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"AUDIO_STORE": value})
    (problem,) = raised.value.problems
    assert problem.startswith("AUDIO_STORE: must be file://PATH or s3://BUCKET/PREFIX")
    assert "lowercase" in problem


def test_without_audio_store_the_files_go_to_call_audio_dir() -> None:
    assert Settings.from_env({}).audio_store_url == "file://call-audio"
    settings = Settings.from_env({"CALL_AUDIO_DIR": "/data/audio"})
    assert settings.call_audio_dir == Path("/data/audio")
    assert settings.audio_store_url == "file:///data/audio"


def test_the_aws_variables() -> None:
    settings = Settings.from_env(
        {
            "AUDIO_STORE": "s3://bucket-name/calls",
            "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "secret-key-value",
            "AWS_SESSION_TOKEN": "session-token-value",
            "AWS_DEFAULT_REGION": "eu-west-1",
            "AWS_ENDPOINT_URL": "https://acct.r2.cloudflarestorage.com/",
        }
    )
    assert settings.aws_access_key_id == "AKIAEXAMPLE"
    assert settings.aws_secret_access_key.reveal() == "secret-key-value"
    assert settings.aws_session_token.reveal() == "session-token-value"
    assert settings.aws_region == "eu-west-1"
    assert settings.aws_endpoint_url == "https://acct.r2.cloudflarestorage.com"
    assert "secret-key-value" not in repr(settings)
    assert "session-token-value" not in repr(settings)
    assert Settings.from_env({"AWS_REGION": "auto", "AWS_DEFAULT_REGION": "x"}).aws_region == "auto"


def test_a_bad_endpoint_names_the_variable() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({"AWS_ENDPOINT_URL": "r2.cloudflarestorage.com"})
    (problem,) = raised.value.problems
    assert problem.startswith("AWS_ENDPOINT_URL:")
