"""Synthetic multilingual conversations built from the shared seed articles."""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

SEEDS = Path(__file__).resolve().parents[1].parent / "shared" / "seeds"
FALLBACK = (
    "Hei, jeg har et spørsmål om bestillingen min. Здравствуйте, у меня вопрос по заказу. "
    "Pozdravljeni, imam vprašanje glede naročila. Hello, I have a question about my order."
)
LANGS = ["nb", "ru", "sl", "en"]


def sentences() -> list[str]:
    text = " ".join(p.read_text(encoding="utf-8") for p in sorted(SEEDS.glob("*.txt"))) if SEEDS.exists() else FALLBACK
    parts = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if 30 <= len(s.strip()) <= 160]
    return parts or [FALLBACK]


def conversation(rng: random.Random, pool: list[str], index: int, messages: int = 20, chars: int = 1500) -> dict[str, Any]:
    start = datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(minutes=index % 400_000)
    per_message = chars // messages
    msgs = []
    for i in range(messages):
        text = rng.choice(pool)
        while len(text) < per_message:
            text += " " + rng.choice(pool)
        text = text[:per_message]
        if i == 3 and index % 5 == 0:
            text = text[: per_message - 30] + " card 4111 1111 1111 1111"
        msgs.append({"at": (start + timedelta(seconds=20 * i)).isoformat(), "sender": {"role": "visitor" if i % 2 == 0 else "agent", "id": f"a-{index % 7}"}, "text": text})
    return {
        "external_id": f"bench-{index}-{rng.getrandbits(32):x}",
        "site": "shop",
        "channel": "web",
        "language": LANGS[index % len(LANGS)],
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(seconds=20 * messages)).isoformat(),
        "visitor": {"id": f"v-{index}", "name": "Visitor", "email": f"v{index}@example.org"},
        "agents": [{"id": f"a-{index % 7}", "name": "Agent"}],
        "tags": ["bench"],
        "messages": msgs,
    }
