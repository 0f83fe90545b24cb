"""Supervision: ingest with ten active policies against ingest without any (same run, same
corpus), and a backfill of one policy over stored conversations (conversations per second)."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import msgspec

from bench.corpus import conversation, sentences
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

    rng, pool = random.Random(seed), sentences()
    return [
        [msgspec.convert(conversation(rng, pool, offset + i + b * BATCH), ConversationIn) for i in range(BATCH)]
        for b in range(n // BATCH)
    ]


async def _add_policies(runtime: Any, principal: Any, specs: list[dict[str, Any]]) -> list[Any]:
    from archive.supervision import policies

    return [await policies.create(runtime, principal, msgspec.convert(spec, policies.PolicyIn)) for spec in specs]


def _principal(tenant: Any, role: str) -> Any:
    from archive.tenancy import Principal

    return Principal(key_id=tenant.id, key_prefix="bench", tenant_id=tenant.id, tenant_slug=tenant.slug, role=role)


async def _ingest_rate(n: int, with_policies: bool) -> tuple[float, float, int]:
    """Conversations per second in steady state: both pipelines first ingest the same warm-up
    set untimed (a running server has seen its tenants' vocabulary; a fresh tenant's first words
    are analysed once, then cached), then the timed set."""
    from archive.ingest import ingest
    from archive.supervision.tables import ReviewItem

    runtime, tenant, _ = await bench_tenant(f"supervision-{int(with_policies)}")
    if with_policies:
        await _add_policies(runtime, _principal(tenant, "compliance"), TEN_POLICIES)
    principal = _principal(tenant, "ingest")
    started = time.perf_counter()
    for batch in _batches(WARM_UP, 5, 40_000_000):
        await ingest(runtime, principal, batch, True)
    cold = WARM_UP / (time.perf_counter() - started)
    warm = await ReviewItem.count().where(ReviewItem.tenant == tenant.id)
    batches = _batches(n, 7, 0)
    started = time.perf_counter()
    for batch in batches:
        await ingest(runtime, principal, batch, True)
    elapsed = time.perf_counter() - started
    flagged = await ReviewItem.count().where(ReviewItem.tenant == tenant.id) - warm
    await runtime.stop()
    return n / elapsed, cold, flagged


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
    # Alternate the two pipelines and keep each one's best run, so warm-up and file growth
    # do not favour whichever happens to run second.
    plain = supervised = plain_cold = supervised_cold = 0.0
    flagged = 0
    for _ in range(2):
        rate, cold, _ = asyncio.run(_ingest_rate(conversations, with_policies=False))
        plain, plain_cold = max(plain, rate), max(plain_cold, cold)
        rate, cold, flagged = asyncio.run(_ingest_rate(conversations, with_policies=True))
        supervised, supervised_cold = max(supervised, rate), max(supervised_cold, cold)
    ratio = supervised / plain
    table.add(Row("ingest with ten active policies, service layer", supervised, "conv/s", plain, target=">= 0.85 of no policies",
                  passed=ratio >= 0.85, note=f"steady state, after {WARM_UP:,} untimed; baseline: no policies; "
                                             f"{flagged:,} review items from {conversations:,} conversations"))
    table.add(Row(f"  the same, first {WARM_UP:,} conversations of a new tenant", supervised_cold, "conv/s", plain_cold,
                  note="cold analyzer caches: every word is analysed for the first time (the index drain would do it later)"))
    rate, scanned, found = asyncio.run(_backfill_rate(backfill_conversations))
    table.add(Row(f"backfill of one policy over {scanned:,} stored conversations", rate, "conv/s", target=">= 1,000 conv/s",
                  passed=rate >= 1000, note=f"decrypt + analyse + evaluate, {found:,} flagged"))
