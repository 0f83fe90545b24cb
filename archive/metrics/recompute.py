"""Recompute the support figures of conversations already archived (``parley kpi recompute``).

The figures are written at ingest from the plaintext, which is then sealed; a later version of
Parley that computes a figure differently (a CSAT source it did not read, an edited message it
counted twice) changes only conversations archived or revised after the upgrade. A recompute
brings the past in line: it decrypts a tenant's conversations (the latest revision, as ingest
does) in batches, computes their figures exactly as the ingest step does (``compute.figures``
and the runtime's own invitation resolver) and rewrites them with ``store.record``.

Each batch is one transaction that first takes the tenant's ledger head lock, the lock every
ingest of the tenant takes before its steps run: a conversation revised while the recompute
runs is never rewritten from the older revision, and the neighbourhood figures (concurrency,
FCR) are recomputed from rows no ingest is changing. Recomputing is idempotent, so a run killed
half-way leaves every conversation with either its old or its new figures, whole, and the next
run finishes the job; the report cache is invalidated by the hours ``record`` marks changed.
One ledger entry per tenant records the run (counts only).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
import structlog

from archive import db, ledger, transcripts
from archive.crypto import DecryptionError
from archive.db import keyset_pages
from archive.metrics import compute, store
from archive.metrics.tables import ConversationMetrics
from archive.tables import Conversation
from archive.tenancy import tenant_context

if TYPE_CHECKING:
    from archive.runtime import Runtime
    from archive.tenancy import TenantContext

log = structlog.get_logger(__name__)

ACTION = "metrics.recompute"
BATCH = 200
# Figures that depend on other conversations (rewritten by the neighbourhood refresh of any
# batch): a conversation "changed" when one of its own figures did.
_NEIGHBOURHOOD = {"id", "conc1", "conc2", "conc3", "conc4", "peak", "next_contact_s"}


class RecomputeReport(msgspec.Struct, kw_only=True):
    conversations: int = 0  # recomputed
    changed: int = 0  # whose own figures differ from what was stored
    unreadable: int = 0  # could not be decrypted (a damaged row): left as they were, logged


Progress = Callable[[RecomputeReport], Awaitable[None]]


def _own_columns() -> list[Any]:
    return [c for c in ConversationMetrics._meta.columns if c._meta.name not in _NEIGHBOURHOOD]


async def _own_figures(tenant_id: UUID, ids: list[UUID]) -> dict[UUID, list[tuple[Any, ...]]]:
    columns = _own_columns()
    found: dict[UUID, list[tuple[Any, ...]]] = {}
    rows = await ConversationMetrics.select(*columns).where(
        (ConversationMetrics.tenant == tenant_id) & ConversationMetrics.conversation.is_in(ids)
    )
    for row in rows:
        found.setdefault(row["conversation"], []).append(tuple(str(row[c._meta.name]) for c in columns))
    return {cid: sorted(parts) for cid, parts in found.items()}


def _figures(ctx: TenantContext, sealed: dict[UUID, transcripts.Sealed]) -> tuple[list[tuple[UUID, str, compute.Figures]], list[UUID]]:
    """Decrypt and compute (CPU only: runs in a worker thread)."""
    computed, unreadable = [], []
    for cid, item in sealed.items():
        try:
            conversation = transcripts.unseal(ctx, item)
        except DecryptionError:
            unreadable.append(cid)
            continue
        computed.append((cid, item.row["visitor_hash"], compute.figures(conversation)))
    return computed, unreadable


async def recompute(rt: Runtime, tenant_id: UUID, actor: str, *, batch: int = BATCH, progress: Progress | None = None) -> RecomputeReport:
    """Recompute every conversation of the tenant, ``batch`` per transaction, in id order."""
    ctx = await tenant_context(rt, tenant_id)
    resolve = _resolver(rt)
    report = RecomputeReport()
    pages = keyset_pages(lambda: Conversation.select(Conversation.id).where(Conversation.tenant == tenant_id), Conversation.id, batch)
    async for page in pages:
        ids = [row["id"] for row in page]
        async with db.write_transaction():
            await ledger.lock_head(tenant_id)  # serialised with ingests and revisions of the tenant
            # Read inside the lock: a revision committed while this batch waited is what is computed.
            sealed = await transcripts.fetch_sealed(ctx, ids)
            computed, unreadable = await rt.workers.run(_figures, ctx, sealed)
            before = await _own_figures(tenant_id, [cid for cid, _, _ in computed])
            await store.record(rt, tenant_id, computed, resolve)
            after = await _own_figures(tenant_id, [cid for cid, _, _ in computed])
        for cid in unreadable:
            log.error("metrics_recompute_unreadable", conversation=str(cid))
        report.conversations += len(computed)
        report.unreadable += len(unreadable)
        report.changed += sum(1 for cid, _, _ in computed if before.get(cid) != after.get(cid))
        if progress is not None:
            await progress(report)
    await ledger.append(tenant_id, ledger.Entry(actor=actor, action=ACTION, details=msgspec.to_builtins(report)))
    log.info("metrics_recomputed", tenant=str(tenant_id), **msgspec.to_builtins(report))
    return report


def _resolver(rt: Runtime) -> store.Resolver:
    """The invitation resolver the composition root gave the ingest step (the engine's funnel):
    a recompute links conversations to rules exactly as ingest does."""
    for step in rt.ingest_steps:
        if isinstance(step, store.MetricsStep):
            return step.resolve
    return store.no_invitations
