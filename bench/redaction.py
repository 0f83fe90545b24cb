"""Redaction throughput on realistic chat text: the current engine against the regex-only
engine it replaced (bench/legacy_redaction.py, kept as the same-run baseline).

Three mixes of 75-character messages (the ingest bench's message size): plain chat, where the
pre-filter does all the work; chat with business numbers (dates, prices, order numbers), which
reaches the detectors but finds nothing; and chat where every tenth message carries a card, IBAN,
phone number, e-mail address or national id.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

from bench.corpus import sentences
from bench.harness import Row, Table

BUSINESS = [
    "Ordre #2026-118-5567 ble sendt 15.12.2026", "Заказ № 45871236 от 24.11.2026", "Naročilo 2026-11-0042, 129,90 EUR",
    "Invoice INV-2026-000123, total $1,299.99", "Lieferung am 24.11.2026 um 14:30", "KID 7001234567890123",
    "Saksnummer 20261123-0042", "Windows 10.0.19045.3693", "3 stk à 249,50 kr", "tracking 1Z999AA10123456784",
]
SENSITIVE = [
    "kortnummer 4111 1111 1111 1111", "IBAN NO93 8601 1117 947", "ring meg på 912 34 567", "mail ola@example.no",
    "fnr 150765 00565", "моя карта 5555 5555 5555 4444", "тел. +7 912 345-67-89", "TRR SI56 2633 0001 2039 086",
    "Handy 01512 3456789", "card 3782 822463 10005",
]


def _messages(rng: random.Random, n: int, business: float, sensitive: float) -> list[str]:
    pool, out = sentences(), []
    for _ in range(n):
        text = rng.choice(pool)[:75]
        roll = rng.random()
        if roll < sensitive:
            text = text[:40] + " " + rng.choice(SENSITIVE)
        elif roll < sensitive + business:
            text = text[:40] + " " + rng.choice(BUSINESS)
        out.append(text)
    return out


def _rate(redact: Callable[[str], str], messages: list[str]) -> float:
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        for text in messages:
            redact(text)
        best = max(best, len(messages) / (time.perf_counter() - started))
    return best


def _conversation_rate(messages: list[str]) -> float:
    from archive.redaction import ChatLine, redact_conversation
    from archive.tenancy import TenantSettings

    t0 = datetime(2026, 11, 20, tzinfo=timezone.utc)
    conversations = [
        [ChatLine("visitor" if i % 2 else "agent", t0 + timedelta(seconds=30 * i), t) for i, t in enumerate(messages[k : k + 20])]
        for k in range(0, len(messages), 20)
    ]
    settings = TenantSettings()
    best = 0.0
    for _ in range(3):
        started = time.perf_counter()
        for conversation in conversations:
            redact_conversation(conversation, settings, "nb")
        best = max(best, len(messages) / (time.perf_counter() - started))
    return best


def run(table: Table, messages: int) -> None:
    from archive.redaction import Redactor
    from archive.tenancy import TenantSettings
    from bench import legacy_redaction

    rng = random.Random(3)
    mixes = {
        "plain chat": _messages(rng, messages, 0.0, 0.0),
        "chat, 30% business numbers": _messages(rng, messages, 0.3, 0.0),
        "chat, 10% sensitive + 20% business": _messages(rng, messages, 0.2, 0.1),
    }
    settings = TenantSettings()
    for name, texts in mixes.items():
        new = Redactor(settings, "nb")
        old = legacy_redaction.Redactor(settings)
        table.add(Row(f"redaction, {name}", _rate(new.redact, texts), "msg/s", _rate(old.redact, texts),
                      note="baseline: regex-only redaction this replaced"))
    mixed = mixes["chat, 10% sensitive + 20% business"]
    table.add(Row("redaction, whole conversations (cross-message)", _conversation_rate(mixed), "msg/s",
                  note="redact_conversation, 20 messages each, same mix"))
