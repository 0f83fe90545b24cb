"""Ingest of finished conversations: validate, redact, encrypt, store, ledger — all or nothing.

Order matters and is the point of this module: nothing is written until every conversation in
the request has passed validation; redaction happens before encryption, hashing or logging, so
the original card number never exists anywhere but in this process's memory; the conversation
row, its wrapped data key and its ledger entry commit in one transaction, so a 2xx means durable.

Decisions (see docs/archive.md): re-sending the same conversation under the same ``external_id``
is idempotent (same id back); different content under an existing ``external_id`` is a 409, not a
new version, because a compliance archive must not let a later push silently replace evidence.
A batch is all-or-nothing: one invalid or conflicting item rejects the batch and names the item.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import msgspec

from archive import db, ledger
from archive.db import json_column
from archive.errors import Conflict, FieldError, InvalidInput, TooLarge
from archive.models import (
    BatchIn,
    ConversationIn,
    IngestResult,
    StoredConversation,
)
from archive.redaction import ChatLine, Redactor, redact_conversation
from archive.tables import Conversation, ConversationKey
from archive.tenancy import Principal, TenantContext
from archive.validation import convert, decode_json

if TYPE_CHECKING:
    from archive.runtime import Runtime

INSERT_RETRIES = 3
# Bodies larger than this are redacted and encrypted in a worker thread, not on the event loop.
OFF_LOOP_BYTES = 64 * 1024


class Prepared(msgspec.Struct):
    """One validated, redacted, encrypted conversation, ready to insert."""

    id: UUID
    external_id: str
    stored: StoredConversation
    content_sha256: str
    submission_mac: str
    ciphertext: bytes
    wrapped_key: bytes
    master_version: int
    redactions: dict[str, int]
    visitor_hash: str
    visitor_email_hash: str | None
    # Decided by the steps before the insert (retention: when it may be deleted, under which
    # policy version); None means "keep until a policy says otherwise".
    retain_until: datetime | None = None
    policy_version: int | None = None


class IngestStep:
    """One thing ingest does besides storing the conversation (retention, the index outbox, …).

    The composition root wires the steps in order (``Runtime.ingest_steps``). ``before_insert``
    and ``after_insert`` run inside the ingest transaction, so a step's rows commit with the
    conversation or not at all.
    """

    async def before_insert(self, rt: Runtime, tenant_id: UUID, items: list[Prepared]) -> None:
        """Decide values stored on the conversation row itself."""

    async def after_insert(self, rt: Runtime, tenant_id: UUID, items: list[Prepared]) -> None:
        """Write what refers to the stored conversations."""


def parse_body(body: bytes, settings: Any) -> tuple[list[ConversationIn], bool]:
    """Decode a single conversation or ``{"conversations": [...]}``; returns (items, is_batch).
    Every structural problem is reported at once, with its path."""
    if len(body) > settings.max_body_bytes:
        raise TooLarge(f"request body is larger than {settings.max_body_bytes} bytes", [FieldError("$", "body too large")])
    raw = decode_json(body)
    if not isinstance(raw, dict):
        raise InvalidInput("expected a JSON object", [FieldError("$", "expected a conversation object or {\"conversations\": [...]}")])
    if "conversations" in raw:
        items = raw["conversations"]
        if isinstance(items, list) and len(items) > settings.max_batch:
            raise TooLarge(
                f"a batch holds at most {settings.max_batch} conversations, got {len(items)}",
                [FieldError("conversations", f"at most {settings.max_batch} items")],
            )
        if isinstance(items, list) and not items:
            raise InvalidInput("the batch is empty", [FieldError("conversations", "at least one conversation")])
        return convert(raw, BatchIn, "the batch is invalid; nothing was stored").conversations, True
    return [convert(raw, ConversationIn, "the conversation is invalid; nothing was stored")], False


def check_conversation(conv: ConversationIn, settings: Any, now: datetime, path: str) -> list[FieldError]:
    """Rules a type cannot express: limits, emptiness, and timestamps that make sense."""
    errors: list[FieldError] = []
    skew = timedelta(seconds=settings.clock_skew_seconds)
    if not conv.messages:
        errors.append(FieldError(f"{path}messages", "a conversation needs at least one message"))
    if len(conv.messages) > settings.max_messages:
        errors.append(FieldError(f"{path}messages", f"at most {settings.max_messages} messages per conversation"))
    if conv.ended_at < conv.started_at:
        errors.append(FieldError(f"{path}ended_at", "ended_at is before started_at"))
    for name, value in (("started_at", conv.started_at), ("ended_at", conv.ended_at)):
        if value > now + skew:
            errors.append(FieldError(f"{path}{name}", "is in the future"))
    for i, message in enumerate(conv.messages[: settings.max_messages]):
        where = f"{path}messages[{i}]"
        if not message.text.strip():
            errors.append(FieldError(f"{where}.text", "must not be empty"))
        elif len(message.text) > settings.max_message_chars:
            errors.append(FieldError(f"{where}.text", f"at most {settings.max_message_chars} characters"))
        if message.at < conv.started_at - skew or message.at > conv.ended_at + skew:
            errors.append(FieldError(f"{where}.at", "lies outside the conversation's started_at..ended_at"))
        elif message.at > now + skew:
            errors.append(FieldError(f"{where}.at", "is in the future"))
    for key, value in conv.metadata.items():
        if not isinstance(value, (str, int, float, bool)) and value is not None:
            errors.append(FieldError(f"{path}metadata.{key}", "metadata is a flat map: values are strings, numbers, booleans or null"))
        elif isinstance(value, str) and len(value) > 1000:
            errors.append(FieldError(f"{path}metadata.{key}", "metadata values are at most 1000 characters"))
    return errors


def canonical(value: Any) -> bytes:
    return msgspec.json.encode(value, order="sorted")


def prepare(ctx: TenantContext, conv: ConversationIn) -> Prepared:
    # The whole conversation at once: a number split over two messages of one author is found.
    lines = [ChatLine(f"{m.sender.role}:{m.sender.id or ''}", m.at, m.text) for m in conv.messages]
    redacted = redact_conversation(lines, ctx.redaction, conv.language)
    redactor = Redactor(ctx.redaction, conv.language)
    metadata = {k: redactor.redact(v) if isinstance(v, str) else v for k, v in conv.metadata.items()}
    counts = Counter(redacted.counts) + redactor.counts
    stored = StoredConversation(
        external_id=conv.external_id,
        site=conv.site,
        channel=conv.channel,
        language=conv.language,
        started_at=conv.started_at.astimezone(timezone.utc),
        ended_at=conv.ended_at.astimezone(timezone.utc),
        visitor=conv.visitor,
        agents=conv.agents,
        tags=sorted(set(conv.tags)),
        metadata=metadata,
        messages=[
            msgspec.structs.replace(m, text=text, at=m.at.astimezone(timezone.utc))
            for m, text in zip(conv.messages, redacted.texts, strict=True)
        ],
    )
    body = canonical(stored)
    conversation_id = uuid4()
    sealed = ctx.crypto.seal(conversation_id, body)
    email = conv.visitor.email.strip().lower() if conv.visitor.email else None
    return Prepared(
        id=conversation_id,
        external_id=conv.external_id,
        stored=stored,
        content_sha256=hashlib.sha256(body).hexdigest(),
        submission_mac=ctx.crypto.mac(canonical(conv)),
        ciphertext=sealed.ciphertext,
        wrapped_key=sealed.wrapped_key,
        master_version=sealed.master_version,
        redactions=dict(sorted(counts.items())),
        visitor_hash=ctx.crypto.identity_hash(conv.visitor.id),
        visitor_email_hash=ctx.crypto.identity_hash(email) if email else None,
    )


def _is_unique_violation(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.IntegrityError):
        return "UNIQUE" in str(exc)
    return type(exc).__name__ == "UniqueViolationError"


def prepare_all(ctx: TenantContext, items: list[ConversationIn]) -> list[Prepared]:
    return [prepare(ctx, conv) for conv in items]


async def ingest(
    rt: Runtime, principal: Principal, items: list[ConversationIn], batch: bool = False, body_bytes: int = 0
) -> list[IngestResult]:
    """Validate, redact, encrypt and store conversations atomically; see the module docstring."""
    now = rt.clock.now()
    errors: list[FieldError] = []
    for index, conv in enumerate(items):
        errors.extend(check_conversation(conv, rt.settings, now, f"conversations[{index}]." if batch else ""))
    seen: dict[str, int] = {}
    for index, conv in enumerate(items):
        if conv.external_id in seen and batch:
            errors.append(FieldError(f"conversations[{index}].external_id", f"repeats conversations[{seen[conv.external_id]}]"))
        seen.setdefault(conv.external_id, index)
    if errors:
        raise InvalidInput("the request is invalid; nothing was stored", errors)
    ctx = await rt.tenants.context(principal.tenant_id)
    if body_bytes > OFF_LOOP_BYTES:
        prepared = await rt.workers.run(prepare_all, ctx, items)
    else:
        prepared = prepare_all(ctx, items)
    for attempt in range(INSERT_RETRIES):
        try:
            return await _store(rt, principal, prepared, batch)
        except Exception as exc:  # a concurrent ingest of the same external_id won the race
            if not _is_unique_violation(exc) or attempt == INSERT_RETRIES - 1:
                raise
    raise AssertionError("unreachable")


async def _store(rt: Runtime, principal: Principal, prepared: list[Prepared], batch: bool) -> list[IngestResult]:
    tenant_id = principal.tenant_id
    async with db.write_transaction():
        existing = {
            row["external_id"]: row
            for row in await Conversation.select(
                Conversation.id, Conversation.external_id, Conversation.submission_mac,
                Conversation.content_sha256, Conversation.redactions,
            ).where((Conversation.tenant == tenant_id) & Conversation.external_id.is_in([p.external_id for p in prepared]))
        }
        results: list[IngestResult] = []
        new: list[Prepared] = []
        for index, item in enumerate(prepared):
            row = existing.get(item.external_id)
            if row is None:
                new.append(item)
                results.append(IngestResult(item.id, item.external_id, "created", item.content_sha256, item.redactions))
            elif row["submission_mac"] == item.submission_mac:
                redactions = row["redactions"]
                results.append(
                    IngestResult(
                        row["id"], item.external_id, "existing", row["content_sha256"],
                        json_column(redactions),
                    )
                )
            else:
                where = f"conversations[{index}].external_id" if batch else "external_id"
                raise Conflict(
                    f"external_id {item.external_id!r} is already archived with different content; "
                    "archived conversations are immutable — send it under a new external_id",
                    field=where, existing_id=str(row["id"]),
                )
        if new:
            for step in rt.ingest_steps:
                await step.before_insert(rt, tenant_id, new)
            await Conversation.insert(*[_row(tenant_id, p) for p in new])
            await ConversationKey.insert(
                *[ConversationKey(conversation=p.id, tenant=tenant_id, wrapped_key=p.wrapped_key, master_version=p.master_version) for p in new]
            )
            await ledger.append(
                tenant_id,
                *[
                    ledger.Entry(
                        actor=principal.actor, action="ingest", subject=str(p.id), content_hash=p.content_sha256,
                        details={"external_id": p.external_id, "messages": len(p.stored.messages), "redactions": p.redactions},
                    )
                    for p in new
                ],
            )
            for step in rt.ingest_steps:
                await step.after_insert(rt, tenant_id, new)
    return results


def _row(tenant_id: UUID, p: Prepared) -> Conversation:
    s = p.stored
    return Conversation(
        id=p.id,
        tenant=tenant_id,
        external_id=p.external_id,
        site=s.site,
        channel=s.channel,
        language=s.language,
        started_at=s.started_at,
        ended_at=s.ended_at,
        visitor_hash=p.visitor_hash,
        visitor_email_hash=p.visitor_email_hash,
        agent_ids=json.dumps(sorted({a.id for a in s.agents})),
        tags=json.dumps(s.tags),
        message_count=len(s.messages),
        content_sha256=p.content_sha256,
        submission_mac=p.submission_mac,
        ciphertext=p.ciphertext,
        redactions=json.dumps(p.redactions),
        retain_until=p.retain_until,
        policy_version=p.policy_version,
    )


async def ingest_body(rt: Runtime, principal: Principal, body: bytes) -> tuple[list[IngestResult], bool]:
    items, is_batch = parse_body(body, rt.settings)
    return await ingest(rt, principal, items, is_batch, body_bytes=len(body)), is_batch
