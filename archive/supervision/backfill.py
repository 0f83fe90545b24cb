"""Backfill: apply one policy to conversations already in the archive, in resumable batches.

A request becomes a job (``supervision_backfill``) that the scheduler runs (``run_pending``).
The policy is applied as it was at the version current when the job was requested, to the
conversations that started in ``[from, to)``, in conversation-id order, ``BATCH`` at a time:
each batch is decrypted and evaluated in a worker thread, then its review items, their ledger
entries and the job's cursor and counts commit in ONE transaction. A run that stops — killed,
or its process gone — therefore leaves the job exactly after its last whole batch; the next run
(this process or another, once the job's heartbeat is ``STALE_SECONDS`` old) resumes there and
flags nothing twice. A conversation (at its latest revision) that already has a review item of
this policy for that revision (flagged at ingest, or by an earlier backfill) is not flagged again.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID, uuid4

import msgspec
import structlog
from apscheduler.triggers.interval import IntervalTrigger
from piccolo.custom_types import Combinable

from archive import db, ledger
from archive.crypto import DecryptionError
from archive.errors import FieldError, InvalidInput, NotFound
from archive.jobs import JobSpec
from archive.models import StoredConversation
from archive.runtime import Runtime
from archive.supervision.evaluation import Evaluator, Flagged, evaluator_for, store_flags
from archive.supervision.policies import definitions
from archive.supervision.tables import ReviewItem, SupervisionBackfill, SupervisionPolicy
from archive.tables import Conversation as ConversationRow
from archive.tables import ConversationKey
from archive.tenancy import Principal, TenantContext, tenant_context
from archive.validation import date_problems

log = structlog.get_logger(__name__)

BATCH = 1000
STALE_SECONDS = 120


class BackfillIn(msgspec.Struct, forbid_unknown_fields=True):
    from_: Annotated[datetime, msgspec.Meta(tz=True)] | None = msgspec.field(default=None, name="from")
    to: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


class BackfillOut(msgspec.Struct):
    id: UUID
    policy: UUID
    policy_version: int
    from_: datetime | None = msgspec.field(name="from")
    to: datetime | None
    status: str
    total: int
    scanned: int
    flagged: int
    progress: float  # scanned / total, 0..1
    requested_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str


def _out(row: dict[str, Any]) -> BackfillOut:
    return BackfillOut(
        id=row["id"], policy=row["policy"], policy_version=row["policy_version"], from_=row["start"], to=row["end"], status=row["status"],
        total=row["total"], scanned=row["scanned"], flagged=row["flagged"],
        progress=round(min(1.0, row["scanned"] / row["total"]), 4) if row["total"] else (1.0 if row["status"] == "done" else 0.0),
        requested_by=row["requested_by"], created_at=row["created_at"], started_at=row["started_at"], finished_at=row["finished_at"],
        error=row["error"],
    )


def _in_range(tenant_id: UUID, start: datetime | None, end: datetime | None) -> Combinable:
    where: Combinable = ConversationRow.tenant == tenant_id
    if start is not None:
        where &= ConversationRow.started_at >= start
    if end is not None:
        where &= ConversationRow.started_at < end
    return where


async def request(rt: Runtime, principal: Principal, policy_id: UUID, data: BackfillIn) -> BackfillOut:
    if errors := date_problems(data):
        raise InvalidInput("the backfill's dates are out of range", errors)
    if data.from_ is not None and data.to is not None and data.to <= data.from_:
        raise InvalidInput("the range is empty", [FieldError("to", "must be after from")])
    policy = await SupervisionPolicy.select().where(
        (SupervisionPolicy.id == policy_id) & (SupervisionPolicy.tenant == principal.tenant_id) & (SupervisionPolicy.status == "active")
    ).first()
    if policy is None:
        raise NotFound(f"no policy {policy_id}")
    job_id = uuid4()
    total = await ConversationRow.count().where(_in_range(principal.tenant_id, data.from_, data.to))
    async with db.write_transaction():
        await SupervisionBackfill.insert(SupervisionBackfill(
            id=job_id, tenant=principal.tenant_id, policy=policy_id, policy_version=policy["version"], start=data.from_, end=data.to,
            total=total, requested_by=principal.actor, created_at=rt.clock.now(),
        ))
        await ledger.append(principal.tenant_id, ledger.Entry(
            actor=principal.actor, action="supervision.backfill", subject=str(job_id),
            details={"policy": str(policy_id), "policy_version": policy["version"], "total": total,
                     "from": data.from_.isoformat() if data.from_ else None, "to": data.to.isoformat() if data.to else None},
        ))
    return await get(principal, job_id)


async def get(principal: Principal, job_id: UUID) -> BackfillOut:
    row = await SupervisionBackfill.select().where((SupervisionBackfill.id == job_id) & (SupervisionBackfill.tenant == principal.tenant_id)).first()
    if row is None:
        raise NotFound(f"no backfill {job_id}")
    return _out(row)


async def list_backfills(principal: Principal, policy_id: UUID | None = None) -> list[BackfillOut]:
    query = SupervisionBackfill.select().where(SupervisionBackfill.tenant == principal.tenant_id)
    if policy_id is not None:
        query = query.where(SupervisionBackfill.policy == policy_id)
    return [_out(r) for r in await query.order_by(SupervisionBackfill.created_at)]


def _evaluate_batch(ctx: TenantContext, evaluator: Evaluator, pairs: list[tuple[dict[str, Any], dict[str, Any]]]) -> tuple[list[Flagged], int]:
    """Decrypt and evaluate (CPU only: runs in a worker thread). Returns the flagged ones and
    how many could not be decrypted."""
    flagged, unreadable = [], 0
    for row, key in pairs:
        try:
            plaintext = ctx.crypto.open(row["id"], row["ciphertext"], key["wrapped_key"], key["master_version"])
        except DecryptionError:
            unreadable += 1
            continue
        stored = msgspec.json.decode(plaintext, type=StoredConversation)
        flags = evaluator.evaluate(row["id"], stored, row["visitor_hash"])
        if flags:
            flagged.append(Flagged(row["id"], row["revision"], stored, flags))
    return flagged, unreadable


async def _claim(rt: Runtime, job_id: UUID, run_id: UUID) -> dict[str, Any] | None:
    """Take the job for this run: queued, or running under a run that stopped showing life."""
    now = rt.clock.now()
    async with db.write_transaction():
        row = await SupervisionBackfill.select().where(SupervisionBackfill.id == job_id).first()
        if row is None or row["status"] not in ("queued", "running"):
            return None
        if row["status"] == "running" and row["heartbeat_at"] is not None and row["heartbeat_at"] > now - timedelta(seconds=STALE_SECONDS):
            return None
        await SupervisionBackfill.update({
            SupervisionBackfill.status: "running", SupervisionBackfill.runner: run_id, SupervisionBackfill.heartbeat_at: now,
            SupervisionBackfill.started_at: row["started_at"] or now,
        }).where(SupervisionBackfill.id == job_id)
    if row["status"] == "running":
        log.warning("backfill_taken_over", backfill=str(job_id), scanned=row["scanned"])
    return row


async def run(rt: Runtime, job_id: UUID, *, batch: int = BATCH, stop_after_batches: int | None = None) -> None:
    """Run (or resume) one backfill; see the module docstring."""
    run_id = uuid4()
    job = await _claim(rt, job_id, run_id)
    if job is None:
        return
    tenant_id = job["tenant"]
    ctx = await tenant_context(rt, tenant_id)
    started = time.monotonic()
    try:
        evaluator = await evaluator_for(rt, ctx, [], policy_id=job["policy"], version=job["policy_version"])
    except NotFound:
        await _finish(rt, job, "failed", "the policy version is gone")
        return
    name = (await definitions(ctx, policy_id=job["policy"], version=job["policy_version"]))[0].name
    batches = 0
    actor = f"system:backfill:{str(job_id)[:8]}"
    # The next batch is read while this one is evaluated (a read, safe beside the writes below).
    upcoming = asyncio.ensure_future(_read_batch(tenant_id, job, job["cursor"], batch))
    try:
        while stop_after_batches is None or batches < stop_after_batches:
            rows, keys = await upcoming
            if not rows:
                await _finish(rt, job, "done", "")
                log.info("backfill_done", backfill=str(job_id), policy=name, seconds=round(time.monotonic() - started, 1))
                return
            ids = [r["id"] for r in rows]
            upcoming = asyncio.ensure_future(_read_batch(tenant_id, job, ids[-1], batch))
            flagged, unreadable = await rt.workers.run(_evaluate_batch, ctx, evaluator, [(r, keys[r["id"]]) for r in rows if r["id"] in keys])
            if unreadable:
                log.error("backfill_conversations_unreadable", backfill=str(job_id), count=unreadable)
            if not await _commit_batch(rt, ctx, job, run_id, ids, len(rows), flagged, actor):
                log.warning("backfill_lost", backfill=str(job_id))
                return
            batches += 1
    finally:
        upcoming.cancel()
        await asyncio.gather(upcoming, return_exceptions=True)


async def _read_batch(tenant_id: UUID, job: dict[str, Any], cursor: UUID | None, size: int) -> tuple[list[dict[str, Any]], dict[UUID, dict[str, Any]]]:
    """The next conversations of the job's range after ``cursor``, with their wrapped keys."""
    where = _in_range(tenant_id, job["start"], job["end"])
    if cursor is not None:
        where &= ConversationRow.id > cursor
    rows = await ConversationRow.select(ConversationRow.id, ConversationRow.revision, ConversationRow.ciphertext, ConversationRow.visitor_hash).where(
        where).order_by(ConversationRow.id).limit(size)
    if not rows:
        return [], {}
    keys = {k["conversation"]: k for k in await ConversationKey.select().where(
        (ConversationKey.tenant == tenant_id) & ConversationKey.conversation.is_in([r["id"] for r in rows]))}
    return rows, keys


async def _commit_batch(rt: Runtime, ctx: TenantContext, job: dict[str, Any], run_id: UUID, ids: list[UUID], scanned: int,
                        flagged: list[Flagged], actor: str) -> bool:
    """A batch's review items, ledger entries and the job's cursor, in one transaction; False
    when another run has taken the job over (then nothing is written)."""
    async with db.write_transaction():
        # Serialises with deletion (retention/deletion.py): a conversation deleted since the batch
        # was read gets no review item, and one flagged here is kept by ReviewGuard from now on.
        await ledger.lock_head(ctx.tenant_id)
        if not await _still_ours(job["id"], run_id):
            return False
        if flagged:
            present = {r["id"] for r in await ConversationRow.select(ConversationRow.id).where(
                (ConversationRow.tenant == ctx.tenant_id) & ConversationRow.id.is_in([f.conversation_id for f in flagged]))}
            flagged = [f for f in flagged if f.conversation_id in present]
        if flagged:
            already = {(r["conversation"], r["revision"]) for r in await ReviewItem.select(ReviewItem.conversation, ReviewItem.revision).where(
                (ReviewItem.tenant == ctx.tenant_id) & (ReviewItem.policy == job["policy"])
                & ReviewItem.conversation.is_in([f.conversation_id for f in flagged]))}
            flagged = [f for f in flagged if (f.conversation_id, f.revision) not in already]
        count = await store_flags(ctx, flagged, actor, rt.clock.now())
        await SupervisionBackfill.update({
            SupervisionBackfill.cursor: ids[-1], SupervisionBackfill.scanned: SupervisionBackfill.scanned + scanned,
            SupervisionBackfill.flagged: SupervisionBackfill.flagged + count, SupervisionBackfill.heartbeat_at: rt.clock.now(),
        }).where(SupervisionBackfill.id == job["id"])
    return True


async def _still_ours(job_id: UUID, run_id: UUID) -> bool:
    row = await SupervisionBackfill.select(SupervisionBackfill.runner, SupervisionBackfill.status).where(SupervisionBackfill.id == job_id).first()
    return row is not None and row["runner"] == run_id and row["status"] == "running"


async def _finish(rt: Runtime, job: dict[str, Any], status: str, error: str) -> None:
    async with db.write_transaction():
        await SupervisionBackfill.update({
            SupervisionBackfill.status: status, SupervisionBackfill.finished_at: rt.clock.now(), SupervisionBackfill.error: error,
        }).where(SupervisionBackfill.id == job["id"])
        row = await SupervisionBackfill.select().where(SupervisionBackfill.id == job["id"]).first()
        assert row is not None
        await ledger.append(job["tenant"], ledger.Entry(
            actor="system:backfill", action=f"supervision.backfill.{status}", subject=str(job["id"]),
            details={"policy": str(job["policy"]), "scanned": row["scanned"], "flagged": row["flagged"], **({"error": error} if error else {})},
        ))


async def run_pending(rt: Runtime, limit: int = 5) -> int:
    """Run queued backfills, and resume those whose run stopped showing life."""
    stale = rt.clock.now() - timedelta(seconds=STALE_SECONDS)
    rows = await SupervisionBackfill.select(SupervisionBackfill.id).where(
        (SupervisionBackfill.status == "queued")
        | ((SupervisionBackfill.status == "running") & (SupervisionBackfill.heartbeat_at < stale))
    ).order_by(SupervisionBackfill.created_at).limit(limit)
    for row in rows:
        await run(rt, row["id"])
    return len(rows)


async def run_backfills(rt: Runtime) -> dict[str, int] | None:
    ran = await run_pending(rt)
    return {"backfills": ran} if ran else None


def jobs() -> list[JobSpec]:
    return [JobSpec("supervision.backfill", run_backfills, lambda rt: IntervalTrigger(seconds=5))]
