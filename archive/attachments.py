"""Attachment files kept with their conversation: sealed under the conversation's data key.

Every message keeps its attachments' metadata (name, type, size, SHA-256, URL) inside the sealed
conversation. A connector may also fetch the files themselves (archive/connectors/files.py);
those are stored here, in the database next to the conversation, rather than in the data
directory: a file then commits with its conversation in one transaction, is deleted in the
transaction that deletes the conversation, and is in every database backup the conversation is
in. Files are stored as received (redaction applies to text; file names are redacted like text),
and crypto-shredding the conversation's key makes them unreadable with everything else.

Clear columns hold nothing readable: the file's SHA-256 only as a keyed hash under the tenant's
identity key, and its size. A later revision fetches its files again; one the conversation
already holds (the same SHA-256) is not stored twice.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from uuid import UUID, uuid4

import msgspec

from archive import db
from archive.errors import NotFound
from archive.tables import ConversationFile
from archive.tenancy import TenantContext


class FetchedFile(msgspec.Struct, frozen=True):
    """A file as fetched: its bytes and their SHA-256."""

    sha256: str
    data: bytes


def part(sha256: str) -> str:
    return f"file/{sha256}"


def digest(ctx: TenantContext, sha256: str) -> str:
    return ctx.crypto.identity_hash(f"file:{sha256}")


async def store(ctx: TenantContext, conversation_id: UUID, key: tuple[bytes, int], files: list[FetchedFile]) -> int:
    """Seal and insert the files a conversation does not hold yet; returns how many were new.
    Runs inside the caller's (ingest) transaction."""
    if not files:
        return 0
    wanted = {digest(ctx, f.sha256): f for f in files}
    held = {
        r["digest"]
        for r in await ConversationFile.select(ConversationFile.digest).where(
            (ConversationFile.conversation == conversation_id) & ConversationFile.digest.is_in(list(wanted))
        )
    }
    wrapped, version = key
    now = datetime.now(timezone.utc)  # the wall clock, as the column's default
    rows = [
        (uuid4(), ctx.tenant_id, conversation_id, d, len(f.data),
         ctx.crypto.seal_part(conversation_id, wrapped, version, part(f.sha256), f.data), now)
        for d, f in wanted.items()
        if d not in held
    ]
    # Explicit SQL (issue 20): part of the ingest transaction's hot write path.
    await db.insert_many("conversation_file", ("id", "tenant", "conversation", "digest", "size", "ciphertext", "created_at"), rows)
    return len(rows)


async def rows_for(tenant_id: UUID, conversation_ids: list[UUID]) -> dict[UUID, list[dict[str, Any]]]:
    """The stored files of these conversations (still sealed)."""
    found: dict[UUID, list[dict[str, Any]]] = {}
    if not conversation_ids:
        return found
    for row in await ConversationFile.select().where(
        (ConversationFile.tenant == tenant_id) & ConversationFile.conversation.is_in(conversation_ids)
    ):
        found.setdefault(row["conversation"], []).append(row)
    return found


def open_file(ctx: TenantContext, key: dict[str, Any], row: dict[str, Any], sha256: str) -> bytes:
    """The file's bytes (CPU only); DecryptionError if the row does not belong to ``sha256``."""
    return ctx.crypto.open_part(row["conversation"], key["wrapped_key"], key["master_version"], part(sha256), row["ciphertext"])


async def one(ctx: TenantContext, conversation_id: UUID, sha256: str) -> dict[str, Any]:
    row: dict[str, Any] | None = (
        await ConversationFile.select()
        .where(
            (ConversationFile.tenant == ctx.tenant_id)
            & (ConversationFile.conversation == conversation_id)
            & (ConversationFile.digest == digest(ctx, sha256))
        )
        .first()
    )
    if row is None:
        raise NotFound(f"conversation {conversation_id} has no stored file with SHA-256 {sha256}")
    return row
