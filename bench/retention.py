"""Retention at scale on the embedded default: sweep throughput (deletes, crypto-shredding, index
deletes and receipts) and export throughput (conversations per second into a signed zip)."""

from __future__ import annotations

import asyncio
import random
import time

import msgspec

from bench.corpus import chat_text, conversation
from bench.harness import Row, Table, bench_tenant

BATCH = 100


async def _run(n: int) -> tuple[float, float]:
    from archive.ingest import ingest
    from archive.models import ConversationIn
    from archive.search import indexing
    from archive.tenancy import Principal
    from retention import exports, policies, sweep
    from retention.exports import ExportIn

    runtime, tenant, _ = await bench_tenant("retention")
    principal = Principal(key_id=tenant.id, key_prefix="bench", tenant_id=tenant.id, tenant_slug=tenant.slug, role="admin")
    await policies.put(principal, policies.PolicyIn(default=policies.Default(days=1)))
    rng, text = random.Random(5), chat_text()
    for b in range(0, n, BATCH):
        items = [msgspec.convert(conversation(rng, text, i), ConversationIn) for i in range(b, min(n, b + BATCH))]
        await ingest(runtime, principal, items, True)
    await indexing.drain_all(runtime, refresh=False)

    # Export first: the sweep then deletes everything.
    created = await exports.create(runtime, principal, ExportIn(q="", format="jsonl"))
    row = await exports.Export.select().where(exports.Export.id == created.id).first()
    started = time.perf_counter()
    await exports.run_one(runtime, row)
    export_rate = (await exports.get(principal, created.id)).total / (time.perf_counter() - started)

    started = time.perf_counter()
    report = await sweep.sweep_tenant(runtime, tenant.id)
    await indexing.drain_all(runtime, refresh=False)
    sweep_rate = report.deleted / (time.perf_counter() - started)
    await runtime.stop()
    return sweep_rate, export_rate


def run(table: Table, conversations: int) -> None:
    sweep_rate, export_rate = asyncio.run(_run(conversations))
    table.add(Row(f"retention sweep ({conversations:,} expired conversations)", sweep_rate, "conv/s",
                  note="delete + shred key + receipt + index delete, 500 per transaction"))
    table.add(Row(f"export to signed zip ({conversations:,} conversations, jsonl)", export_rate, "conv/s"))
