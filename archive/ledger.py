"""The tamper-evident ledger: an append-only, hash-chained record of everything that happens.

Each tenant has one chain. Entry ``n`` stores ``hash_n = SHA-256(hash_{n-1} || canonical(entry_n))``
and the head row holds the newest ``(seq, hash)``. Editing, deleting, inserting or reordering rows
breaks the recomputation at the first affected ``seq``; truncating the tail disagrees with the head
row and with the signed checkpoints. Checkpoints sign the head with an Ed25519 signing key whose
record is attested by the master key (archive/signing.py), so even someone who can rewrite every
table cannot forge an earlier signed head; and because signing keys keep their own history, a
checkpoint stays verifiable after the master version of its day is retired.

Appends happen inside the caller's write transaction, so an action and its ledger entry commit
together or not at all. The head row is locked (``FOR UPDATE`` on PostgreSQL; SQLite's IMMEDIATE
transaction already holds the database write lock) so concurrent appends serialise. Destructive
steps and legal holds take the same lock first (``lock_head``): deletion decides with the holds of
the moment, and a hold placed meanwhile waits for the batch to commit (retention/deletion.py).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from typing import Any, AsyncIterator
from uuid import UUID

import msgspec

from archive import db
from archive.db import json_column
from archive.runtime import Runtime
from archive.signing import Verifier
from archive.tables import LedgerCheckpoint, LedgerEntry, LedgerHead, Tenant

GENESIS_HASH = "0" * 64
VERIFY_PAGE = 2000


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """What an action records. ``details`` holds counts, ids and filters, never content."""

    actor: str
    action: str
    subject: str = ""
    content_hash: str = ""
    details: dict[str, Any] = {}


class LedgerRecord(msgspec.Struct, kw_only=True):
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    content_hash: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class VerifyReport(msgspec.Struct, kw_only=True):
    ok: bool
    entries_checked: int
    head_seq: int
    checkpoints_verified: int
    first_bad_seq: int | None = None
    problem: str | None = None


class Checkpoint(msgspec.Struct, kw_only=True):
    seq: int
    hash: str
    signed_at: datetime
    key_version: int
    signature: str


def _iso(at: datetime) -> str:
    return at.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _canonical(tenant_id: UUID, seq: int, at: datetime, entry: Entry) -> bytes:
    return msgspec.json.encode(
        {
            "tenant": str(tenant_id),
            "seq": seq,
            "at": _iso(at),
            "actor": entry.actor,
            "action": entry.action,
            "subject": entry.subject,
            "content_hash": entry.content_hash,
            "details": entry.details,
        },
        order="sorted",
    )


def chain_hash(prev_hash: str, tenant_id: UUID, seq: int, at: datetime, entry: Entry) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + _canonical(tenant_id, seq, at, entry)).hexdigest()


async def init_chain(tenant_id: UUID) -> None:
    """Create the tenant's head row; called in the transaction that creates the tenant."""
    await LedgerHead.insert(LedgerHead(tenant=tenant_id, seq=0, hash=GENESIS_HASH))


async def lock_head(tenant_id: UUID) -> tuple[int, str]:
    """Lock the tenant's chain head until the caller's transaction ends; returns (seq, hash).
    Deletion, hold creation and release, and policy changes serialise on it."""
    return await _locked_head(tenant_id)


async def _locked_head(tenant_id: UUID) -> tuple[int, str]:
    rows = await LedgerHead.raw(
        "SELECT seq, hash FROM ledger_head WHERE tenant = {}" + db.for_update(), tenant_id
    )
    if not rows:
        raise RuntimeError(f"ledger head missing for tenant {tenant_id}")
    return rows[0]["seq"], rows[0]["hash"]


async def append(tenant_id: UUID, *entries: Entry) -> list[LedgerRecord]:
    """Append entries to the tenant's chain, inside the caller's transaction if there is one."""
    async with db.write_transaction():
        seq, prev = await _locked_head(tenant_id)
        at = datetime.now(timezone.utc)
        records: list[LedgerRecord] = []
        for entry in entries:
            seq += 1
            digest = chain_hash(prev, tenant_id, seq, at, entry)
            records.append(
                LedgerRecord(
                    seq=seq, at=at, actor=entry.actor, action=entry.action, subject=entry.subject,
                    content_hash=entry.content_hash, details=entry.details, prev_hash=prev, hash=digest,
                )
            )
            prev = digest
        await _insert_entries(tenant_id, records)
        await LedgerHead.raw("UPDATE ledger_head SET seq = {}, hash = {} WHERE tenant = {}", seq, prev, tenant_id)
    return records


_ENTRY_COLUMNS = ("tenant", "seq", "at", "actor", "action", "subject", "content_hash", "details", "prev_hash", "hash")


async def _insert_entries(tenant_id: UUID, records: list[LedgerRecord]) -> None:
    """The hot write path of every audited action, as one prepared statement run for every row
    (``db.insert_many``): the ORM builds and converts each value in Python, which cost more than
    the insert itself (issue 20)."""
    await db.insert_many(
        "ledger_entry", _ENTRY_COLUMNS,
        [(tenant_id, r.seq, r.at, r.actor, r.action, r.subject, r.content_hash, json.dumps(r.details), r.prev_hash, r.hash)
         for r in records],
    )


def _record(row: dict[str, Any]) -> LedgerRecord:
    details = row["details"]
    return LedgerRecord(
        seq=row["seq"], at=row["at"], actor=row["actor"], action=row["action"], subject=row["subject"],
        content_hash=row["content_hash"], details=json_column(details),
        prev_hash=row["prev_hash"], hash=row["hash"],
    )


_COLUMNS = (
    LedgerEntry.seq, LedgerEntry.at, LedgerEntry.actor, LedgerEntry.action, LedgerEntry.subject,
    LedgerEntry.content_hash, LedgerEntry.details, LedgerEntry.prev_hash, LedgerEntry.hash,
)


async def iter_entries(tenant_id: UUID, page: int = VERIFY_PAGE) -> AsyncIterator[LedgerRecord]:
    after = 0
    while True:
        rows = (
            await LedgerEntry.select(*_COLUMNS)
            .where((LedgerEntry.tenant == tenant_id) & (LedgerEntry.seq > after))
            .order_by(LedgerEntry.seq)
            .limit(page)
        )
        for row in rows:
            yield _record(row)
        if len(rows) < page:
            return
        after = rows[-1]["seq"]


async def list_entries(
    tenant_id: UUID,
    *,
    actor: str | None = None,
    action: str | None = None,
    subject: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_seq: int = 0,
    limit: int = 100,
) -> list[LedgerRecord]:
    where = (LedgerEntry.tenant == tenant_id) & (LedgerEntry.seq > after_seq)
    if actor:
        where &= LedgerEntry.actor == actor
    if action:
        where &= LedgerEntry.action == action
    if subject:
        where &= LedgerEntry.subject == subject
    if since:
        where &= LedgerEntry.at >= since
    if until:
        where &= LedgerEntry.at < until
    rows = await LedgerEntry.select(*_COLUMNS).where(where).order_by(LedgerEntry.seq).limit(limit)
    return [_record(r) for r in rows]


def _checkpoint_message(tenant_id: UUID, seq: int, head: str, signed_at: datetime) -> bytes:
    return f"parley-ledger-checkpoint/v1|{tenant_id}|{seq}|{head}|{_iso(signed_at)}".encode()


async def checkpoint(rt: Runtime, tenant_id: UUID) -> Checkpoint | None:
    """Sign the tenant's current head, unless it is already signed. Returns the new checkpoint."""
    head = await LedgerHead.select().where(LedgerHead.tenant == tenant_id).first()
    if head is None or head["seq"] == 0:
        return None
    last = (
        await LedgerCheckpoint.select(LedgerCheckpoint.seq)
        .where(LedgerCheckpoint.tenant == tenant_id)
        .order_by(LedgerCheckpoint.seq, ascending=False)
        .first()
    )
    if last is not None and last["seq"] == head["seq"]:
        return None
    signed_at = datetime.now(timezone.utc)
    signature = await rt.signing.sign(_checkpoint_message(tenant_id, head["seq"], head["hash"], signed_at))
    cp = Checkpoint(seq=head["seq"], hash=head["hash"], signed_at=signed_at, key_version=signature.key_version,
                    signature=signature.signature)
    await LedgerCheckpoint.insert(
        LedgerCheckpoint(
            tenant=tenant_id, seq=cp.seq, hash=cp.hash, signed_at=signed_at, key_version=cp.key_version, signature=cp.signature
        )
    )
    return cp


async def checkpoint_all(rt: Runtime) -> int:
    signed = 0
    for row in await Tenant.select(Tenant.id):
        if await checkpoint(rt, row["id"]) is not None:
            signed += 1
    return signed


async def verify(rt: Runtime, tenant_id: UUID) -> VerifyReport:
    """Recompute the whole chain and check the head row and every signed checkpoint."""
    checkpoints = {
        r["seq"]: r
        for r in await LedgerCheckpoint.select().where(LedgerCheckpoint.tenant == tenant_id).order_by(LedgerCheckpoint.seq)
    }
    head = await LedgerHead.select().where(LedgerHead.tenant == tenant_id).first()
    head_seq = head["seq"] if head else 0
    expected_seq, prev, checked, verified = 1, GENESIS_HASH, 0, 0
    verifier = await rt.signing.verifier() if checkpoints else None

    def bad(seq: int, problem: str) -> VerifyReport:
        return VerifyReport(
            ok=False, entries_checked=checked, head_seq=head_seq, checkpoints_verified=verified,
            first_bad_seq=seq, problem=problem,
        )

    async for record in iter_entries(tenant_id):
        if record.seq != expected_seq:
            if record.seq > expected_seq:
                return bad(expected_seq, f"entry {expected_seq} is missing (the next entry is {record.seq})")
            return bad(record.seq, f"entry {record.seq} appears out of order")
        if record.prev_hash != prev:
            return bad(record.seq, f"entry {record.seq} does not link to the entry before it")
        entry = Entry(
            actor=record.actor, action=record.action, subject=record.subject,
            content_hash=record.content_hash, details=record.details,
        )
        if chain_hash(prev, tenant_id, record.seq, record.at, entry) != record.hash:
            return bad(record.seq, f"entry {record.seq} was altered: its content does not match its hash")
        cp = checkpoints.get(record.seq)
        if cp is not None:
            if cp["hash"] != record.hash:
                return bad(record.seq, f"entry {record.seq} differs from the signed checkpoint of {_iso(cp['signed_at'])}")
            assert verifier is not None
            problem = _checkpoint_problem(verifier, tenant_id, cp)
            if problem is not None:
                return bad(record.seq, f"the checkpoint at entry {record.seq} has an invalid signature: {problem}")
            verified += 1
        prev = record.hash
        expected_seq += 1
        checked += 1
    last_seq = expected_seq - 1
    if head is None:
        return bad(last_seq, f"the chain's head row is missing: the end of the chain (entry {last_seq}) cannot be confirmed")
    if head["seq"] > last_seq:
        return bad(last_seq + 1, "the chain ends before its recorded head: entries were removed from the end")
    if head["seq"] < last_seq:
        return bad(head["seq"] + 1, f"entries {head['seq'] + 1}..{last_seq} lie beyond the recorded head (entry {head['seq']}): "
                                    "they were added outside the ledger, or the head row was set back")
    if head["hash"] != prev:
        return bad(last_seq, f"the head row's hash differs from entry {last_seq}: the head row was altered")
    beyond = [seq for seq in checkpoints if seq > last_seq]
    if beyond:
        return bad(last_seq + 1, f"a signed checkpoint covers entry {min(beyond)}, which no longer exists")
    return VerifyReport(ok=True, entries_checked=checked, head_seq=head_seq, checkpoints_verified=verified)


def _checkpoint_problem(verifier: Verifier, tenant_id: UUID, cp: dict[str, Any]) -> str | None:
    message = _checkpoint_message(tenant_id, cp["seq"], cp["hash"], cp["signed_at"])
    return verifier.problem(cp["key_version"], message, cp["signature"])
