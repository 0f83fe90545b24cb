"""The retention sweep: delete what has expired and is not held, in batches, crash-safely.

Invariant (see retention/deletion.py): a batch is deleted-shredded-receipted in one transaction or
not at all, so a sweep killed half-way and run again ends in the same state as one uninterrupted
run. Holds always win; while a hold uses a query and a candidate is still waiting in the index
outbox, the candidate is skipped this time rather than risk deleting something the hold would match.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
import structlog

from archive.db import json_column, keyset_pages
from archive.runtime import Runtime
from archive.search import indexing
from archive.tables import Conversation, IndexOutbox, Tenant
from retention import deletion, holds, policies

log = structlog.get_logger(__name__)

SWEEP_BATCH = 500


class SweepReport(msgspec.Struct):
    dry_run: bool
    expired: int = 0
    deleted: int = 0
    held: int = 0
    waiting_for_index: int = 0
    by_rule: dict[str, int] = {}
    protected_by_hold: dict[str, int] = {}
    seconds: float = 0.0


async def sweep_tenant(
    rt: Runtime, tenant_id: UUID, *, dry_run: bool = False, now: datetime | None = None, batch: int = SWEEP_BATCH,
    actor: str = "system:retention", stop_after_batches: int | None = None,
) -> SweepReport:
    started = time.monotonic()
    now = now or rt.clock.now()
    await policies.recompute(tenant_id)
    state = await policies.current(tenant_id)
    matcher = await holds.matcher(rt, tenant_id)
    report = SweepReport(dry_run=dry_run)
    by_rule: Counter[str] = Counter()
    by_hold: Counter[str] = Counter()
    batches = 0

    def expired() -> Any:
        return Conversation.select(*holds.CANDIDATE_COLUMNS).where((Conversation.tenant == tenant_id) & (Conversation.retain_until <= now))

    async for rows in keyset_pages(expired, Conversation.id, batch):
        if stop_after_batches is not None and batches >= stop_after_batches:
            break  # tests simulate a crash here
        batches += 1
        report.expired += len(rows)
        held = await matcher.protecting(rows)
        by_hold.update(held.values())
        waiting: set[UUID] = set()
        if matcher.uses_index:
            pending = await IndexOutbox.select(IndexOutbox.conversation).where(
                (IndexOutbox.tenant == tenant_id) & IndexOutbox.conversation.is_in([r["id"] for r in rows]) & (IndexOutbox.op == "upsert")
            )
            waiting = {p["conversation"] for p in pending} - set(held)
        doomed = [r for r in rows if r["id"] not in held and r["id"] not in waiting]
        report.held += len(held)
        report.waiting_for_index += len(waiting)
        rules = {r["id"]: _rule(state.policy, r) for r in doomed}
        by_rule.update(rules.values())
        if not dry_run:
            report.deleted += await deletion.delete_batch(
                tenant_id, doomed, actor, "retention.delete",
                lambda r: {"policy_version": state.version, "rule": rules[r["id"]], "retain_until": r["retain_until"].isoformat()},  # noqa: B023 - called within this iteration
            )
    report.by_rule = dict(by_rule)
    report.protected_by_hold = dict(by_hold)
    report.seconds = round(time.monotonic() - started, 3)
    if report.deleted:
        log.info("retention_sweep", tenant=str(tenant_id), deleted=report.deleted, held=report.held, seconds=report.seconds)
    return report


def _rule(policy: policies.Policy, row: dict[str, Any]) -> str:
    tags = json_column(row["tags"])
    return policies.decide(policy, row["site"], row["channel"], row["language"], tags, row["ended_at"])[0]


async def sweep_all(rt: Runtime, dry_run: bool = False) -> dict[str, SweepReport]:
    reports = {}
    for tenant in await Tenant.select(Tenant.id, Tenant.slug):
        reports[tenant["slug"]] = await sweep_tenant(rt, tenant["id"], dry_run=dry_run)
    if not dry_run:
        try:
            await indexing.drain_all(rt)
        except Exception as exc:  # the outbox keeps the deletes; the drain job will retry
            log.warning("retention_index_drain_deferred", error=type(exc).__name__)
    return reports
