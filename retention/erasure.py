"""Erasure (GDPR Art. 17): delete a person's conversations, except those a deletion guard must
keep (a legal hold, a compliance-mode floor, …) — those are marked *restricted* and listed back
with the reason.

The person's behaviour events and the engagement engine's memory of them are deleted too: they are
keyed by the same visitor hash and are never under a hold.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
import structlog

from archive import db, leases, ledger
from archive.errors import FieldError, InvalidInput
from archive.runtime import Runtime
from archive.tables import Conversation
from archive.tenancy import Principal, tenant_context
from proactive import service as engagement
from retention import deletion
from retention.deletion import Protection

log = structlog.get_logger(__name__)


class ErasureIn(msgspec.Struct, forbid_unknown_fields=True):
    visitor_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320)] | None = None
    reason: Annotated[str, msgspec.Meta(max_length=1000)] = ""


class ErasedItem(msgspec.Struct):
    id: UUID
    external_id: str
    reason: str | None = None


class ErasureReceipt(msgspec.Struct):
    receipt_id: UUID
    subject: str  # which identifier was used, with the value as a short keyed hash
    requested_at: datetime
    deleted: list[ErasedItem]
    restricted: list[ErasedItem]
    ledger_seq: int
    behaviour_events_deleted: int = 0


ERASE_BATCH = 500


def _always(condition: Any) -> deletion.StillDue:
    async def still_due() -> Any:
        return condition

    return still_due
OPERATION = "erasure"


async def erase(rt: Runtime, principal: Principal, request: ErasureIn) -> ErasureReceipt:
    """Erase one person's conversations and behaviour events. Decided like a sweep (see
    retention/deletion.py): batch by batch, each in one transaction that re-reads the guards and
    receipts only what it deleted; one erasure per tenant at a time (the ``erasure`` lease, 409
    with the running id). Killed half-way, the same request run again finishes the job."""
    if bool(request.visitor_id) == bool(request.email):
        raise InvalidInput("name the person by visitor_id or by email (one of them)", [FieldError("visitor_id", "or email, exactly one")])
    ctx = await tenant_context(rt, principal.tenant_id)
    if request.visitor_id:
        digest = ctx.crypto.identity_hash(request.visitor_id)
        where = Conversation.visitor_hash == digest
        subject = f"visitor:{digest[:16]}"
    else:
        digest = ctx.crypto.identity_hash((request.email or "").strip().lower())
        where = Conversation.visitor_email_hash == digest
        subject = f"email:{digest[:16]}"
    tenant_id = principal.tenant_id
    async with leases.held(rt, tenant_id, OPERATION) as lease:
        receipt_id = lease.run_id
        now = rt.clock.now()
        deleted: list[ErasedItem] = []
        restricted: dict[UUID, tuple[str, Protection]] = {}

        def theirs() -> Any:
            return Conversation.select(Conversation.id, Conversation.external_id).where((Conversation.tenant == tenant_id) & where)

        async for rows in db.keyset_pages(theirs, Conversation.id, ERASE_BATCH):
            outcome = await deletion.delete_batch(
                rt, tenant_id, [r["id"] for r in rows], actor=principal.actor, action="erasure.delete", now=now,
                still_due=_always(where), lease=lease, details=lambda r: {"receipt": str(receipt_id)},
            )
            deleted.extend(ErasedItem(r["id"], r["external_id"]) for r in outcome.deleted)
            names = {r["id"]: r["external_id"] for r in rows}
            restricted.update({cid: (names[cid], p) for cid, p in outcome.protected.items()})
        events = 0
        async with db.write_transaction():
            await leases.fence(rt, lease)
            if request.visitor_id:  # the engagement engine's behaviour events, keyed by the same hash
                events = await engagement.erase_visitor_data(tenant_id, digest)
            for cid, (_, protection) in restricted.items():
                if protection.lasting:  # "not indexed yet" is not a reason to restrict for good
                    await Conversation.update({Conversation.restricted: protection.reason[:300]}).where(
                        (Conversation.id == cid) & (Conversation.tenant == tenant_id)
                    )
            [entry] = await ledger.append(tenant_id, ledger.Entry(
                actor=principal.actor, action="erasure", subject=str(receipt_id),
                details={"subject": subject, "deleted": len(deleted), "restricted": len(restricted), "behaviour_events_deleted": events,
                         "reason": request.reason},
            ))
    if request.visitor_id:
        await engagement.forget_visitor(rt, tenant_id, digest)
    return ErasureReceipt(
        receipt_id=receipt_id, subject=subject, requested_at=now,
        deleted=deleted,
        restricted=[ErasedItem(cid, external_id, protection.reason) for cid, (external_id, protection) in restricted.items()],
        ledger_seq=entry.seq,
        behaviour_events_deleted=events,
    )
