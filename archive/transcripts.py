"""Reading archived conversations back: decrypt, and ledger every read."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec

from archive import ledger
from archive.db import json_column
from archive.errors import NotFound
from archive.models import ConversationOut, StoredConversation
from archive.runtime import Runtime
from archive.tables import Conversation, ConversationKey
from archive.tenancy import Principal, TenantContext, tenant_context


async def load(ctx: TenantContext, conversation_id: UUID) -> tuple[dict[str, Any], StoredConversation]:
    """Fetch and decrypt one conversation of the tenant; NotFound when absent or shredded."""
    row = (
        await Conversation.select()
        .where((Conversation.id == conversation_id) & (Conversation.tenant == ctx.tenant_id))
        .first()
    )
    key = (
        await ConversationKey.select()
        .where((ConversationKey.conversation == conversation_id) & (ConversationKey.tenant == ctx.tenant_id))
        .first()
    )
    if row is None or key is None:
        raise NotFound(f"no conversation {conversation_id}")
    plaintext = ctx.crypto.open(conversation_id, row["ciphertext"], key["wrapped_key"], key["master_version"])
    return row, msgspec.json.decode(plaintext, type=StoredConversation)


Sealed = tuple[dict[str, Any], dict[str, Any]]  # (conversation row, key row)


async def fetch_sealed(ctx: TenantContext, ids: list[UUID]) -> dict[UUID, Sealed]:
    """Rows and wrapped keys of several conversations, still encrypted (two queries); absent or
    shredded ones are simply missing. Decrypting is ``unseal`` (CPU: callers may use a thread)."""
    if not ids:
        return {}
    # By primary key alone, the tenant checked on the rows: with ``tenant = ?`` in the WHERE,
    # SQLite prefers the (tenant, retain_until) index and walks every row of the tenant.
    rows = await Conversation.select().where(Conversation.id.is_in(ids))
    keys = {k["conversation"]: k for k in await ConversationKey.select().where(ConversationKey.conversation.is_in(ids))}
    return {
        row["id"]: (row, keys[row["id"]]) for row in rows
        if row["tenant"] == ctx.tenant_id and row["id"] in keys and keys[row["id"]]["tenant"] == ctx.tenant_id
    }


def unseal(ctx: TenantContext, sealed: Sealed) -> StoredConversation:
    row, key = sealed
    plaintext = ctx.crypto.open(row["id"], row["ciphertext"], key["wrapped_key"], key["master_version"])
    return msgspec.json.decode(plaintext, type=StoredConversation)


async def load_many(ctx: TenantContext, ids: list[UUID]) -> dict[UUID, tuple[dict[str, Any], StoredConversation]]:
    """Several conversations, decrypted; absent or shredded ones are simply missing."""
    return {cid: (sealed[0], unseal(ctx, sealed)) for cid, sealed in (await fetch_sealed(ctx, ids)).items()}


async def read(rt: Runtime, principal: Principal, conversation_id: UUID) -> ConversationOut:
    ctx = await tenant_context(rt, principal.tenant_id)
    row, stored = await load(ctx, conversation_id)
    await ledger.append(
        principal.tenant_id,
        ledger.Entry(actor=principal.actor, action="read", subject=str(conversation_id), content_hash=row["content_sha256"]),
    )
    redactions = row["redactions"]
    return ConversationOut(
        id=conversation_id,
        **msgspec.structs.asdict(stored),
        content_sha256=row["content_sha256"],
        redactions=json_column(redactions),
        retain_until=row["retain_until"],
        archived_at=row["created_at"],
    )
