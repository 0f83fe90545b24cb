"""Builders for request bodies used across tests."""

from __future__ import annotations

import secrets
from typing import Any


def conversation(external_id: str | None = None, *texts: str, **overrides: Any) -> dict[str, Any]:
    texts = texts or ("Hello, I need help with my order.", "Of course, what is the order number?")
    body: dict[str, Any] = {
        "external_id": external_id or f"conv-{secrets.token_hex(6)}",
        "site": "shop",
        "channel": "web",
        "language": "en",
        "started_at": "2026-11-01T10:00:00Z",
        "ended_at": "2026-11-01T10:30:00Z",
        "visitor": {"id": "visitor-1", "name": "Ola Nordmann", "email": "ola@example.no"},
        "agents": [{"id": "agent-7", "name": "Kari"}],
        "tags": ["support"],
        "metadata": {"plan": "pro"},
        "messages": [
            {
                "at": f"2026-11-01T10:{i + 1:02d}:00Z",
                "sender": {"role": "visitor" if i % 2 == 0 else "agent", "id": "visitor-1" if i % 2 == 0 else "agent-7"},
                "text": text,
            }
            for i, text in enumerate(texts)
        ],
    }
    body.update(overrides)
    return body
