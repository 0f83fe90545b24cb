"""Review items and retention: an unfinished review item keeps its conversation.

Supervision evidence must not disappear while someone is still deciding about it, so a
conversation with an open, claimed or escalated review item is not deleted — by the retention
sweep or by an erasure — until the item is resolved or marked a false positive (Smarsh does the
same). Once it may go, its review items and their comments go with it, in the same transaction:
they are rows that refer to the conversation with a cascading foreign key
(archive/supervision/tables.py); the review events (who did what when, no content) and the ledger
entries stay, as the deletion receipts do.

``ReviewGuard`` is one of the runtime's deletion guards (``rt.deletion_guards``, listed in
api/composition.py), asked inside every deletion transaction after the tenant's ledger head is
locked (retention/deletion.py). Everything that makes an item unfinished — flagging at ingest or
by a backfill, reopening — takes the same lock first, so a deletion either sees the item or
runs wholly before it (and then the item is never made: its conversation is gone).
Conversations in a case are kept by the case's legal holds, which are ``HoldGuard``'s.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from archive.supervision.reviews import open_for_conversations
from retention.deletion import Protection

if TYPE_CHECKING:
    from archive.runtime import Runtime

GUARD = "open_review"


async def open_reviews(tenant_id: UUID, conversation_ids: list[UUID]) -> dict[UUID, Protection]:
    """The conversations among ``conversation_ids`` that an unfinished review item keeps."""
    flagged = await open_for_conversations(tenant_id, conversation_ids)
    return {cid: Protection(GUARD, policy, f"an open review item (policy {policy!r}) awaits a decision") for cid, policy in flagged.items()}


class ReviewGuard:
    """Unfinished review items, as a deletion guard (called inside the deletion transaction)."""

    async def protect(self, rt: Runtime, tenant_id: UUID, rows: list[dict[str, Any]], now: datetime) -> dict[UUID, Protection]:
        return await open_reviews(tenant_id, [r["id"] for r in rows])
