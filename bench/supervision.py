"""Supervision: ingest with ten active policies against ingest without any (same run, same
corpus), and a backfill of one policy over stored conversations (conversations per second)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import msgspec

from bench.corpus import chat_text, conversation
from bench.harness import Row, Table, bench_tenant

BATCH = 100
WARM_UP = 1000

# Ten policies of the kinds a compliance desk runs: phrases, NEAR, prefixes, booleans, languages,
# sender scopes, RE2 patterns and a QA sample.
TEN_POLICIES: list[dict[str, Any]] = [
    {"name": "guaranteed returns", "query": '"guaranteed returns" OR "risk free" OR "no risk"', "severity": "high"},
    {"name": "promises", "query": "guaranteed NEAR/5 profit OR promise NEAR/3 money", "severity": "high"},
    {"name": "off-channel", "query": "whatsapp OR telegram OR signal OR \"private number\"", "scope": {"senders": ["agent"]}},
    {"name": "credentials", "query": '"send me your password" OR "your pin code" OR "one-time code"', "severity": "high"},
    {"name": "complaints", "query": "(refund OR chargeback) AND (angry OR complaint OR lawyer)", "severity": "low"},
    {"name": "ru promises", "query": '"гарантированный доход" OR гарантирую NEAR/3 прибыль', "severity": "high"},
    {"name": "sl promises", "query": '"zagotovljen donos" OR zagotavljam NEAR/3 dobiček', "severity": "high"},
    {"name": "money moves", "query": "", "patterns": [r"(?i)\b(wire|transfer) (the )?money\b", r"(?i)\bbitcoin wallet\b"]},
    {"name": "nb promises", "query": '("garantert avkastning" OR risikofri*) AND lang:nb', "severity": "high"},
    {"name": "QA sample", "query": "", "sample_percent": 5, "severity": "low"},
]


def _batches(n: int, seed: int, offset: int) -> list[list[Any]]:
    from archive.models import ConversationIn

    rng, text = random.Random(seed), chat_text()
    return [
        [msgspec.convert(conversation(rng, text, offset + i + b * BATCH), ConversationIn) for i in range(BATCH)]
        for b in range(n // BATCH)
    ]


async def _add_policies(runtime: Any, principal: Any, specs: list[dict[str, Any]]) -> list[Any]:
    from archive.supervision import policies

    return [await policies.create(runtime, principal, msgspec.convert(spec, policies.PolicyIn)) for spec in specs]


def _principal(tenant: Any, role: str) -> Any:
    from archive.tenancy import Principal

    return Principal(key_id=tenant.id, key_prefix="bench", tenant_id=tenant.id, tenant_slug=tenant.slug, role=role)


async def _ingest_rates(n: int) -> tuple[float, float, float, float, int]:
    """Conversations per second without policies and with ten, measured batch by batch in
    turns (two tenants of one process, the order swapped every batch), so both pipelines see the
    same machine load. First both ingest the same warm-up set (a running server has seen its
    tenants' vocabulary; a fresh tenant's words are analysed once, then cached): its rates are
    the cold rows."""
    from archive.ingest import ingest
    from archive.supervision.tables import ReviewItem

    runtime, plain_tenant, _ = await bench_tenant("supervision-none")
    _, supervised_tenant, _ = await bench_tenant("supervision-ten")
    await _add_policies(runtime, _principal(supervised_tenant, "compliance"), TEN_POLICIES)
    plain, supervised = _principal(plain_tenant, "ingest"), _principal(supervised_tenant, "ingest")
    seconds = {"plain": 0.0, "supervised": 0.0, "plain_cold": 0.0, "supervised_cold": 0.0}

    async def timed(key: str, principal: Any, batch: list[Any]) -> None:
        started = time.perf_counter()
        await ingest(runtime, principal, batch, True)
        seconds[key] += time.perf_counter() - started

    for phase, count, seed in (("_cold", WARM_UP, 5), ("", n, 7)):
        for index, batch in enumerate(_batches(count, seed, seed * 1_000_000)):
            copy = [msgspec.structs.replace(c, external_id=c.external_id + "-s") for c in batch]
            turns = [("plain", plain, batch), ("supervised", supervised, copy)]
            for key, principal, items in turns if index % 2 == 0 else reversed(turns):
                await timed(key + phase, principal, items)
        if phase == "_cold":
            warm = await ReviewItem.count().where(ReviewItem.tenant == supervised_tenant.id)
    flagged = await ReviewItem.count().where(ReviewItem.tenant == supervised_tenant.id) - warm
    await runtime.stop()
    return (n / seconds["plain"], n / seconds["supervised"], WARM_UP / seconds["plain_cold"], WARM_UP / seconds["supervised_cold"], flagged)


async def _backfill_rate(n: int) -> tuple[float, int, int]:
    from archive.ingest import ingest
    from archive.supervision import backfill
    from archive.supervision.tables import SupervisionBackfill

    runtime, tenant, _ = await bench_tenant("backfill")
    principal = _principal(tenant, "ingest")
    for batch in _batches(n, 11, 20_000_000):
        await ingest(runtime, principal, batch, True)
    compliance = _principal(tenant, "compliance")
    [policy] = await _add_policies(runtime, compliance, [TEN_POLICIES[1]])
    job = await backfill.request(runtime, compliance, policy.id, backfill.BackfillIn())
    started = time.perf_counter()
    await backfill.run(runtime, job.id)
    elapsed = time.perf_counter() - started
    row = await SupervisionBackfill.select().where(SupervisionBackfill.id == job.id).first()
    await runtime.stop()
    assert row is not None and row["status"] == "done", row
    return row["scanned"] / elapsed, row["scanned"], row["flagged"]


def run(table: Table, conversations: int, backfill_conversations: int) -> None:
    plain, supervised, plain_cold, supervised_cold, flagged = asyncio.run(_ingest_rates(conversations))
    ratio = supervised / plain
    table.add(Row("ingest with ten active policies, service layer", supervised, "conv/s", plain, target=">= 0.85 of no policies",
                  passed=ratio >= 0.85, note=f"steady state, after {WARM_UP:,} untimed; baseline: no policies, batches in turns; "
                                             f"{flagged:,} review items from {conversations:,} conversations"))
    table.add(Row(f"  the same, first {WARM_UP:,} conversations of a new tenant", supervised_cold, "conv/s", plain_cold,
                  note="cold analyzer caches: each new word is analysed once (the index drain would do it later)"))
    rate, scanned, found = asyncio.run(_backfill_rate(backfill_conversations))
    table.add(Row(f"backfill of one policy over {scanned:,} stored conversations", rate, "conv/s", target=">= 1,000 conv/s",
                  passed=rate >= 1000, note=f"decrypt + analyse + evaluate, {found:,} flagged"))
