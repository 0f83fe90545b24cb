"""Erasure (GDPR Art. 17): delete a person's conversations, except those a legal hold or a
compliance-mode floor must keep — those are marked *restricted* and listed back with the reason.

The person's behaviour events and the engagement engine's memory of them are deleted too: they are
keyed by the same visitor hash and are never under a hold.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID, uuid4

import msgspec
import structlog

from archive import db, ledger
from archive.errors import FieldError, InvalidInput
from archive.runtime import Runtime
from archive.tables import Conversation
from archive.tenancy import Principal, tenant_context
from proactive import service as engagement
from retention import deletion, holds, policies

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


async def erase(rt: Runtime, principal: Principal, request: ErasureIn) -> ErasureReceipt:
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
    rows = await Conversation.select(*holds.CANDIDATE_COLUMNS).where((Conversation.tenant == principal.tenant_id) & where)
    now = rt.clock.now()
    held = await (await holds.matcher(rt, principal.tenant_id)).protecting(rows)
    floor = (await policies.current(principal.tenant_id)).policy.floor
    restricted: dict[UUID, str] = {cid: f"legal hold {name!r}" for cid, name in held.items()}
    if floor is not None and floor.mode == "compliance":
        for row in rows:
            until = policies.expires(row["ended_at"], floor)
            if row["id"] not in restricted and until is not None and until > now:
                restricted[row["id"]] = f"compliance-mode retention floor until {until.date().isoformat()}"
    doomed = [r for r in rows if r["id"] not in restricted]
    receipt_id = uuid4()
    await deletion.delete_batch(principal.tenant_id, doomed, principal.actor, "erasure.delete", lambda r: {"receipt": str(receipt_id)})
    events = 0
    async with db.write_transaction():
        if request.visitor_id:  # the engagement engine's behaviour events, keyed by the same hash
            events = await engagement.erase_visitor_data(principal.tenant_id, digest)
        for cid, reason in restricted.items():
            await Conversation.update({Conversation.restricted: reason[:300]}).where(Conversation.id == cid)
        [entry] = await ledger.append(principal.tenant_id, ledger.Entry(
            actor=principal.actor, action="erasure", subject=str(receipt_id),
            details={"subject": subject, "deleted": len(doomed), "restricted": len(restricted), "behaviour_events_deleted": events,
                     "reason": request.reason},
        ))
    if request.visitor_id:
        await engagement.forget_visitor(rt, principal.tenant_id, digest)
    by_id = {r["id"]: r for r in rows}
    return ErasureReceipt(
        receipt_id=receipt_id, subject=subject, requested_at=now,
        deleted=[ErasedItem(r["id"], r["external_id"]) for r in doomed],
        restricted=[ErasedItem(cid, by_id[cid]["external_id"], reason) for cid, reason in restricted.items()],
        ledger_seq=entry.seq,
        behaviour_events_deleted=events,
    )
