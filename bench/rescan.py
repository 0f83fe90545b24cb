"""Redaction rescan throughput against ingest in the same run: conversations per second rescanned
when the corpus was archived unredacted (those holding a card — one in five — are rewritten:
re-encrypted under a fresh key, outbox, ledger) and when it was archived redacted (nothing changes:
decrypt and redact only), with ingest of the same corpus as the baseline."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import msgspec

from bench.corpus import chat_text, conversation
from bench.harness import Row, Table, bench_tenant

BATCH = 100


async def _ingest(runtime: Any, principal: Any, n: int, seed: int) -> float:
    from archive.ingest import ingest
    from archive.models import ConversationIn

    rng, chat = random.Random(seed), chat_text()
    batches = [
        [msgspec.convert(conversation(rng, chat, i), ConversationIn) for i in range(b, min(n, b + BATCH))] for b in range(0, n, BATCH)
    ]
    started = time.perf_counter()
    for items in batches:
        await ingest(runtime, principal, items, True)
    return n / (time.perf_counter() - started)


async def _run(n: int) -> tuple[float, float, float, int]:
    from archive import ingest, rescan
    from archive.tenancy import Principal

    runtime, clean, _ = await bench_tenant("rescan-clean")
    _, dirty, _ = await bench_tenant("rescan-dirty")
    as_clean = Principal(key_id=clean.id, key_prefix="bench", tenant_id=clean.id, tenant_slug=clean.slug, role="ingest")
    as_dirty = Principal(key_id=dirty.id, key_prefix="bench", tenant_id=dirty.id, tenant_slug=dirty.slug, role="ingest")
    ingest_rate = await _ingest(runtime, as_clean, n, 3)
    # The past being repaired: the same corpus archived by a Parley whose detectors missed everything.
    saved = ingest.redact_content
    ingest.redact_content = lambda options, language, messages, metadata: ingest.Redacted(list(messages), dict(metadata), {})
    try:
        await _ingest(runtime, as_dirty, n, 3)
    finally:
        ingest.redact_content = saved

    rates = []
    for tenant in (dirty, clean):
        created = await rescan.create(runtime, tenant.id, "bench")
        started = time.perf_counter()
        done = await rescan.run(runtime, created.id)
        rates.append((done.scanned / (time.perf_counter() - started), done.changed))
    await runtime.stop()
    (changing, changed), (unchanged, _) = rates
    return ingest_rate, changing, unchanged, changed


def run(table: Table, conversations: int) -> None:
    ingest_rate, changing, unchanged, changed = asyncio.run(_run(conversations))
    table.add(Row(f"redaction rescan of an unredacted archive ({conversations:,})", changing, "conv/s", ingest_rate,
                  note=f"{changed:,} rewritten (fresh key, outbox, ledger); baseline: ingest of the same corpus"))
    table.add(Row(f"redaction rescan, nothing changes ({conversations:,})", unchanged, "conv/s", ingest_rate,
                  note="decrypt + redact only; baseline: ingest of the same corpus"))
