"""Review items and retention: an unfinished review item keeps its conversation.

Supervision evidence must not disappear while someone is still deciding about it, so a
conversation with an open, claimed or escalated review item is not deleted — by the retention
sweep or by an erasure — until the item is resolved or marked a false positive (Smarsh does the
same). Once it may go, its review items and their comments go with it, in the same transaction:
they are rows that refer to the conversation with a cascading foreign key
(archive/supervision/tables.py); the review events (who did what when, no content) and the ledger
entries stay, as the deletion receipts do.

``open_reviews`` is what the retention deletion guard asks inside the deletion transaction
(``rt.deletion_guards``, retention/deletion.py). Review actions append to the tenant's ledger,
which locks its head, as the deletion transaction does first: a resolve and a delete of the same
conversation serialise, and the delete sees the item's state as committed.
"""

from __future__ import annotations

from uuid import UUID

import msgspec

from archive.supervision.reviews import open_for_conversations

GUARD = "open_review"


class Kept(msgspec.Struct, frozen=True):
    """Why a conversation is kept: the guard's name, the policy that flagged it, a sentence."""

    guard: str
    label: str
    reason: str


async def open_reviews(tenant_id: UUID, conversation_ids: list[UUID]) -> dict[UUID, Kept]:
    """The conversations among ``conversation_ids`` that an unfinished review item keeps."""
    flagged = await open_for_conversations(tenant_id, conversation_ids)
    return {cid: Kept(GUARD, policy, f"an open review item (policy {policy!r}) awaits a decision") for cid, policy in flagged.items()}
