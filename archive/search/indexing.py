"""Getting conversations into the index: documents, the durable outbox, the drain job, rebuilds.

The outbox row is written in the ingest transaction (``OutboxStep``, one of the ingest steps), so
an index outage can neither lose nor block an ingest: the drain job retries with exponential
backoff, and the index catches up when it is back. ``/readyz`` reports the lag. Decrypting and
analysing what is drained runs in a worker thread, off the event loop.
"""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any, AsyncIterator, Callable, Iterable
from uuid import UUID

import msgspec
import structlog
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from archive import db, ingest
from archive.analysis import Analyzer, WordTokens, primary_language
from archive.crypto import DecryptionError
from archive.db import keyset_pages
from archive.jobs import JobSpec
from archive.models import StoredConversation
from archive.runtime import Runtime
from archive.search.backend import IndexDoc, SearchBackend
from archive.search.plan import SENDERS
from archive.tables import Conversation, ConversationKey, IndexOutbox
from archive.tenancy import TenantContext, tenant_context
from config.settings import Settings

log = structlog.get_logger(__name__)

DRAIN_BATCH = 1000  # conversations per index commit
MAX_BACKOFF_SECONDS = 300


def make_backend(s: Settings) -> SearchBackend:
    """The index backend the settings name (the runtime holds the one instance)."""
    if s.search_backend == "opensearch":
        from archive.search.opensearch import OpenSearchBackend

        return OpenSearchBackend(
            s.opensearch_url, s.opensearch_index_prefix, s.opensearch_username, s.opensearch_password,
            s.opensearch_verify_certs, s.opensearch_ca_certs,
        )
    from archive.search.sqlite_fts import SqliteFtsBackend

    return SqliteFtsBackend(s.data_path / "search.sqlite3")


def analyzer(ctx: TenantContext) -> Analyzer:
    return ctx.analyzer


def document_language(stored: StoredConversation, ctx: TenantContext) -> str:
    return primary_language(stored.language) or primary_language(ctx.settings.default_languages[0] if ctx.settings.default_languages else "")


class Columns(msgspec.Struct):
    """A conversation's index columns: positional terms per sender (``t_*``), the bag per sender
    (``f_*``: prefix paths, exact spellings, typing keys), and each term's typo neighbourhood."""

    columns: dict[str, str]
    typos: dict[str, tuple[str, ...]]


def document_columns(an: Analyzer, messages: Iterable[tuple[str, str]], language: str) -> Columns:
    """(sender role, text) pairs → the index columns, with a boundary token between messages.
    One analysis per word (cached across messages and conversations)."""
    text: dict[str, list[str]] = {s: [] for s in SENDERS}
    bags: dict[str, set[WordTokens]] = {s: set() for s in SENDERS}
    boundary = an.boundary()
    for role, message in messages:
        analyzed = an.analyze(message, language)
        terms = text[role]
        if terms:
            terms.append(boundary)
        terms.extend([w.term for w in analyzed])
        bags[role].update(analyzed)
    columns = {f"t_{s}": " ".join(text[s]) for s in SENDERS}
    columns.update({f"f_{s}": " ".join(sorted({w.path for w in bags[s] if w.path} | {t for w in bags[s] for t in w.bag})) for s in SENDERS})
    typos = {w.term: w.typos for bag in bags.values() for w in bag if w.typos}
    return Columns(columns, typos)


def build_document(ctx: TenantContext, conversation_id: UUID, stored: StoredConversation, visitor_hash: str) -> IndexDoc:
    language = document_language(stored, ctx)
    # File names are searchable as words of their message; file contents are not indexed.
    messages = (
        (m.sender.role, " ".join([m.text, *(a.name for a in m.attachments if a.name)]) if m.attachments else m.text)
        for m in stored.messages
    )
    analysed = document_columns(analyzer(ctx), messages, language)
    return IndexDoc(
        conversation_id=conversation_id, tenant_id=ctx.tenant_id, site=stored.site, channel=stored.channel,
        language=(stored.language or language or "und").lower(), started_at=stored.started_at,
        agent_ids=sorted({a.id for a in stored.agents}), tags=stored.tags, visitor_hash=visitor_hash,
        columns=analysed.columns, typos=analysed.typos,
    )


_OUTBOX_COLUMNS = ("tenant", "conversation", "op", "attempts", "next_attempt_at", "last_error", "created_at")


async def _enqueue(tenant_id: UUID, conversation_ids: list[UUID], op: str) -> None:
    """Outbox rows as explicit SQL (a hot write path: one row per conversation ingested), one
    prepared statement for all rows, due at once (the wall clock, as the columns' defaults)."""
    now = datetime.now(timezone.utc)
    await db.insert_many("index_outbox", _OUTBOX_COLUMNS, [(tenant_id, c, op, 0, now, "", now) for c in conversation_ids])


class OutboxStep(ingest.IngestStep):
    """Every ingested conversation is queued for indexing in the ingest transaction."""

    async def after_insert(self, rt: Runtime, tenant_id: UUID, items: list[ingest.Prepared]) -> None:
        await _enqueue(tenant_id, [p.id for p in items], "upsert")


async def enqueue_deletes(tenant_id: UUID, conversation_ids: list[UUID]) -> None:
    """Called by retention and erasure inside their delete transactions."""
    if conversation_ids:
        await _enqueue(tenant_id, conversation_ids, "delete")



class Loaded(msgspec.Struct):
    docs: list[IndexDoc]
    vanished: list[UUID]  # deleted since: remove from the index
    broken: list[UUID]  # do not decrypt (a tampered row): left in the outbox, reported


async def _load_documents(rt: Runtime, tenant_id: UUID, ids: list[UUID]) -> Loaded:
    """Documents for conversations that still exist, and what became of the others."""
    ctx = await tenant_context(rt, tenant_id)
    rows = await Conversation.select(Conversation.id, Conversation.ciphertext, Conversation.visitor_hash).where(
        (Conversation.tenant == tenant_id) & Conversation.id.is_in(ids)
    )
    keys = {
        k["conversation"]: k
        for k in await ConversationKey.select().where((ConversationKey.tenant == tenant_id) & ConversationKey.conversation.is_in(ids))
    }
    pairs = [(row, keys[row["id"]]) for row in rows if row["id"] in keys]
    docs, broken = await rt.workers.run(_analyse, ctx, pairs)
    found = {row["id"] for row, _ in pairs}
    return Loaded(docs=docs, vanished=[i for i in ids if i not in found], broken=broken)


def _analyse(ctx: TenantContext, pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> tuple[list[IndexDoc], list[UUID]]:
    """Decrypt and analyse (CPU only: runs in a worker thread)."""
    docs, broken = [], []
    for row, key in pairs:
        try:
            plaintext = ctx.crypto.open(row["id"], row["ciphertext"], key["wrapped_key"], key["master_version"])
        except DecryptionError:
            log.error("index_conversation_unreadable", conversation=str(row["id"]))
            broken.append(row["id"])
            continue
        stored = msgspec.json.decode(plaintext, type=StoredConversation)
        docs.append(build_document(ctx, row["id"], stored, row["visitor_hash"]))
    return docs, broken


class DrainReport(msgspec.Struct):
    indexed: int = 0
    deleted: int = 0
    failed: int = 0


async def drain(rt: Runtime, limit: int = DRAIN_BATCH, refresh: bool = False) -> DrainReport:
    """Apply due outbox rows to the index; on failure, back off exponentially per row."""
    now = rt.clock.now()
    rows = await IndexOutbox.select().where(IndexOutbox.next_attempt_at <= now).order_by(IndexOutbox.id).limit(limit)
    report = DrainReport()
    if not rows:
        return report
    index = rt.search
    by_tenant: dict[UUID, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_tenant[row["tenant"]].append(row)
    done: list[int] = []
    for tenant_id, items in by_tenant.items():
        try:
            upserts = list(dict.fromkeys(r["conversation"] for r in items if r["op"] == "upsert"))
            deletes = list(dict.fromkeys(r["conversation"] for r in items if r["op"] == "delete"))
            loaded = await _load_documents(rt, tenant_id, upserts) if upserts else Loaded([], [], [])
            await index.index(loaded.docs)
            await index.delete(tenant_id, deletes + loaded.vanished)
            report.indexed += len(loaded.docs)
            report.deleted += len(deletes) + len(loaded.vanished)
            broken = set(loaded.broken)
            done.extend(r["id"] for r in items if r["conversation"] not in broken)
            failed = [r for r in items if r["conversation"] in broken]
            error = "DecryptionError"
        except Exception as exc:  # the index is down or rejected the batch: retry later
            log.warning("index_drain_failed", tenant=str(tenant_id), rows=len(items), error=type(exc).__name__)
            failed, error = items, type(exc).__name__
        report.failed += len(failed)
        for r in failed:
            delay = min(2 ** r["attempts"], MAX_BACKOFF_SECONDS)
            await IndexOutbox.update(
                {IndexOutbox.attempts: r["attempts"] + 1, IndexOutbox.next_attempt_at: now + timedelta(seconds=delay),
                 IndexOutbox.last_error: error[:200]}
            ).where(IndexOutbox.id == r["id"])
    if done:
        await IndexOutbox.delete().where(IndexOutbox.id.is_in(done))
    if refresh:
        await index.refresh()
    return report


async def drain_all(rt: Runtime, refresh: bool = True) -> DrainReport:
    """Drain until nothing is due (tests, rebuild, and the CLI)."""
    total = DrainReport()
    while True:
        report = await drain(rt)
        total.indexed += report.indexed
        total.deleted += report.deleted
        total.failed += report.failed
        if report.indexed + report.deleted == 0:
            break
    await _compact_if_due(rt, total)
    if refresh:
        await rt.search.refresh()
    return total


async def _compact_if_due(rt: Runtime, last: DrainReport) -> None:
    """After a drain that left nothing due: compact if a bulk load was just drained
    (``SearchBackend.compaction_due``). In the drain's own turn, so no drain waits for it."""
    if last.failed == 0 and await rt.search.compaction_due():
        await compact(rt)


class Lag(msgspec.Struct):
    pending: int
    oldest_seconds: float


async def lag(rt: Runtime) -> Lag:
    pending = await IndexOutbox.count()
    oldest = await IndexOutbox.select(IndexOutbox.created_at).order_by(IndexOutbox.id).first()
    age = (rt.clock.now() - oldest["created_at"]).total_seconds() if oldest else 0.0
    return Lag(pending=pending, oldest_seconds=round(age, 1))


async def rebuild(rt: Runtime, progress: Callable[[int, int], None] | None = None, batch: int = DRAIN_BATCH) -> int:
    """Recreate the index from the store, streaming conversations in id order."""
    index = rt.search
    await index.reset()
    total = await Conversation.count()
    done = 0
    started = time.monotonic()
    async for tenant_id, ids in _conversation_pages(batch):
        await index.index((await _load_documents(rt, tenant_id, ids)).docs)
        done += len(ids)
        if progress:
            progress(done, total)
    await index.refresh()
    log.info("index_rebuilt", conversations=done, seconds=round(time.monotonic() - started, 1))
    await compact(rt)  # written in batches, the index is in many segments: one pass merges them
    return done


async def compact(rt: Runtime) -> dict[str, Any]:
    """Merge the index's segments and return the space they free (nightly job ``search.compact``,
    ``parley index compact``, and after a rebuild). Deletes (retention, erasure) leave entries
    in the index until their segment is merged, and drains leave many small segments: on the
    benchmark corpus a pass takes 3 s per million messages and shrinks the index by ~13 %."""
    report = await rt.search.compact()
    result = {"bytes_before": report.bytes_before, "bytes_after": report.bytes_after, "seconds": report.seconds}
    log.info("index_compacted", backend=rt.search.name, detail=report.detail, **result)
    return result


async def _conversation_pages(batch: int) -> AsyncIterator[tuple[UUID, list[UUID]]]:
    async for rows in keyset_pages(lambda: Conversation.select(Conversation.id, Conversation.tenant), Conversation.id, batch):
        by_tenant: dict[UUID, list[UUID]] = defaultdict(list)
        for r in rows:
            by_tenant[r["tenant"]].append(r["id"])
        for tenant_id, ids in by_tenant.items():
            yield tenant_id, ids


async def drain_outbox(rt: Runtime) -> dict[str, int] | None:
    report = await drain(rt)
    if report.indexed + report.deleted + report.failed < DRAIN_BATCH:  # nothing more due now
        await _compact_if_due(rt, report)
    return msgspec.structs.asdict(report) if report.indexed or report.deleted or report.failed else None


def jobs() -> list[JobSpec]:
    return [
        JobSpec("search.outbox", drain_outbox, lambda rt: IntervalTrigger(seconds=1)),
        JobSpec("search.compact", compact, lambda rt: CronTrigger.from_crontab(rt.settings.index_compact_cron, timezone="UTC")),
    ]
