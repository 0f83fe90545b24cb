"""Reading archived conversations back: decrypt, and ledger every read.

A read shows the latest revision unless it names another (``revision=N``); every revision stays
readable until the conversation itself is deleted (archive/revisions.py). Attachment files a
connector fetched are read one at a time, ledgered like a conversation read.
"""

from __future__ import annotations

from typing import Any, NamedTuple
from uuid import UUID

import msgspec

from archive import attachments, ledger, revisions
from archive.db import json_column
from archive.errors import NotFound
from archive.models import Attachment, ConversationOut, RevisionsOut, StoredConversation
from archive.runtime import Runtime
from archive.tables import (
    ConnectorDraft,
    ConnectorJob,
    ConnectorThread,
    Conversation,
    ConversationFile,
    ConversationKey,
    ConversationRevision,
)
from archive.tenancy import Principal, TenantContext, tenant_context


async def load(ctx: TenantContext, conversation_id: UUID) -> tuple[dict[str, Any], StoredConversation]:
    """Fetch and decrypt one conversation of the tenant; NotFound when absent or shredded."""
    row = (
        await Conversation.select()
        .where((Conversation.id == conversation_id) & (Conversation.tenant == ctx.tenant_id))
        .first()
    )
    key = await revisions.key_of(ctx.tenant_id, conversation_id)
    if row is None or key is None:
        raise NotFound(f"no conversation {conversation_id}")
    plaintext = ctx.crypto.open(conversation_id, row["ciphertext"], key["wrapped_key"], key["master_version"])
    return row, msgspec.json.decode(plaintext, type=StoredConversation)


class Sealed(NamedTuple):
    """A conversation as stored, still encrypted: its row (the latest revision), its wrapped key,
    its earlier revisions' rows (oldest first) and its stored files' rows."""

    row: dict[str, Any]
    key: dict[str, Any]
    earlier: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []


async def fetch_sealed(ctx: TenantContext, ids: list[UUID]) -> dict[UUID, Sealed]:
    """Everything stored of several conversations, still encrypted (four queries); absent or
    shredded ones are simply missing. Decrypting is ``unseal`` / ``unseal_earlier`` /
    ``unseal_files`` (CPU: callers may use a thread)."""
    if not ids:
        return {}
    # By primary key alone, the tenant checked on the rows: with ``tenant = ?`` in the WHERE,
    # SQLite prefers the (tenant, retain_until) index and walks every row of the tenant.
    rows = [r for r in await Conversation.select().where(Conversation.id.is_in(ids)) if r["tenant"] == ctx.tenant_id]
    keys = {
        k["conversation"]: k
        for k in await ConversationKey.select().where(ConversationKey.conversation.is_in(ids))
        if k["tenant"] == ctx.tenant_id
    }
    present = [row["id"] for row in rows if row["id"] in keys]
    earlier = await revisions.earlier_rows(ctx.tenant_id, present)
    files = await attachments.rows_for(ctx.tenant_id, present)
    return {
        row["id"]: Sealed(row, keys[row["id"]], earlier.get(row["id"], []), files.get(row["id"], []))
        for row in rows
        if row["id"] in keys
    }


def unseal(ctx: TenantContext, sealed: Sealed) -> StoredConversation:
    row, key = sealed.row, sealed.key
    plaintext = ctx.crypto.open(row["id"], row["ciphertext"], key["wrapped_key"], key["master_version"])
    return msgspec.json.decode(plaintext, type=StoredConversation)


def unseal_earlier(ctx: TenantContext, sealed: Sealed) -> list[tuple[dict[str, Any], StoredConversation]]:
    """Every earlier revision, oldest first, with its row."""
    return [(r, revisions.open_earlier(ctx, sealed.key, r)) for r in sealed.earlier]


def stored_files(ctx: TenantContext, sealed: Sealed, conversations: list[StoredConversation]) -> list[tuple[Attachment, bytes]]:
    """The stored files of a conversation, each with the attachment (of any revision) it belongs
    to. A file row is matched to an attachment by the keyed hash of the SHA-256 the attachment
    names, then decrypted with that SHA-256 bound, so a row cannot be passed off as another file."""
    by_digest = {f["digest"]: f for f in sealed.files}
    found: list[tuple[Attachment, bytes]] = []
    seen: set[str] = set()
    for conversation in conversations:
        for message in conversation.messages:
            for attachment in message.attachments:
                if not attachment.sha256 or attachment.sha256 in seen:
                    continue
                row = by_digest.get(attachments.digest(ctx, attachment.sha256))
                if row is not None:
                    seen.add(attachment.sha256)
                    found.append((attachment, attachments.open_file(ctx, sealed.key, row, attachment.sha256)))
    return found


async def load_many(ctx: TenantContext, ids: list[UUID]) -> dict[UUID, tuple[dict[str, Any], StoredConversation]]:
    """Several conversations (latest revisions), decrypted; absent or shredded ones are simply missing."""
    return {cid: (sealed.row, unseal(ctx, sealed)) for cid, sealed in (await fetch_sealed(ctx, ids)).items()}


async def read(rt: Runtime, principal: Principal, conversation_id: UUID, revision: int | None = None) -> ConversationOut:
    """One conversation: its latest revision, or revision ``revision`` (ledgered either way)."""
    ctx = await tenant_context(rt, principal.tenant_id)
    row, stored = await load(ctx, conversation_id)
    content_hash, redactions, archived_at, number = row["content_sha256"], row["redactions"], row["revised_at"] or row["created_at"], row["revision"]
    if revision is not None and revision != row["revision"]:
        earlier = await revisions.earlier_one(ctx.tenant_id, conversation_id, revision)
        if earlier is None:
            raise NotFound(f"conversation {conversation_id} has revisions 1 to {row['revision']}; there is no revision {revision}")
        key = await revisions.key_of(ctx.tenant_id, conversation_id)
        assert key is not None  # load found it
        stored = revisions.open_earlier(ctx, key, earlier)
        content_hash, redactions, archived_at, number = (
            earlier["content_sha256"], earlier["redactions"], earlier["archived_at"], earlier["revision"],
        )
    details = {"revision": number} if row["revision"] > 1 else {}
    await ledger.append(
        principal.tenant_id,
        ledger.Entry(actor=principal.actor, action="read", subject=str(conversation_id), content_hash=content_hash, details=details),
    )
    return ConversationOut(
        id=conversation_id,
        **msgspec.structs.asdict(stored),
        content_sha256=content_hash,
        redactions=json_column(redactions),
        retain_until=row["retain_until"],
        archived_at=archived_at,
        revision=number,
        revisions=row["revision"],
    )


async def list_revisions(rt: Runtime, principal: Principal, conversation_id: UUID) -> RevisionsOut:
    """Every revision of a conversation, oldest first (metadata: nothing is decrypted)."""
    row, found = await revisions.listing(principal.tenant_id, conversation_id)
    return RevisionsOut(id=conversation_id, external_id=row["external_id"], revisions=found)


async def read_file(rt: Runtime, principal: Principal, conversation_id: UUID, sha256: str) -> tuple[bytes, Attachment]:
    """One stored attachment file and the attachment describing it (latest revision first);
    ledgered like a read."""
    ctx = await tenant_context(rt, principal.tenant_id)
    sealed = (await fetch_sealed(ctx, [conversation_id])).get(conversation_id)
    if sealed is None:
        raise NotFound(f"no conversation {conversation_id}")
    conversations = [unseal(ctx, sealed), *[s for _, s in reversed(unseal_earlier(ctx, sealed))]]
    for attachment, data in stored_files(ctx, sealed, conversations):
        if attachment.sha256 == sha256:
            await ledger.append(
                principal.tenant_id,
                ledger.Entry(actor=principal.actor, action="read.file", subject=str(conversation_id), content_hash=sha256),
            )
            return data, attachment
    raise NotFound(f"conversation {conversation_id} has no stored file with SHA-256 {sha256}")


async def delete_parts(tenant_id: UUID, conversation_ids: list[UUID]) -> None:
    """Delete what is stored beside these conversations — earlier revisions, attachment files,
    connector drafts, threads and queued work — inside the caller's deletion transaction (the
    conversations' keys, which shred all of it, are deleted there too)."""
    if not conversation_ids:
        return
    await ConversationRevision.delete().where(
        (ConversationRevision.tenant == tenant_id) & ConversationRevision.conversation.is_in(conversation_ids)
    )
    await ConversationFile.delete().where((ConversationFile.tenant == tenant_id) & ConversationFile.conversation.is_in(conversation_ids))
    await ConnectorDraft.delete().where((ConnectorDraft.tenant == tenant_id) & ConnectorDraft.conversation.is_in(conversation_ids))
    await ConnectorJob.delete().where((ConnectorJob.tenant == tenant_id) & ConnectorJob.conversation.is_in(conversation_ids))
    await ConnectorThread.delete().where((ConnectorThread.tenant == tenant_id) & ConnectorThread.conversation.is_in(conversation_ids))
