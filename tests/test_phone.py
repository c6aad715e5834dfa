"""bridge.phone: anonymous callers, countries, masking."""

from __future__ import annotations

import pytest

from bridge import phone

# --- phone.is_anonymous ----------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "anonymous",
        "Anonymous",
        "ANONYMOUS",
        " anonymous ",
        "restricted",
        "Restricted",
        "unknown",
        "unavailable",
        "private",
        "blocked",
        "",
        "+266696687",  # ANONYMOUS on a keypad
        "+86282452253",  # UNAVAILABLE
        "+8656696",  # UNKNOWN
        "+2562533",  # BLOCKED
        "+7378742833",  # RESTRICTED
    ],
)
def test_is_anonymous(value: str) -> None:
    assert phone.is_anonymous(value)


@pytest.mark.parametrize(
    "value",
    [
        "+14155550100",
        "+442071234567",
        "+81312345678",
        "+26622312345",  # a Lesotho number, like +266696687 but not it
        "+8613800138000",
        "+73787428330",
        "client:alice",
        "sip:alice@example.com",
    ],
)
def test_real_numbers_are_not_anonymous(value: str) -> None:
    assert not phone.is_anonymous(value)


# --- phone.country_of -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+14155550100", "US"),
        ("+442071234567", "GB"),
        ("+81312345678", "JP"),
        ("+4930123456", "DE"),
        ("+16135550100", "CA"),
        ("anonymous", None),
        ("+266696687", None),
        ("", None),
        ("4155550100", None),
        ("client:alice", None),
        ("+999123456789", None),
    ],
)
def test_country_of(value: str, expected: str | None) -> None:
    assert phone.country_of(value) == expected


# --- phone.mask ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+14155550100", "+14*****0100"),
        ("+442071234567", "+44******4567"),
        ("+8613800138000", "+86*******8000"),
        ("+12345", "+*****"),
        ("anonymous", "anonymous"),
        ("", "-"),
    ],
)
def test_mask(value: str, expected: str) -> None:
    assert phone.mask(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "+14155550100",
        "+442071234567",
        "+4930123456",
        "+12345678",
        "+1234567",
        "5551234",  # a 7-digit local number, dialable as is
        "+123456",
        "12345",
        "sip:alice@example.com",
    ],
)
def test_mask_keeps_at_most_first_three_and_last_four(value: str) -> None:
    masked = phone.mask(value)
    assert len(masked) == len(value)
    assert masked != value, "a masked number must hide something"
    shown = [i for i, (a, b) in enumerate(zip(value, masked, strict=True)) if a == b != "*"]
    allowed = set(range(3)) | set(range(len(value) - 4, len(value)))
    assert set(shown) <= allowed
