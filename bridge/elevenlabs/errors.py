"""The human part of an ElevenLabs error body, for every client of its API."""

from __future__ import annotations

import json

import httpx

# Long enough for a validation error's few fields; short enough for one log line.
MESSAGE_LIMIT = 300


def error_message(response: httpx.Response, limit: int = MESSAGE_LIMIT) -> str:
    """One line, at most `limit` characters (then "..."); the reason phrase when empty.

    Shapes seen: `{"detail": {"status": ..., "message": ...}}`, `{"detail": "..."}`,
    and FastAPI's 422 `{"detail": [{"loc": [...], "msg": ...}, ...]}`; anything else
    (an HTML error page from a proxy) is shown as it came.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, dict):
        text = str(detail.get("message") or detail.get("status") or json.dumps(detail))
    elif isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                loc = ".".join(str(part) for part in item.get("loc", []) if part != "body")
                parts.append(f"{loc}: {item.get('msg', '')}" if loc else str(item.get("msg", "")))
        text = "; ".join(parts)
    elif isinstance(detail, str):
        text = detail
    else:
        text = response.text
    text = " ".join(text.split()) or response.reason_phrase
    return text[:limit] + ("..." if len(text) > limit else "")
