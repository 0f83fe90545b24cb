"""The one destructive path, shared by the retention sweep and erasure.

Deleting is irreversible, so this module states its invariant and keeps it. For each batch, in
ONE transaction:

1. the tenant's ledger head is locked — legal holds are created and released under the same
   lock, so no hold can appear between the decision and the delete;
2. the candidates are re-read and every deletion guard (legal holds, the compliance floor, and
   whatever else the runtime lists) is asked, *inside the transaction*, which of them it protects;
3. ``DELETE … RETURNING`` removes the rest; only the rows it returns — the ones this transaction
   actually deleted — get their data keys destroyed (crypto-shredding: even a backup of the
   ciphertext is unreadable afterwards), what is stored beside them deleted (earlier revisions,
   attachment files, connector drafts), an index delete queued in the durable outbox, and a
   receipt in the ledger (ids, content hash, why; never content).

A crash before commit leaves everything as it was; after commit everything is done but the index
delete, which the outbox carries out. Two deleters racing over the same rows serialise on the
head lock, and the second one's ``RETURNING`` is empty: one receipt per deleted conversation.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Protocol
from uuid import UUID

import msgspec

from archive import db, leases, ledger, transcripts
from archive.metrics import store as metrics
from archive.search.indexing import enqueue_deletes
from archive.tables import Conversation, ConversationKey

if TYPE_CHECKING:
    from archive.runtime import Runtime

# What every guard and every receipt may read of a candidate conversation (clear columns only).
CANDIDATE_COLUMNS = (
    Conversation.id, Conversation.external_id, Conversation.site, Conversation.channel, Conversation.language,
    Conversation.tags, Conversation.agent_ids, Conversation.visitor_hash, Conversation.started_at,
    Conversation.ended_at, Conversation.content_sha256, Conversation.retain_until, Conversation.policy_version,
)


class Protection(msgspec.Struct, frozen=True):
    """Why a guard keeps a conversation. ``guard`` names the kind ("legal_hold",
    "compliance_floor", "index_pending", …), ``label`` the instance (a hold's name), ``reason``
    the sentence shown to people. ``lasting``: False when it is only "not now" (the index has
    not caught up), which erasure reports but does not record on the conversation."""

    guard: str
    label: str
    reason: str
    lasting: bool = True


class DeletionGuard(Protocol):
    """A reason not to delete, asked inside the deletion transaction (after the head lock)."""

    async def protect(self, rt: Runtime, tenant_id: UUID, rows: list[dict[str, Any]], now: datetime) -> dict[UUID, Protection]:
        """The ids among ``rows`` this guard protects, each with why."""


class BatchOutcome(msgspec.Struct):
    deleted: list[dict[str, Any]]  # the rows actually deleted (CANDIDATE_COLUMNS), receipted
    protected: dict[UUID, Protection]  # kept by a guard
    candidates: int  # how many of the requested ids still matched when the transaction looked


async def protections(rt: Runtime, tenant_id: UUID, rows: list[dict[str, Any]], now: datetime) -> dict[UUID, Protection]:
    """Ask every guard, in order; the first to protect a conversation names the reason."""
    protected: dict[UUID, Protection] = {}
    for guard in rt.deletion_guards:
        remaining = [r for r in rows if r["id"] not in protected]
        if not remaining:
            break
        for cid, protection in (await guard.protect(rt, tenant_id, remaining, now)).items():
            protected.setdefault(cid, protection)
    return protected


# A condition the candidates must still meet, built inside the transaction (so it can re-read what
# it depends on, such as the current policy version) and re-checked by the DELETE itself.
StillDue = Callable[[], Awaitable[Any]]


def _candidates(tenant_id: UUID, ids: list[UUID], condition: Any) -> Any:
    where = (Conversation.tenant == tenant_id) & Conversation.id.is_in(ids)
    return where & condition if condition is not None else where


async def plan_batch(rt: Runtime, tenant_id: UUID, ids: list[UUID], now: datetime, still_due: StillDue | None = None) -> BatchOutcome:
    """What ``delete_batch`` would do now, changing nothing (previews, dry runs)."""
    if not ids:
        return BatchOutcome(deleted=[], protected={}, candidates=0)
    condition = await still_due() if still_due is not None else None
    rows = await Conversation.select(*CANDIDATE_COLUMNS).where(_candidates(tenant_id, ids, condition))
    protected = await protections(rt, tenant_id, rows, now)
    return BatchOutcome(deleted=[r for r in rows if r["id"] not in protected], protected=protected, candidates=len(rows))


async def delete_batch(
    rt: Runtime,
    tenant_id: UUID,
    ids: list[UUID],
    *,
    actor: str,
    action: str,
    details: Callable[[dict[str, Any]], dict[str, Any]],
    now: datetime,
    still_due: StillDue | None = None,
    lease: leases.Lease | None = None,
) -> BatchOutcome:
    """Delete those of ``ids`` that no guard protects and that still meet ``still_due``, in one
    transaction; see the module doc. ``lease``: the caller's lease, fenced in the same transaction."""
    if not ids:
        return BatchOutcome(deleted=[], protected={}, candidates=0)
    async with db.write_transaction():
        await ledger.lock_head(tenant_id)
        if lease is not None:
            await leases.fence(rt, lease)
        condition = await still_due() if still_due is not None else None
        rows = await Conversation.select(*CANDIDATE_COLUMNS).where(_candidates(tenant_id, ids, condition))
        protected = await protections(rt, tenant_id, rows, now)
        doomed = [r["id"] for r in rows if r["id"] not in protected]
        deleted: list[dict[str, Any]] = []
        if doomed:
            deleted = await Conversation.delete().where(_candidates(tenant_id, doomed, condition)).returning(*CANDIDATE_COLUMNS)
        gone = [r["id"] for r in deleted]
        if gone:
            await ConversationKey.delete().where((ConversationKey.tenant == tenant_id) & ConversationKey.conversation.is_in(gone))
            await transcripts.delete_parts(tenant_id, gone)
            await metrics.delete(tenant_id, gone)
            await enqueue_deletes(tenant_id, gone)
            await ledger.append(
                tenant_id,
                *[
                    ledger.Entry(actor=actor, action=action, subject=str(r["id"]), content_hash=r["content_sha256"],
                                 details={"external_id": r["external_id"], **details(r)})
                    for r in sorted(deleted, key=lambda r: str(r["id"]))
                ],
            )
    return BatchOutcome(deleted=deleted, protected=protected, candidates=len(rows))
