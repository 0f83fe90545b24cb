"""The one destructive path, shared by the retention sweep and erasure.

Deleting is irreversible, so this function states its invariant and keeps it: for each batch,
in ONE transaction, the conversation rows are deleted, their data keys are destroyed (crypto-
shredding: even a backup of the ciphertext is unreadable afterwards), what is stored beside them
(earlier revisions, attachment files, connector drafts) is deleted, an index delete is queued
in the durable outbox, and a receipt per conversation is appended to the ledger (ids, content
hash, why — never content). A crash before commit leaves everything as it was; after commit,
everything is done but the index delete, which the outbox carries out.
"""

from __future__ import annotations

from typing import Any, Callable
from uuid import UUID

from archive import db, ledger, transcripts
from archive.metrics import store as metrics
from archive.search.indexing import enqueue_deletes
from archive.tables import Conversation, ConversationKey


async def delete_batch(
    tenant_id: UUID, rows: list[dict[str, Any]], actor: str, action: str, details: Callable[[dict[str, Any]], dict[str, Any]]
) -> int:
    if not rows:
        return 0
    ids = [r["id"] for r in rows]
    async with db.write_transaction():
        await ConversationKey.delete().where((ConversationKey.tenant == tenant_id) & ConversationKey.conversation.is_in(ids))
        await Conversation.delete().where((Conversation.tenant == tenant_id) & Conversation.id.is_in(ids))
        await transcripts.delete_parts(tenant_id, ids)
        await metrics.delete(tenant_id, ids)
        await enqueue_deletes(tenant_id, ids)
        await ledger.append(
            tenant_id,
            *[
                ledger.Entry(actor=actor, action=action, subject=str(r["id"]), content_hash=r["content_sha256"],
                             details={"external_id": r["external_id"], **details(r)})
                for r in rows
            ],
        )
    return len(rows)
