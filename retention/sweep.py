"""The retention sweep: delete what has expired and is not protected, in batches, crash-safely.

Invariants (see retention/deletion.py): a batch is deleted-shredded-receipted in one transaction
or not at all, and what protects a conversation — legal holds, the compliance floor, anything
else the runtime lists — is decided inside that transaction. A sweep killed half-way and run
again therefore ends in the same state as one uninterrupted run, and a hold placed while a sweep
runs protects everything it covers that is not already gone.

One sweep per tenant at a time, across processes: the sweep holds the tenant's ``sweep`` lease
(archive/leases.py); a second request is refused with the running sweep's id, and each batch
fences the lease in its transaction. The DELETE re-checks that the conversation is still due
under the policy version the sweep computed (``retain_until`` and ``policy_version``), so a
policy changed mid-sweep is never applied with stale dates.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import Any, Awaitable, Callable
from uuid import UUID

import msgspec
import structlog

from archive import leases
from archive.db import json_column, keyset_pages
from archive.runtime import Runtime
from archive.search import indexing
from archive.tables import Conversation, Tenant
from retention import deletion, policies

log = structlog.get_logger(__name__)

SWEEP_BATCH = 500
OPERATION = "sweep"


class SweepReport(msgspec.Struct):
    dry_run: bool
    expired: int = 0
    deleted: int = 0
    # Expired but kept by a deletion guard (legal hold, compliance floor, …).
    held: int = 0
    # Expired, but a legal hold with a query cannot judge it until the index has it: next run.
    waiting_for_index: int = 0
    by_rule: dict[str, int] = {}
    protected_by_hold: dict[str, int] = {}
    # Kept, by guard ("legal_hold", "compliance_floor", …).
    protected_by: dict[str, int] = {}
    seconds: float = 0.0
    # This run's id (the lease's run id); None for a dry run.
    id: UUID | None = None
    # Set when the tenant was skipped because another sweep (this id) was running.
    running_id: UUID | None = None


async def sweep_tenant(
    rt: Runtime, tenant_id: UUID, *, dry_run: bool = False, now: datetime | None = None, batch: int = SWEEP_BATCH,
    actor: str = "system:retention", stop_after_batches: int | None = None,
    after_batch: Callable[[SweepReport], Awaitable[None]] | None = None,
) -> SweepReport:
    """Sweep one tenant. Raises ``LeaseBusy`` (409, with the running id) if a sweep of the
    tenant is already running. ``after_batch`` is called after each committed batch (progress);
    ``stop_after_batches`` stops early, as a crash would."""
    if dry_run:
        return await _sweep(rt, tenant_id, None, dry_run=True, now=now, batch=batch, actor=actor,
                            stop_after_batches=stop_after_batches, after_batch=after_batch)
    async with leases.held(rt, tenant_id, OPERATION) as lease:
        return await _sweep(rt, tenant_id, lease, dry_run=False, now=now, batch=batch, actor=actor,
                            stop_after_batches=stop_after_batches, after_batch=after_batch)


async def _sweep(
    rt: Runtime, tenant_id: UUID, lease: leases.Lease | None, *, dry_run: bool, now: datetime | None, batch: int, actor: str,
    stop_after_batches: int | None, after_batch: Callable[[SweepReport], Awaitable[None]] | None,
) -> SweepReport:
    started = time.monotonic()
    now = now or rt.clock.now()
    await policies.recompute(tenant_id)
    state = await policies.current(tenant_id)
    report = SweepReport(dry_run=dry_run, id=lease.run_id if lease else None)
    by_rule: Counter[str] = Counter()
    by_hold: Counter[str] = Counter()
    by_guard: Counter[str] = Counter()
    batches = 0

    async def still_due() -> Any:
        """Inside each batch's transaction: still expired, and computed under the policy version
        in force now (a policy changed mid-sweep leaves the rest to the next run, recomputed)."""
        version = (await policies.current(tenant_id)).version
        return (Conversation.retain_until <= now) & (Conversation.policy_version == version)

    def expired() -> Any:
        return Conversation.select(Conversation.id).where((Conversation.tenant == tenant_id) & (Conversation.retain_until <= now))

    async for rows in keyset_pages(expired, Conversation.id, batch):
        if stop_after_batches is not None and batches >= stop_after_batches:
            break  # tests simulate a crash here
        batches += 1
        ids = [r["id"] for r in rows]
        if dry_run:
            outcome = await deletion.plan_batch(rt, tenant_id, ids, now, still_due)
        else:
            outcome = await deletion.delete_batch(
                rt, tenant_id, ids, actor=actor, action="retention.delete", now=now, still_due=still_due, lease=lease,
                details=lambda r: {"policy_version": state.version, "rule": _rule(state.policy, r),
                                   "retain_until": r["retain_until"].isoformat(), "sweep": str(report.id)},
            )
            report.deleted += len(outcome.deleted)
        report.expired += outcome.candidates
        by_rule.update(_rule(state.policy, r) for r in outcome.deleted)
        for protection in outcome.protected.values():
            if protection.guard == "index_pending":
                report.waiting_for_index += 1
                continue
            report.held += 1
            by_guard[protection.guard] += 1
            if protection.guard == "legal_hold":
                by_hold[protection.label] += 1
        if after_batch is not None:
            await after_batch(report)
    report.by_rule = dict(by_rule)
    report.protected_by_hold = dict(by_hold)
    report.protected_by = dict(by_guard)
    report.seconds = round(time.monotonic() - started, 3)
    if report.deleted:
        log.info("retention_sweep", tenant=str(tenant_id), run=str(report.id), deleted=report.deleted, held=report.held,
                 seconds=report.seconds)
    return report


def _rule(policy: policies.Policy, row: dict[str, Any]) -> str:
    tags = json_column(row["tags"])
    return policies.decide(policy, row["site"], row["channel"], row["language"], tags, row["ended_at"])[0]


async def sweep_all(rt: Runtime, dry_run: bool = False, tenant_ids: list[UUID] | None = None) -> dict[str, SweepReport]:
    """Sweep every tenant (or those given). A tenant whose sweep is running elsewhere is
    skipped; its report says so (``running_id``)."""
    reports = {}
    query = Tenant.select(Tenant.id, Tenant.slug).order_by(Tenant.slug)
    for tenant in await query:
        if tenant_ids is not None and tenant["id"] not in tenant_ids:
            continue
        try:
            reports[tenant["slug"]] = await sweep_tenant(rt, tenant["id"], dry_run=dry_run)
        except leases.LeaseBusy as busy:
            log.info("retention_sweep_already_running", tenant=tenant["slug"], running=str(busy.running_id))
            reports[tenant["slug"]] = SweepReport(dry_run=dry_run, running_id=busy.running_id)
    if not dry_run:
        await _drain_index(rt)
    return reports


async def sweep_now(rt: Runtime, tenant_id: UUID, actor: str) -> SweepReport:
    """An operator's sweep of one tenant (``POST /v1/retention/sweep``): the sweep, then the
    index brought up to date so that a search right after it no longer finds what it deleted."""
    report = await sweep_tenant(rt, tenant_id, actor=actor)
    await _drain_index(rt)
    return report


async def _drain_index(rt: Runtime) -> None:
    """The deletions are committed, each with its outbox row, whatever happens here: a drain
    that fails (the index down, a restarted server's backlog) is left to the drain job and must
    not turn a done sweep into an error."""
    try:
        await indexing.drain_all(rt)
    except Exception as exc:
        log.warning("retention_index_drain_deferred", error=type(exc).__name__)
