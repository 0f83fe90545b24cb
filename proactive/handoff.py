"""Engine replicas: what crosses between processes, always through the database.

* **Events.** A process that does not own a site stores a collect batch like any other, plus a row
  of ``engagement_handoff`` (one transaction: a 2xx still means durable), and wakes the owner with
  ``NOTIFY`` (``engagement_events:<tenant>``). The owner applies the batch and deletes the row in
  the commit that holds its effects, so each batch is applied once; every beat it also looks for
  rows, so a lost notification or a dead owner only delays them.
* **Invitations.** The owner commits an invitation and announces it
  (``engagement_invited:<tenant>:<site>:<visitor>``). Whichever process holds the visitor's stream
  takes it; otherwise the visitor's next collect, on any process, does. Taking is one
  ``UPDATE … SET delivered_at … RETURNING``: exactly one channel shows each invitation.
* **Capacity.** A report to a process that does not own the tenant is stored and announced
  (``engagement_capacity:<tenant>``); the owner reads it back and decides its waiting visitors.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
import structlog

from archive import db
from archive.tenancy import tenant_context
from proactive import store
from proactive.model import GroupCapacity, Invitation, VisitorKey

if TYPE_CHECKING:
    from archive.runtime import Runtime

log = structlog.get_logger(__name__)

EVENTS = store.HANDED_OFF
INVITED = "engagement_invited"
CAPACITY = "engagement_capacity"
PICK_UP_BATCH = 500  # batches per pick-up query


class Accepted(msgspec.Struct):
    repeated: bool  # the batch id was stored before: nothing was stored again
    invitations: list[Invitation]  # for the visitor, taken by this answer


async def accept(rt: Runtime, batch: store.Batch, named: bool) -> Accepted:
    """A collect batch for a site another process owns (``named``: the browser gave its id): stored
    for the owner in the journal's next group commit, which also wakes the owner (``NOTIFY`` at
    commit); then the visitor's undelivered invitations are taken. Durable when this returns."""
    journal = rt.engagement.journal
    repeated = named and await store.batch_stored(batch.tenant, batch.visitor_hash, batch.batch_id)
    if batch.events and not repeated:
        # Two replicas storing the same retry at the same instant both get here; the owner applies
        # the first copy and deletes the second (seen_batch in proactive.handoff.pick_up).
        journal.add_handoff(batch)
        await journal.commit()
    return Accepted(repeated, await store.claim_invitations(batch.tenant, (batch.site, batch.visitor_hash), rt.clock.now()))


async def take_invitations(rt: Runtime, tenant: Any, key: VisitorKey) -> list[Invitation]:
    """Invitations for the visitor no channel has taken yet (they are taken now)."""
    rt.engagement.delivery.take_pending(key, rt.clock.time())  # the owner's note that there is something: taken below
    return await store.claim_invitations(tenant, key, rt.clock.now())


async def pick_up(rt: Runtime, tenant: UUID) -> int:
    """The owner's side: apply what other processes stored for the tenant; returns the number
    of events applied. Runs until nothing is waiting (one pick-up at a time per process)."""
    engagement = rt.engagement
    ctx = await tenant_context(rt, tenant)
    applied = 0
    while engagement.owns(tenant):
        found = await store.handed_off(tenant, ctx.crypto, PICK_UP_BATCH)
        if not found:
            break
        for handoff_id, batch in found:
            state = await engagement.visitor(tenant, batch.site, batch.visitor_hash)
            assert state is not None
            if not engagement.owns(tenant):
                return applied
            if batch.batch_id and state.seen_batch(batch.batch_id):
                engagement.journal.handed_off(handoff_id, applied=False)  # a retry of a batch applied before: the copy goes
                continue
            engagement.engine.apply_events(state, batch.events)
            engagement.journal.handed_off(handoff_id, applied=True)
            applied += len(batch.events)
        await engagement.journal.commit()
        if len(found) < PICK_UP_BATCH:
            break
    return applied


async def forward_capacity(rt: Runtime, tenant: Any, groups: dict[str, GroupCapacity]) -> None:
    """A report for a tenant another process owns: stored, then the owner is told."""
    async with db.write_transaction():
        await store.write(store.Snapshot(batches=[], visitors=[], invitations=[], capacity=[((tenant, n), c) for n, c in groups.items()],
                                         counters=Counter(), forgotten=[]))
    await rt.signals.announce(CAPACITY, str(tenant))


async def reload_capacity(rt: Runtime, tenant: UUID) -> None:
    """The owner's side of a forwarded report: as if it had been sent here."""
    if not rt.engagement.owns(tenant):
        return
    groups = {key[1]: capacity for key, capacity in await store.capacity_reports(tenant) if key[1] is not None}
    current = rt.engagement.engine.capacity
    changed = {name: cap for name, cap in groups.items() if current.get((tenant, name)) != cap}
    if changed:
        rt.engagement.engine.set_capacity(tenant, changed)
        await rt.engagement.journal.commit()
