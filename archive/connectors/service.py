"""A push, from the wire to the archive; and the queued work that needs the network.

``receive`` is what ``POST /v1/connectors/{id}/events`` calls. In order:

1. authenticate with the platform's own scheme — a refusal is counted by reason and answered 401;
2. parse — nothing to archive (a typing event, a test ping) is counted and answered 200;
3. store the effect and the delivery key **in one transaction**: a retried delivery finds its key
   and changes nothing (answered 200 ``duplicate``), whatever it would have done;
4. what is stored depends on the outcome: a pending piece is kept as a sealed draft under its
   thread; a finished conversation, or a close that needs no network, is archived right away
   (ingest with revisions: a conversation reopened and closed again becomes its next revision);
   a close that must fetch the conversation back, or a conversation whose files are to be
   fetched, is queued (202) for ``run_jobs``.

Why queue fetch-back instead of answering 502 until the platform API responds (see
docs/connectors.md): a fetch can take up to its timeout per call and Chatwoot pages 20 messages
at a time, longer than platforms wait for a webhook answer (a few seconds); a platform that sees
failures retries with its own schedule or — Intercom — suspends the webhook; and a rate-limited
API (429) needs backing off, which a retry storm does not do. A queued close is durable the
moment it is answered, and ``run_jobs`` retries with exponential backoff for a day before it
gives the close up as failed (counted in the stats).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from uuid import UUID

import httpx
import msgspec
import structlog
from apscheduler.triggers.interval import IntervalTrigger

from archive import db, ingest, revisions, transcripts
from archive.attachments import FetchedFile
from archive.connectors import ADAPTERS, authenticate, complete, delivery_key, parse
from archive.connectors import store as connector_store
from archive.connectors.api import api_client
from archive.connectors.assemble import SKIPPED_COUNT, SKIPPED_IDS, assemble
from archive.connectors.errors import FetchFailed, FetchNotConfigured, PayloadInvalid, PayloadMalformed, SignatureRejected
from archive.connectors.files import fetch_files, fetchable
from archive.connectors.outcomes import Close, Draft, Finished, Ignored, Inherit, Outcome, Pending
from archive.connectors.push import Push
from archive.connectors.store import Duplicate, Loaded, Thread
from archive.errors import Conflict, DomainError, NotFound
from archive.jobs import JobSpec
from archive.models import ConversationIn, IngestResult, StoredConversation
from archive.tables import ConnectorJob

if TYPE_CHECKING:
    from archive.runtime import Runtime
    from archive.tenancy import TenantContext

log = structlog.get_logger(__name__)

JOB_BATCH = 20
MAX_ATTEMPTS = 12  # 30 s doubling to an hour: about a day of retries
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
CLAIM_SECONDS = 600  # a job being worked on is not due again for this long (a crashed worker's job comes back)


class Submitter(msgspec.Struct, frozen=True):
    """A connector archiving: the ledger names it as the actor."""

    tenant_id: UUID
    connector_id: UUID

    @property
    def actor(self) -> str:
        return f"connector:{self.connector_id}"


class Receipt(msgspec.Struct, omit_defaults=True, kw_only=True):
    """What a push became. ``status``: ``archived`` (with the conversation and its revision),
    ``pending`` (kept until the conversation closes), ``queued`` (the job that completes it),
    ``duplicate`` (stored before) or ``ignored`` (with why)."""

    status: Literal["archived", "pending", "queued", "duplicate", "ignored"]
    conversation: UUID | None = None
    revision: int | None = None
    result: Literal["created", "existing", "revised"] | None = None
    job: UUID | None = None
    reason: str | None = None


# What each receipt answers: 201 when a conversation (or a new revision) was archived, 202 when
# the push was kept for later (a pending piece, queued work), 200 when nothing new was stored.
STATUS = {"pending": 202, "queued": 202, "duplicate": 200, "ignored": 200}


def http_status(receipt: Receipt, platform: str) -> int:
    """The status a receipt is answered with. A platform that counts only one status as
    delivered (Rocket.Chat: 200) gets that one for every receipt; the body says what happened."""
    delivered = ADAPTERS[platform].delivered_status
    if delivered is not None:
        return delivered
    return STATUS.get(receipt.status) or (200 if receipt.result == "existing" else 201)


async def answer(
    rt: Runtime, connector_id: UUID, body: bytes, headers: Mapping[str, str], query: Mapping[str, str] | None = None
) -> tuple[Receipt, int]:
    """A push's receipt and the HTTP status it is answered with (``http_status``); ``query``: the
    webhook URL's query parameters."""
    connector = await connector_store.load(rt, connector_id)
    receipt = await _receive(rt, connector, Push.of(body, headers, query))
    return receipt, http_status(receipt, connector.config.platform)


async def _receive(rt: Runtime, connector: Loaded, push: Push) -> Receipt:
    now = rt.clock.now()
    try:
        authenticate(push, connector.config, now)
    except SignatureRejected as exc:
        await connector_store.bump(connector.id, now, f"rejected.{exc.reason}")
        log.info("connector_push_rejected", connector=str(connector.id), reason=exc.reason)
        raise
    key = delivery_key(push, connector.config)
    try:
        outcome = parse(push, connector.config)
    except (PayloadMalformed, PayloadInvalid) as exc:
        await connector_store.bump(connector.id, now, f"rejected.{exc.reason}")
        raise
    ctx = await rt.tenants.context(connector.tenant_id)
    try:
        for attempt in range(ingest.INSERT_RETRIES):
            try:
                return await _handle(rt, ctx, connector, outcome, key, now)
            except Exception as exc:  # two pieces of one thread raced (to reserve it, or to revise it): the loser goes again
                raced = ingest.is_unique_violation(exc) or isinstance(exc, _DraftsChanged)
                if not raced or attempt == ingest.INSERT_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")
    except Duplicate:
        await connector_store.bump(connector.id, now, "duplicate")
        return Receipt(status="duplicate")
    except DomainError as exc:
        await connector_store.bump(connector.id, now, f"rejected.{_reason(exc)}")
        raise


class _DraftsChanged(Exception):
    """Another piece of the thread was kept while this one's revision was assembled."""


def _reason(exc: DomainError) -> str:
    if isinstance(exc, Conflict):
        return "conflict"
    return str(getattr(exc, "reason", None) or "invalid")


async def _handle(rt: Runtime, ctx: TenantContext, connector: Loaded, outcome: Outcome, key: str, now: datetime) -> Receipt:
    if isinstance(outcome, Ignored):
        await connector_store.bump(connector.id, now, "ignored")
        return Receipt(status="ignored", reason=outcome.reason)
    if isinstance(outcome, Pending):
        if (late := await _late(ctx, connector, outcome)) is not None:
            thread, conversation, assembled_from = late
            if connector.files.fetch and fetchable(conversation):
                _valid(rt, conversation, now)
                async with db.write_transaction():
                    await _keep_late(ctx, connector, thread, outcome.draft, assembled_from, now)
                    job = await connector_store.queue(ctx, connector.id, thread, Finished(conversation), now)
                    await connector_store.record_delivery(connector.id, key, now, "queued")
                return Receipt(status="queued", conversation=thread.conversation, job=job)
            return await _archive(rt, connector, conversation, thread, key, now, keep=(ctx, outcome.draft, assembled_from))
        async with db.write_transaction():
            thread = await connector_store.ensure_thread(ctx, connector.id, outcome.thread, outcome.draft.external_id, now)
            # ensure_thread locked the thread's row: a close archiving it meanwhile has committed
            # (seen now: the piece is late after all, and goes again) or counts this piece.
            if await _late(ctx, connector, outcome) is not None:
                raise _DraftsChanged()
            await connector_store.keep_draft(ctx, connector.id, thread, outcome.draft, now)
            await connector_store.record_delivery(connector.id, key, now, "pending")
        return Receipt(status="pending", conversation=thread.conversation)
    if isinstance(outcome, Finished):
        conversation, thread_name = outcome.conversation, outcome.conversation.external_id
        if outcome.inherit is not None:
            conversation = await _inherited(ctx, conversation, outcome.inherit)
            outcome = Finished(conversation)
        if connector.files.fetch and fetchable(conversation):
            _valid(rt, conversation, now)
            return await _queue(ctx, connector, thread_name, conversation.external_id, outcome, key, now)
        return await _archive(rt, connector, conversation, None, key, now)
    if outcome.fetch is not None:
        return await _queue(ctx, connector, outcome.thread, outcome.draft.external_id, outcome, key, now)
    known = await connector_store.find_thread(ctx.tenant_id, connector.id, outcome.thread)
    pieces = await connector_store.drafts(ctx, connector.id, known)
    conversation = await complete(outcome, pieces, connector.config)
    if connector.files.fetch and fetchable(conversation):
        _valid(rt, conversation, now)
        return await _queue(ctx, connector, outcome.thread, outcome.draft.external_id, outcome, key, now)
    return await _archive(rt, connector, conversation, known, key, now, assembled_from=len(pieces))


async def _late(ctx: TenantContext, connector: Loaded, outcome: Pending) -> tuple[Thread, ConversationIn, int] | None:
    """A piece of a conversation archived without fetch-back, dated no later than that archive's
    close, was delivered after the close: Chatwoot's webhooks go out through Sidekiq jobs in any
    order, so the agent's last message can arrive after the resolve. Kept pending, it would be
    missing from the archive until a resolve that may never come; instead the next revision is
    assembled now, as the close would have assembled it had the piece come in time: every pending
    piece, then the close's own facts (end time, labels, metadata, agents and its close event)
    from the archived revision. With API access the close's fetch-back read every message the
    platform had, so the piece waits like any other; so does an answer the platform asked for
    at the close (``wait_for_close``). Also returns how many stored pieces the revision was
    assembled from: if another piece was kept meanwhile (Chatwoot delivers concurrently), the
    transaction that stores this one sees it and the revision is assembled again, so the latest
    revision never lacks a piece. None: keep the piece pending."""
    config = connector.config
    if outcome.wait_for_close or config.fetches_back:
        return None
    archived_end = await connector_store.archived_end(ctx.tenant_id, outcome.draft.external_id)
    if archived_end is None:
        return None
    archived_id, ended_at = archived_end
    if not any(message.at <= ended_at for message in outcome.draft.messages):
        return None  # written after the close: the conversation was reopened, and waits for its next resolve
    thread = await connector_store.find_thread(ctx.tenant_id, connector.id, outcome.thread)
    if thread is None or thread.conversation != archived_id:
        return None
    try:
        _, archived = await transcripts.load(ctx, archived_id)
    except NotFound:  # erased meanwhile: the piece starts again
        return None
    stored = await connector_store.drafts(ctx, connector.id, thread)
    pending = [*stored, outcome.draft]
    return thread, assemble([*pending, _closed(archived, {m.id for d in pending for m in d.messages if m.id})], config), len(stored)


async def _keep_late(ctx: TenantContext, connector: Loaded, thread: Thread, draft: Draft, assembled_from: int, now: datetime) -> None:
    """Keep a late piece as the thread's draft, inside the transaction that archives (or queues)
    the revision assembled from ``assembled_from`` stored pieces; _DraftsChanged if another piece
    was kept meanwhile (the revision is then assembled again)."""
    await _unchanged(connector, thread, assembled_from, now)
    await connector_store.keep_draft(ctx, connector.id, thread, draft, now)


async def _unchanged(connector: Loaded, thread: Thread, assembled_from: int, now: datetime) -> None:
    """Inside the transaction that archives a revision assembled from ``assembled_from`` stored
    pieces: lock the thread's row (every transaction that keeps a piece locks it first), then
    _DraftsChanged if a piece was kept since — Chatwoot delivers a thread's webhooks concurrently,
    and a piece kept while its close was being archived would otherwise wait for a close that
    never comes."""
    await connector_store.lock_thread(connector.id, thread, now)
    if await connector_store.draft_count(connector.id, thread) != assembled_from:
        raise _DraftsChanged()


def _closed(archived: StoredConversation, pieces: set[str]) -> Draft:
    """What the close contributed to an archived revision, as a draft: its facts, its close event
    and the messages it carried that no piece did (``pieces``: the ids the pieces bring again),
    without the counts ``assemble`` makes afresh."""
    return Draft(
        external_id=archived.external_id, site=archived.site, channel=archived.channel, language=archived.language,
        started_at=archived.started_at, ended_at=archived.ended_at, agents=list(archived.agents), tags=list(archived.tags),
        metadata={k: v for k, v in archived.metadata.items() if k not in (SKIPPED_COUNT, SKIPPED_IDS)},
        messages=[m for m in archived.messages if (m.id is None and m.kind == "event") or (m.id is not None and m.id not in pieces)],
    )


async def _inherited(ctx: TenantContext, conversation: ConversationIn, inherit: Inherit) -> ConversationIn:
    """``conversation`` with what ``inherit`` names taken from the one archived under its
    external_id (its latest revision), where the push did not say it."""
    archived_id = await connector_store.archived_id(ctx.tenant_id, conversation.external_id)
    if archived_id is None:
        return conversation
    try:
        _, archived = await transcripts.load(ctx, archived_id)
    except NotFound:  # erased meanwhile: nothing to take
        return conversation
    metadata = dict(conversation.metadata)
    for name in inherit.metadata:
        if name not in metadata and name in archived.metadata:
            metadata[name] = archived.metadata[name]
    agents = conversation.agents
    if inherit.first_agent and archived.agents and all(a.id != archived.agents[0].id for a in agents):
        agents = [archived.agents[0], *agents]
    ended = max(conversation.ended_at, archived.ended_at) if inherit.ended_at else conversation.ended_at
    return msgspec.structs.replace(conversation, metadata=metadata, agents=agents, ended_at=ended)


def _valid(rt: Runtime, conversation: ConversationIn, now: datetime) -> None:
    """Before a 202 for work the job will finish: a 2xx means the conversation will be archived,
    so one ingest would refuse is refused now, while the platform can still be told."""
    if errors := ingest.check_conversation(conversation, rt.settings, now, "", limit_message_chars=False):
        raise PayloadInvalid("the push does not make a valid conversation; nothing was stored", errors)


async def _queue(
    ctx: TenantContext, connector: Loaded, thread_name: str, external_id: str, outcome: Outcome, key: str, now: datetime
) -> Receipt:
    async with db.write_transaction():
        thread = await connector_store.ensure_thread(ctx, connector.id, thread_name, external_id, now)
        job = await connector_store.queue(ctx, connector.id, thread, outcome, now)
        await connector_store.record_delivery(connector.id, key, now, "queued")
    return Receipt(status="queued", conversation=thread.conversation, job=job)


async def _archive(
    rt: Runtime, connector: Loaded, conversation: ConversationIn, thread: Thread | None, key: str | None, now: datetime,
    files: list[FetchedFile] | None = None, job: UUID | None = None, keep: tuple[TenantContext, Draft, int] | None = None,
    assembled_from: int | None = None,
) -> Receipt:
    """Ingest the finished conversation as the connector (revising what it archived before);
    the delivery (or the queued job's completion) commits in the same transaction, and so does
    ``keep``: a piece kept as the thread's draft, with how many drafts the conversation was
    assembled from (_DraftsChanged when another was kept meanwhile); ``assembled_from``: how many
    stored pieces a close was assembled from (the same check, for the close)."""

    async def within() -> None:
        if keep is not None and thread is not None:
            await _keep_late(keep[0], connector, thread, keep[1], keep[2], now)
        elif assembled_from is not None and thread is not None:
            await _unchanged(connector, thread, assembled_from, now)
        if key is not None:  # the delivery row is also what the stats count (no counter write here)
            await connector_store.record_delivery(connector.id, key, now, "archived")
        else:
            await connector_store.bump(connector.id, now, "archived")
        if job is not None:
            await ConnectorJob.delete().where(ConnectorJob.id == job)

    options = ingest.Options(
        on_conflict="revise", source=connector.id,
        reserved={conversation.external_id: thread.conversation} if thread else {},
        files={conversation.external_id: files} if files else {},
        limit_message_chars=False,  # the platform accepted the message: refusing it would lose it
    )
    size = sum(len(m.text) for m in conversation.messages)  # large transcripts are redacted off the event loop
    [result] = await ingest.ingest(
        rt, Submitter(connector.tenant_id, connector.id), [conversation], body_bytes=size, options=options, within=within
    )
    return _archived(result)


def _archived(result: IngestResult) -> Receipt:
    return Receipt(status="archived", conversation=result.id, revision=result.revision, result=result.status)


# --- queued work ---------------------------------------------------------------------------------


async def run_jobs(rt: Runtime, limit: int = JOB_BATCH, client: httpx.AsyncClient | None = None) -> int:
    """Complete due queued pushes: fetch back, fetch files, archive. Returns how many were done
    (archived or given up); failures are retried with backoff."""
    now = rt.clock.now()
    due = await ConnectorJob.select(ConnectorJob.id, ConnectorJob.next_attempt_at).where(
        (ConnectorJob.status == "queued") & (ConnectorJob.next_attempt_at <= now)
    ).order_by(ConnectorJob.next_attempt_at).limit(limit)
    if not due:
        return 0
    done = 0
    if client is None:
        async with api_client() as own:
            for row in due:
                done += await _run_one(rt, row, now, own)
    else:
        for row in due:
            done += await _run_one(rt, row, now, client)
    return done


async def _claim(row: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    """Take the job (another process running the same job sees it no longer due)."""
    claimed = await ConnectorJob.update({ConnectorJob.next_attempt_at: now + timedelta(seconds=CLAIM_SECONDS)}).where(
        (ConnectorJob.id == row["id"]) & (ConnectorJob.next_attempt_at == row["next_attempt_at"]) & (ConnectorJob.status == "queued")
    ).returning(*ConnectorJob.all_columns())
    return claimed[0] if claimed else None


async def _run_one(rt: Runtime, row: dict[str, Any], now: datetime, client: httpx.AsyncClient) -> int:
    job = await _claim(row, now)
    if job is None:
        return 0
    try:
        connector = await connector_store.load(rt, job["connector"])
    except DomainError:
        return 0  # the connector was deleted, and its work with it
    ctx = await rt.tenants.context(job["tenant"])
    key = await revisions.key_of(ctx.tenant_id, job["conversation"])
    if key is None:  # the conversation was erased meanwhile: its work went with it
        await ConnectorJob.delete().where(ConnectorJob.id == job["id"])
        return 1
    thread = Thread(job["conversation"], key["wrapped_key"], key["master_version"])
    outcome = connector_store.open_job(ctx, job, key)
    assembled_from = None
    try:
        if isinstance(outcome, Close):
            drafts = await connector_store.drafts(ctx, connector.id, thread)
            conversation = await complete(outcome, drafts, connector.config, client)
            if not connector.config.fetches_back:  # else the fetch-back read every piece
                assembled_from = len(drafts)
        elif isinstance(outcome, Finished):
            conversation = outcome.conversation
        else:
            raise PayloadInvalid(f"a queued {type(outcome).__name__} cannot be archived")
        files: list[FetchedFile] = []
        if connector.files.fetch:
            conversation, files, outcomes = await fetch_files(conversation, connector.config, connector.files, client)
            if outcomes:
                await connector_store.bump(connector.id, now, *_repeat(outcomes))
        await _archive(rt, connector, conversation, thread, None, now, files, job["id"], assembled_from=assembled_from)
        return 1
    except _DraftsChanged:
        return 0  # a piece was kept meanwhile: the job runs again, with it, when its claim lapses
    except FetchFailed as exc:
        await _retry_later(job, connector.id, now, exc.reason, exc.detail)
        return 0
    except (FetchNotConfigured, DomainError) as exc:
        await _give_up(job, connector.id, now, _reason(exc), exc.detail)
        return 1


def _repeat(outcomes: Counter[str]) -> list[str]:
    return [f"files.{name}" for name, count in outcomes.items() for _ in range(count)]


async def _retry_later(job: dict[str, Any], connector_id: UUID, now: datetime, reason: str, detail: str) -> None:
    attempts = job["attempts"] + 1
    if attempts >= MAX_ATTEMPTS:
        await _give_up(job, connector_id, now, reason, detail)
        return
    delay = min(FIRST_RETRY_SECONDS * 2 ** (attempts - 1), MAX_RETRY_SECONDS)
    await ConnectorJob.update({
        ConnectorJob.attempts: attempts, ConnectorJob.next_attempt_at: now + timedelta(seconds=delay),
        ConnectorJob.last_error: f"{reason}: {detail}"[:300],
    }).where(ConnectorJob.id == job["id"])
    log.warning("connector_fetch_retry", connector=str(connector_id), job=str(job["id"]), reason=reason, attempts=attempts)


async def _give_up(job: dict[str, Any], connector_id: UUID, now: datetime, reason: str, detail: str) -> None:
    async with db.write_transaction():
        await ConnectorJob.update({
            ConnectorJob.status: "failed", ConnectorJob.attempts: job["attempts"] + 1, ConnectorJob.last_error: f"{reason}: {detail}"[:300],
        }).where(ConnectorJob.id == job["id"])
        await connector_store.bump(connector_id, now, f"failed.{reason}")
    log.error("connector_job_failed", connector=str(connector_id), job=str(job["id"]), reason=reason)


async def work(rt: Runtime) -> int:
    return await run_jobs(rt)


async def expire(rt: Runtime) -> dict[str, int]:
    return await connector_store.expire(rt.clock.now())


def jobs() -> list[JobSpec]:
    return [
        JobSpec("connectors.work", work, lambda rt: IntervalTrigger(seconds=5)),
        JobSpec("connectors.expire", expire, lambda rt: IntervalTrigger(hours=1)),
    ]
