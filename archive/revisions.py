"""Revisions: a conversation reopened and closed again, or edited on the platform, is archived again
as the next revision of the same conversation instead of being refused.

Layout. The ``conversation`` row is always the latest revision, so search, retention, holds and
reads keep working on it unchanged; each earlier revision moves to ``conversation_revision`` when
it is superseded. Nothing is ever overwritten in place without its predecessor being kept.

Keys. A conversation keeps ONE data key for all its revisions (and its attachment files and any
connector drafts); each piece is bound to its place in the associated data (``revision/3``,
``file/<sha256>``): a revision's ciphertext copied to another revision's row, or into the
conversation row, fails to decrypt. One key per conversation, rather than one per revision,
because crypto-shredding then stays a single row (destroying ``conversation_key`` makes every
revision unreadable at once, and nothing can be forgotten), and master rotation re-wraps one key
per conversation as before. The conversation row's own ciphertext uses the original binding, so
conversations archived before revisions existed need no migration; when it is superseded it is
re-encrypted under its revision's binding (a few kilobytes, inside the revising transaction).

Retention counts from the latest revision's end (``retain_until`` is decided again for it), holds
protect the conversation and with it every revision, and deletion removes all of them together.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec

from archive import db
from archive.db import json_column
from archive.errors import NotFound
from archive.models import RevisionOut, StoredConversation
from archive.tables import Conversation, ConversationKey, ConversationRevision
from archive.tenancy import TenantContext

CURRENT = ""  # the part name of the conversation row's own ciphertext


class RevisionRace(Exception):
    """Another transaction revised the conversation first; ingest retries against the new state."""


def part(revision: int) -> str:
    return f"revision/{revision}"


async def key_of(tenant_id: UUID, conversation_id: UUID, *, lock: bool = False) -> dict[str, Any] | None:
    """The conversation's wrapped data key. ``lock``: for a transaction that will seal something
    new under it (a revision, a draft): the row stays locked until that transaction ends, so a
    redaction rescan cannot replace the key in between (archive/rescan.py) and leave the new
    piece sealed under a shredded key. SQLite's write transaction serialises without it."""
    if lock and not db.is_sqlite():
        rows = await ConversationKey.raw(
            "SELECT * FROM conversation_key WHERE conversation = {} AND tenant = {}" + db.for_update(), conversation_id, tenant_id
        )
        return dict(rows[0]) if rows else None
    row: dict[str, Any] | None = (
        await ConversationKey.select()
        .where((ConversationKey.conversation == conversation_id) & (ConversationKey.tenant == tenant_id))
        .first()
    )
    return row


async def earlier_with(conversation_id: UUID, submission_mac: str) -> dict[str, Any] | None:
    """An earlier revision submitted with exactly this content (a late retry), if any."""
    row: dict[str, Any] | None = (
        await ConversationRevision.select(
            ConversationRevision.revision, ConversationRevision.content_sha256, ConversationRevision.redactions
        )
        .where((ConversationRevision.conversation == conversation_id) & (ConversationRevision.submission_mac == submission_mac))
        .first()
    )
    return row


_REVISION_COLUMNS = (
    "tenant", "conversation", "revision", "started_at", "ended_at", "message_count", "content_sha256", "submission_mac",
    "ciphertext", "redactions", "archived_at", "superseded_at",
)


async def supersede(ctx: TenantContext, conversation_id: UUID, key: dict[str, Any], now: datetime) -> int:
    """Move the conversation row's current revision aside (re-bound to its number) and return
    that number; the caller then updates the row to the next revision in the same transaction."""
    current = (
        await Conversation.select(
            Conversation.revision, Conversation.ciphertext, Conversation.started_at, Conversation.ended_at,
            Conversation.message_count, Conversation.content_sha256, Conversation.submission_mac,
            Conversation.redactions, Conversation.created_at, Conversation.revised_at,
        )
        .where((Conversation.id == conversation_id) & (Conversation.tenant == ctx.tenant_id))
        .first()
    )
    if current is None:
        raise RevisionRace(str(conversation_id))
    number: int = current["revision"]
    wrapped, version = key["wrapped_key"], key["master_version"]
    plaintext = ctx.crypto.open_part(conversation_id, wrapped, version, CURRENT, current["ciphertext"])
    # Explicit SQL (issue 20): connectors revise on every re-delivery, so this is a hot write path.
    await db.insert_many("conversation_revision", _REVISION_COLUMNS, [(
        ctx.tenant_id, conversation_id, number, current["started_at"], current["ended_at"], current["message_count"],
        current["content_sha256"], current["submission_mac"],
        ctx.crypto.seal_part(conversation_id, wrapped, version, part(number), plaintext),
        _json_text(current["redactions"]), current["revised_at"] or current["created_at"], now,
    )])
    return number


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else msgspec.json.encode(value).decode()


async def listing(tenant_id: UUID, conversation_id: UUID) -> tuple[dict[str, Any], list[RevisionOut]]:
    """(conversation row, every revision oldest first) — metadata only, nothing decrypted."""
    row = (
        await Conversation.select(
            Conversation.id, Conversation.external_id, Conversation.revision, Conversation.started_at, Conversation.ended_at,
            Conversation.message_count, Conversation.content_sha256, Conversation.redactions, Conversation.created_at,
            Conversation.revised_at,
        )
        .where((Conversation.id == conversation_id) & (Conversation.tenant == tenant_id))
        .first()
    )
    if row is None:
        raise NotFound(f"no conversation {conversation_id}")
    earlier = await ConversationRevision.select(
        ConversationRevision.revision, ConversationRevision.archived_at, ConversationRevision.started_at,
        ConversationRevision.ended_at, ConversationRevision.message_count, ConversationRevision.content_sha256,
        ConversationRevision.redactions,
    ).where((ConversationRevision.conversation == conversation_id) & (ConversationRevision.tenant == tenant_id)).order_by(
        ConversationRevision.revision
    )
    revisions = [
        RevisionOut(
            revision=r["revision"], archived_at=r["archived_at"], started_at=r["started_at"], ended_at=r["ended_at"],
            message_count=r["message_count"], content_sha256=r["content_sha256"], redactions=json_column(r["redactions"]),
            latest=False,
        )
        for r in earlier
    ]
    revisions.append(
        RevisionOut(
            revision=row["revision"], archived_at=row["revised_at"] or row["created_at"], started_at=row["started_at"],
            ended_at=row["ended_at"], message_count=row["message_count"], content_sha256=row["content_sha256"],
            redactions=json_column(row["redactions"]), latest=True,
        )
    )
    return row, revisions


async def earlier_rows(tenant_id: UUID, conversation_ids: list[UUID]) -> dict[UUID, list[dict[str, Any]]]:
    """Every earlier revision's row of these conversations, oldest first (still sealed)."""
    found: dict[UUID, list[dict[str, Any]]] = {}
    if not conversation_ids:
        return found
    rows = await ConversationRevision.select().where(
        (ConversationRevision.tenant == tenant_id) & ConversationRevision.conversation.is_in(conversation_ids)
    ).order_by(ConversationRevision.revision)
    for row in rows:
        found.setdefault(row["conversation"], []).append(row)
    return found


def open_earlier(ctx: TenantContext, key: dict[str, Any], row: dict[str, Any]) -> StoredConversation:
    """Decrypt one earlier revision (CPU only)."""
    plaintext = ctx.crypto.open_part(row["conversation"], key["wrapped_key"], key["master_version"], part(row["revision"]), row["ciphertext"])
    return msgspec.json.decode(plaintext, type=StoredConversation)


async def earlier_one(tenant_id: UUID, conversation_id: UUID, revision: int) -> dict[str, Any] | None:
    row: dict[str, Any] | None = (
        await ConversationRevision.select()
        .where(
            (ConversationRevision.tenant == tenant_id)
            & (ConversationRevision.conversation == conversation_id)
            & (ConversationRevision.revision == revision)
        )
        .first()
    )
    return row
