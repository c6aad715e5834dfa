"""Sealing text: only the key that sealed it opens it."""

from __future__ import annotations

import pytest

from bridge.outbound.sealing import Sealer


def test_text_is_sealed_for_this_key_only() -> None:
    sealed = Sealer("one key").seal_text("on no answer: agent_x")
    assert "agent_x" not in sealed and sealed.isascii()
    assert Sealer("one key").open_text(sealed) == "on no answer: agent_x"
    with pytest.raises(ValueError, match="cannot be opened"):
        Sealer("another key").open_text(sealed)
    with pytest.raises(ValueError, match="cannot be opened"):
        Sealer("one key").open_text("not sealed ✓")
