"""Rescan what is stored: apply today's detectors to conversations archived under older ones.

Better detectors must also fix the past. A rescan decrypts a tenant's stored conversations in
batches — the latest revision and every earlier one — and runs exactly the redaction ingest runs
(``ingest.redact_content``, with the tenant's current options). A conversation whose text changes
is rewritten in ONE transaction:

1. its data key row is locked and its rows re-read; if a revision arrived since the batch was
   planned, the conversation is planned again inside the transaction (never written from stale
   plaintext);
2. every piece is sealed again under a FRESH data key — the latest revision, each earlier
   revision, attachment files, pending connector drafts and jobs — and the key row is
   overwritten: the old data key is gone (crypto-shredding: a copy of the old ciphertext, in a
   backup say, stays sealed under a key that no longer exists anywhere but in older backups
   of the key table itself);
3. the index is told through the durable outbox (an ``upsert`` replaces the document, so the
   old tokens leave the index when the outbox drains);
4. one ledger entry records the rewrite: per-kind counts of what was newly masked, the previous
   and new content hashes, which revisions changed — never a value;
5. the run's progress (cursor, counters) is written in the same transaction.

A run killed half-way therefore resumes from its cursor with exact counters, and a conversation
rewritten before the kill is not rewritten again (its text no longer changes). One real rescan
per tenant at a time: the ``active`` column's unique index refuses a second one (409, naming the
running one), and the running process holds a lease (archive/leases.py) fenced in every batch
transaction, so a process that lost it cannot commit. A run whose process died (its lease is no
longer held) is resumed by the ``redaction.rescans`` job or by the next ``parley redaction rescan``.

Legal holds do not stop a rescan: a hold preserves a conversation's existence and evidence, and a
card number that should never have been stored is a breach to repair, held or not. The ledger
entry is the record of what changed. A dry run plans every batch the same way and writes nothing
but its own progress row.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from datetime import date, datetime, timezone
from datetime import time as clock_time
from typing import TYPE_CHECKING, Annotated, Any, Awaitable, Callable
from uuid import UUID, uuid4

import msgspec
import structlog
from apscheduler.triggers.interval import IntervalTrigger

from archive import attachments, db, ingest, leases, ledger, revisions, transcripts
from archive.crypto import DecryptionError
from archive.db import json_column
from archive.errors import Conflict, FieldError, InvalidInput, NotFound
from archive.jobs import JobSpec
from archive.models import StoredConversation
from archive.redaction import Redactor
from archive.tables import (
    ConnectorDraft,
    ConnectorJob,
    Conversation,
    ConversationFile,
    ConversationKey,
    ConversationRevision,
    IndexOutbox,
    RedactionRescan,
    Tenant,
)
from archive.tenancy import TenantContext, tenant_context

if TYPE_CHECKING:
    from archive.runtime import Runtime

log = structlog.get_logger(__name__)

BATCH = 100
# A batch that loses a deadlock to a concurrent ingest or deletion is tried again (planned again
# inside the transaction where the rows changed).
BATCH_ATTEMPTS = 3
ACTION = "redaction.rescan"


class RescanIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """``since``: only conversations archived (or revised) on or after this date or time
    (ISO 8601; a date means its midnight UTC). ``dry_run``: count what would change, change nothing."""

    since: Annotated[str, msgspec.Meta(max_length=40)] | None = None
    dry_run: bool = False


class RescanOut(msgspec.Struct, kw_only=True):
    id: UUID
    status: str  # queued | running | done | failed
    dry_run: bool
    since: datetime | None
    requested_by: str
    total: int  # conversations the run covers (counted when it started)
    scanned: int
    changed: int  # conversations rewritten (a dry run: that would be)
    revisions_changed: int  # earlier revisions among them whose text changed
    redactions: dict[str, int]  # newly masked spans per kind
    # Conversations that did not decrypt (a tampered row; logged with their ids): left as they are.
    unreadable: int = 0
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str = ""


class RescanBusy(Conflict):
    def __init__(self, running_id: UUID, requested: datetime) -> None:
        super().__init__(
            f"a redaction rescan of this tenant is already queued or running (id {running_id}, requested "
            f"{requested.isoformat(timespec='seconds')}); wait for it to finish (GET /v1/redaction/rescans/{running_id})",
            running_id=str(running_id),
        )
        self.running_id = running_id


def parse_since(value: str | None, field: str = "since") -> datetime | None:
    """A date (midnight UTC) or an ISO 8601 time (UTC when it names no offset)."""
    if value is None or value == "":
        return None
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), clock_time(), tzinfo=timezone.utc)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput("the rescan request is invalid", [FieldError(field, "expected a date (2026-11-01) or an ISO 8601 time")]) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _out(row: dict[str, Any]) -> RescanOut:
    return RescanOut(
        id=row["id"], status=row["status"], dry_run=bool(row["dry_run"]), since=row["since"], requested_by=row["requested_by"],
        total=row["total"], scanned=row["scanned"], changed=row["changed"], revisions_changed=row["revisions_changed"],
        redactions=json_column(row["redactions"]) or {}, unreadable=row["unreadable"], created_at=row["created_at"], started_at=row["started_at"],
        finished_at=row["finished_at"], error=row["error"],
    )


# --- runs: create, read, resume ----------------------------------------------------------------


async def active(tenant_id: UUID) -> dict[str, Any] | None:
    """The tenant's queued or running real rescan, if any."""
    row: dict[str, Any] | None = await RedactionRescan.select().where(RedactionRescan.active == str(tenant_id)).first()
    return row


async def create(rt: Runtime, tenant_id: UUID, actor: str, *, since: datetime | None = None, dry_run: bool = False) -> RescanOut:
    """Queue a rescan of the tenant; ``RescanBusy`` (409) while a real one is queued or running."""
    run_id = uuid4()
    now = rt.clock.now()
    try:
        async with db.write_transaction():
            running = None if dry_run else await active(tenant_id)
            if running is not None:
                raise RescanBusy(running["id"], running["created_at"])
            await RedactionRescan.insert(RedactionRescan(
                id=run_id, tenant=tenant_id, active=None if dry_run else str(tenant_id), requested_by=actor[:64], dry_run=dry_run,
                since=since, status="queued", redactions="{}", created_at=now,
            ))
            await ledger.append(tenant_id, ledger.Entry(
                actor=actor, action="redaction.rescan.start", subject=str(run_id),
                details={"dry_run": dry_run, "since": since.isoformat() if since else None},
            ))
    except RescanBusy:
        raise
    except Exception as exc:
        if not ingest.is_unique_violation(exc):
            raise
        running = await active(tenant_id)  # a concurrent request won the race
        if running is None:
            raise
        raise RescanBusy(running["id"], running["created_at"]) from None
    return await get(tenant_id, run_id)


async def get(tenant_id: UUID, run_id: UUID) -> RescanOut:
    row = await RedactionRescan.select().where((RedactionRescan.id == run_id) & (RedactionRescan.tenant == tenant_id)).first()
    if row is None:
        raise NotFound(f"no redaction rescan {run_id}")
    return _out(row)


async def listing(tenant_id: UUID, limit: int = 50) -> list[RescanOut]:
    rows = await RedactionRescan.select().where(RedactionRescan.tenant == tenant_id).order_by(
        RedactionRescan.created_at, ascending=False
    ).limit(limit)
    return [_out(r) for r in rows]


def _operation(run_id: UUID) -> str:
    return f"redaction-rescan:{run_id}"


Progress = Callable[[RescanOut], Awaitable[None]]


async def run(rt: Runtime, run_id: UUID, *, batch: int = BATCH, progress: Progress | None = None,
              stop_after_batches: int | None = None) -> RescanOut:
    """Run (or resume) a queued or interrupted rescan to its end, holding its lease.
    ``LeaseBusy`` if another process is running it. ``stop_after_batches`` stops early, as a
    crash would (tests)."""
    row = await RedactionRescan.select().where(RedactionRescan.id == run_id).first()
    if row is None:
        raise NotFound(f"no redaction rescan {run_id}")
    async with leases.held(rt, row["tenant"], _operation(run_id), run_id=run_id) as lease:
        row = await RedactionRescan.select().where(RedactionRescan.id == run_id).first()
        assert row is not None
        if row["status"] in ("done", "failed"):
            return _out(row)
        try:
            await _run(rt, row, lease, batch, progress, stop_after_batches)
        except leases.LeaseLost:
            raise
        except Exception as exc:  # recorded on the run for the operator; the run is over
            log.exception("redaction_rescan_failed", rescan=str(run_id))
            await RedactionRescan.update({
                # The class only: a message might quote what the rescan was reading.
                RedactionRescan.status: "failed", RedactionRescan.error: type(exc).__name__,
                RedactionRescan.active: None, RedactionRescan.finished_at: rt.clock.now(),
            }).where(RedactionRescan.id == run_id)
            raise
    return await get(row["tenant"], run_id)


async def run_pending(rt: Runtime, limit: int = 5) -> int:
    """Run queued rescans, and resume those whose process died (``running``, lease not held)."""
    now = rt.clock.now()
    rows = await RedactionRescan.select().where(RedactionRescan.status.is_in(["queued", "running"])).order_by(
        RedactionRescan.created_at
    ).limit(limit)
    started = 0
    for row in rows:
        if await leases.running(row["tenant"], _operation(row["id"]), now) is not None:
            continue
        if row["status"] == "running":
            log.warning("redaction_rescan_resumed", rescan=str(row["id"]))
        try:
            await run(rt, row["id"])
            started += 1
        except leases.LeaseBusy:
            continue  # another process took it first
        except Exception as exc:  # recorded on the run by ``run``; the job goes on
            log.warning("redaction_rescan_job_failed", rescan=str(row["id"]), error=type(exc).__name__)
    return started


async def _job(rt: Runtime) -> dict[str, int] | None:
    started = await run_pending(rt)
    return {"rescans": started} if started else None


def jobs() -> list[JobSpec]:
    return [JobSpec("redaction.rescans", _job, lambda rt: IntervalTrigger(seconds=5))]


# --- planning (CPU: a worker thread) -----------------------------------------------------------


class Piece(msgspec.Struct):
    """One revision's content as the rescan leaves it. ``revision`` 0 is the conversation row."""

    revision: int
    body: bytes
    sha256: str
    counts: dict[str, int]
    changed: bool


class Plan(msgspec.Struct):
    conversation_id: UUID
    # What the plan was made from: the transaction rewrites only if the rows still match.
    fingerprint: tuple[int, str, tuple[tuple[int, str], ...]]
    current: Piece
    earlier: list[Piece]
    counts: dict[str, int]

    @property
    def changed(self) -> bool:
        return self.current.changed or any(p.changed for p in self.earlier)


def _fingerprint(sealed: transcripts.Sealed) -> tuple[int, str, tuple[tuple[int, str], ...]]:
    row = sealed.row
    return int(row["revision"]), str(row["content_sha256"]), tuple((int(r["revision"]), str(r["content_sha256"])) for r in sealed.earlier)


def _rescanned(ctx: TenantContext, revision: int, stored: StoredConversation) -> Piece:
    before = ingest.canonical(stored)
    redacted = ingest.redact_content(ctx.redaction, stored.language, stored.messages, stored.metadata)
    # The survey comment is the visitor's own words too: redacted like ingest does (ingest._redacted_ratings).
    survey = Redactor(ctx.redaction, stored.language)
    ratings = ingest.redacted_ratings(survey, stored.ratings)
    counts = dict(sorted((Counter(redacted.counts) + survey.counts).items()))
    after = ingest.canonical(msgspec.structs.replace(stored, messages=redacted.messages, metadata=redacted.metadata, ratings=ratings))
    changed = after != before
    return Piece(revision, after, hashlib.sha256(after).hexdigest(), counts if changed else {}, changed)


def plan_one(ctx: TenantContext, sealed: transcripts.Sealed) -> Plan:
    current = _rescanned(ctx, 0, transcripts.unseal(ctx, sealed))
    earlier = [_rescanned(ctx, int(row["revision"]), stored) for row, stored in transcripts.unseal_earlier(ctx, sealed)]
    counts: Counter[str] = Counter()
    for piece in (current, *earlier):
        counts.update(piece.counts)
    return Plan(sealed.row["id"], _fingerprint(sealed), current, earlier, dict(sorted(counts.items())))


def plan_many(ctx: TenantContext, found: dict[UUID, transcripts.Sealed]) -> tuple[list[Plan], list[UUID]]:
    """(plans, unreadable ids). An unreadable conversation (a tampered row) is reported, not fatal."""
    plans, unreadable = [], []
    for cid, sealed in found.items():
        try:
            plans.append(plan_one(ctx, sealed))
        except DecryptionError:
            log.error("redaction_rescan_unreadable", conversation=str(cid))
            unreadable.append(cid)
    return plans, unreadable


# --- the run -----------------------------------------------------------------------------------


def _scope(tenant_id: UUID, since: datetime | None) -> Any:
    where: Any = Conversation.tenant == tenant_id
    if since is not None:
        where = where & ((Conversation.created_at >= since) | (Conversation.revised_at >= since))
    return where


async def _run(rt: Runtime, row: dict[str, Any], lease: leases.Lease, batch: int, progress: Progress | None,
               stop_after_batches: int | None) -> None:
    tenant_id, run_id, dry_run, since = row["tenant"], row["id"], bool(row["dry_run"]), row["since"]
    ctx = await tenant_context(rt, tenant_id)
    if row["status"] == "queued":
        total = await Conversation.count().where(_scope(tenant_id, since))
        await RedactionRescan.update({
            RedactionRescan.status: "running", RedactionRescan.total: total, RedactionRescan.started_at: rt.clock.now(),
        }).where(RedactionRescan.id == run_id)
    cursor = row["cursor"]
    started = time.monotonic()

    def page() -> Any:
        query = Conversation.select(Conversation.id).where(_scope(tenant_id, since))
        return query.where(Conversation.id > cursor) if cursor is not None else query

    batches = 0
    async for rows in db.keyset_pages(page, Conversation.id, batch):
        if stop_after_batches is not None and batches >= stop_after_batches:
            return  # tests simulate a crash here
        batches += 1
        ids = [r["id"] for r in rows]
        found = await transcripts.fetch_sealed(ctx, ids)
        plans, unreadable = await rt.workers.run(plan_many, ctx, found)
        changed = [p for p in plans if p.changed]
        for attempt in range(BATCH_ATTEMPTS):
            try:
                await _commit_batch(rt, ctx, row, lease, ids, changed, len(unreadable))
                break
            except Exception as exc:  # a deadlock with a concurrent ingest or deletion: the batch again
                if not _is_transient(exc) or attempt == BATCH_ATTEMPTS - 1:
                    raise
                log.warning("redaction_rescan_batch_retried", rescan=str(run_id), error=type(exc).__name__)
        if progress is not None:
            await progress(await get(tenant_id, run_id))
    now = rt.clock.now()
    async with db.write_transaction():
        await leases.fence(rt, lease)
        await RedactionRescan.update({
            RedactionRescan.status: "done", RedactionRescan.active: None, RedactionRescan.finished_at: now,
        }).where(RedactionRescan.id == run_id)
        final = await get(tenant_id, run_id)
        await ledger.append(tenant_id, ledger.Entry(
            actor=row["requested_by"], action="redaction.rescan.done", subject=str(run_id),
            details={"dry_run": dry_run, "scanned": final.scanned, "changed": final.changed,
                     "revisions_changed": final.revisions_changed, "redactions": final.redactions, "unreadable": final.unreadable},
        ))
    log.info("redaction_rescan_done", tenant=str(tenant_id), rescan=str(run_id), dry_run=dry_run, scanned=final.scanned,
             changed=final.changed, seconds=round(time.monotonic() - started, 3))


def _is_transient(exc: BaseException) -> bool:
    """PostgreSQL gave up on the transaction in favour of another (deadlock, serialisation)."""
    return type(exc).__name__ in ("DeadlockDetectedError", "SerializationError")


async def _commit_batch(rt: Runtime, ctx: TenantContext, row: dict[str, Any], lease: leases.Lease, ids: list[UUID],
                        changed: list[Plan], unreadable: int) -> None:
    """One batch's rewrites and the run's progress, in one transaction (see the module doc)."""
    run_id = row["id"]
    async with db.write_transaction():
        await leases.fence(rt, lease)
        done = changed if row["dry_run"] else await _rewrite(rt, ctx, changed, row["requested_by"], run_id)
        counts: Counter[str] = Counter()
        for p in done:
            counts.update(p.counts)
        current = await RedactionRescan.select().where(RedactionRescan.id == run_id).first()
        assert current is not None
        merged = Counter(json_column(current["redactions"]) or {}) + counts
        await RedactionRescan.update({
            RedactionRescan.cursor: ids[-1],
            RedactionRescan.scanned: current["scanned"] + len(ids),
            RedactionRescan.changed: current["changed"] + len(done),
            RedactionRescan.revisions_changed: current["revisions_changed"] + sum(1 for p in done for e in p.earlier if e.changed),
            RedactionRescan.redactions: json.dumps(dict(sorted(merged.items()))),
            RedactionRescan.unreadable: current["unreadable"] + unreadable,
        }).where(RedactionRescan.id == run_id)


async def _rewrite(rt: Runtime, ctx: TenantContext, plans: list[Plan], actor: str, run_id: UUID) -> list[Plan]:
    """Inside the batch transaction: rewrite each planned conversation under a fresh key. Returns
    the plans actually applied (a conversation deleted meanwhile is skipped; one revised meanwhile
    is planned again from what is stored now)."""
    if not plans:
        return []
    tenant_id = ctx.tenant_id
    ids = [p.conversation_id for p in plans]
    # Lock order everywhere: the chain head first (as deletion and ingest of a revision take it),
    # then the keys: an ingest of a new revision or a connector sealing a draft under one of them
    # waits for this transaction, and then reads the new key (revisions.key_of(lock=True)).
    await ledger.lock_head(tenant_id)
    if not db.is_sqlite():  # SQLite's write transaction already excludes every other writer
        await ConversationKey.raw(
            "SELECT conversation FROM conversation_key WHERE tenant = {} AND conversation IN ("
            + ", ".join("{}" for _ in ids) + ") ORDER BY conversation" + db.for_update(), tenant_id, *ids,
        )
    found = await transcripts.fetch_sealed(ctx, ids)
    applied: list[Plan] = []
    entries: list[ledger.Entry] = []
    for plan in plans:
        sealed = found.get(plan.conversation_id)
        if sealed is None:
            continue  # deleted (or shredded) since the batch was planned
        if _fingerprint(sealed) != plan.fingerprint:
            plan = plan_one(ctx, sealed)  # revised since: plan again from what is stored now
            if not plan.changed:
                continue
        previous = sealed.row["content_sha256"]
        await _reseal(ctx, sealed, plan)
        applied.append(plan)
        details: dict[str, Any] = {
            "external_id": sealed.row["external_id"], "rescan": str(run_id), "redactions": plan.counts,
            "previous_content_hash": previous, "data_key": "replaced",
        }
        if plan.earlier:
            details["revisions_changed"] = [p.revision for p in plan.earlier if p.changed] + (
                [int(sealed.row["revision"])] if plan.current.changed else []
            )
        entries.append(ledger.Entry(actor=actor, action=ACTION, subject=str(plan.conversation_id),
                                    content_hash=plan.current.sha256, details=details))
    if applied:
        await IndexOutbox.insert(*[IndexOutbox(tenant=tenant_id, conversation=p.conversation_id, op="upsert") for p in applied])
        await ledger.append(tenant_id, *entries)
    return applied


def _merged(old: Any, new: dict[str, int]) -> str:
    counts = Counter(json_column(old) or {}) + Counter(new)
    return json.dumps(dict(sorted(counts.items())))


async def _reseal(ctx: TenantContext, sealed: transcripts.Sealed, plan: Plan) -> None:
    """Every piece of the conversation sealed again under a fresh data key; the old key row is
    overwritten (shredded). Files, drafts and jobs are not redacted (they are not text the
    detectors read) but must move to the new key, or they would be shredded with the old one."""
    crypto = ctx.crypto
    cid, old = plan.conversation_id, sealed.key
    fresh = crypto.seal(cid, plan.current.body)
    wrapped, version = fresh.wrapped_key, fresh.master_version

    def moved(part: str, ciphertext: bytes) -> bytes:
        plaintext = crypto.open_part(cid, old["wrapped_key"], old["master_version"], part, ciphertext)
        return crypto.seal_part(cid, wrapped, version, part, plaintext)

    await Conversation.update({
        Conversation.ciphertext: fresh.ciphertext,
        Conversation.content_sha256: plan.current.sha256,
        Conversation.redactions: _merged(sealed.row["redactions"], plan.current.counts),
    }).where((Conversation.id == cid) & (Conversation.tenant == ctx.tenant_id))
    by_revision = {p.revision: p for p in plan.earlier}
    for row in sealed.earlier:
        piece = by_revision[int(row["revision"])]
        await ConversationRevision.update({
            ConversationRevision.ciphertext: crypto.seal_part(cid, wrapped, version, revisions.part(piece.revision), piece.body),
            ConversationRevision.content_sha256: piece.sha256,
            ConversationRevision.redactions: _merged(row["redactions"], piece.counts),
        }).where((ConversationRevision.conversation == cid) & (ConversationRevision.revision == piece.revision))
    await _move_files(ctx, sealed, plan, moved)
    for draft in await ConnectorDraft.select(ConnectorDraft.id, ConnectorDraft.token, ConnectorDraft.ciphertext).where(
        (ConnectorDraft.tenant == ctx.tenant_id) & (ConnectorDraft.conversation == cid)
    ):
        await ConnectorDraft.update({ConnectorDraft.ciphertext: moved(f"draft/{draft['token']}", draft["ciphertext"])}).where(
            ConnectorDraft.id == draft["id"]
        )
    for job in await ConnectorJob.select(ConnectorJob.id, ConnectorJob.ciphertext).where(
        (ConnectorJob.tenant == ctx.tenant_id) & (ConnectorJob.conversation == cid)
    ):
        await ConnectorJob.update({ConnectorJob.ciphertext: moved(f"job/{job['id']}", job["ciphertext"])}).where(ConnectorJob.id == job["id"])
    await ConversationKey.update({ConversationKey.wrapped_key: wrapped, ConversationKey.master_version: version}).where(
        (ConversationKey.conversation == cid) & (ConversationKey.tenant == ctx.tenant_id)
    )


async def _move_files(ctx: TenantContext, sealed: transcripts.Sealed, plan: Plan, moved: Callable[[str, bytes], bytes]) -> None:
    """A stored file is bound to its SHA-256, which only the attachments inside the sealed
    revisions name (the row has a keyed hash of it): match each row through them."""
    if not sealed.files:
        return
    by_digest = {f["digest"]: f for f in sealed.files}
    for piece in (plan.current, *plan.earlier):
        stored = msgspec.json.decode(piece.body, type=StoredConversation)
        for message in stored.messages:
            for attachment in message.attachments:
                if not attachment.sha256:
                    continue
                row = by_digest.pop(attachments.digest(ctx, attachment.sha256), None)
                if row is not None:
                    await ConversationFile.update(
                        {ConversationFile.ciphertext: moved(attachments.part(attachment.sha256), row["ciphertext"])}
                    ).where(ConversationFile.id == row["id"])
    for orphan in by_digest.values():  # named by no revision: unreadable anyway, shredded with the old key
        log.warning("redaction_rescan_orphan_file", conversation=str(plan.conversation_id), file=str(orphan["id"]))


async def tenant_ids(slug: str | None) -> list[tuple[UUID, str]]:
    query = Tenant.select(Tenant.id, Tenant.slug).order_by(Tenant.slug)
    if slug is not None:
        query = query.where(Tenant.slug == slug)
    return [(r["id"], r["slug"]) for r in await query]
