"""Legal holds: named criteria that protect matching conversations — those archived now and those
archived later — from retention and erasure until released. Holds always win.

Criteria are evaluated when a deletion is considered, not materialised, which is what makes them
cover later ingests. Field criteria are checked on the clear columns; a query is run against the
index. Stored criteria keep the query sealed under the tenant key and visitor ids as keyed hashes.

Holds are a deletion guard (``HoldGuard``): every deletion batch re-reads the active holds inside
its own transaction, after locking the tenant's ledger head, and creating or releasing a hold
takes that same lock first. A hold placed while a sweep runs therefore protects every
conversation it covers that the sweep has not deleted yet. A hold with a query asks the index;
a candidate still waiting in the index outbox cannot be matched yet, so it is kept this time
("index_pending") rather than risk deleting what the hold would cover.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Callable
from uuid import UUID, uuid4

import msgspec

from archive import db, ledger
from archive.db import json_column
from archive.errors import Conflict, FieldError, InvalidInput, NotFound
from archive.limits import MAX_QUERY_CHARS, date_errors
from archive.query import QuerySyntaxError, parse
from archive.runtime import Runtime
from archive.search.service import SearchFilters, all_matching_ids
from archive.tables import Conversation, IndexOutbox
from archive.tenancy import Principal, TenantContext, tenant_context
from retention.deletion import CANDIDATE_COLUMNS, Protection
from retention.tables import LegalHold

SCAN_PAGE = 5000


class HoldCriteria(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    q: Annotated[str, msgspec.Meta(max_length=MAX_QUERY_CHARS)] = ""
    filters: SearchFilters = msgspec.field(default_factory=SearchFilters)
    visitor_ids: list[str] = []
    agent_ids: list[str] = []
    from_: Annotated[datetime, msgspec.Meta(tz=True)] | None = msgspec.field(default=None, name="from")
    to: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


class HoldIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    criteria: HoldCriteria = msgspec.field(default_factory=HoldCriteria)


class ReleaseIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]


class HoldOut(msgspec.Struct):
    id: UUID
    name: str
    reason: str
    status: str
    created_by: str
    created_at: datetime
    criteria: dict[str, Any]
    released_at: datetime | None = None
    release_reason: str | None = None
    covers: int | None = None
    case: UUID | None = None  # the case (retention.cases) the hold belongs to


class Stored(msgspec.Struct, omit_defaults=True):
    """Criteria as stored: nothing readable about people or search terms."""

    q_sealed: str = ""
    filters: dict[str, Any] = {}
    visitor_hashes: list[str] = []
    agent_ids: list[str] = []
    start: str | None = None
    end: str | None = None


def _store(ctx: TenantContext, c: HoldCriteria) -> Stored:
    filters = {k: v for k, v in msgspec.to_builtins(c.filters).items() if v is not None}
    if "visitor" in filters:
        filters["visitor_hash"] = ctx.crypto.identity_hash(filters.pop("visitor"))
    return Stored(
        q_sealed=ctx.crypto.seal_note(c.q.encode()) if c.q else "",
        filters=filters,
        visitor_hashes=sorted(ctx.crypto.identity_hash(v) for v in c.visitor_ids),
        agent_ids=sorted(c.agent_ids),
        start=c.from_.astimezone(timezone.utc).isoformat() if c.from_ else None,
        end=c.to.astimezone(timezone.utc).isoformat() if c.to else None,
    )


def _readable(ctx: TenantContext, stored: Stored) -> dict[str, Any]:
    out: dict[str, Any] = msgspec.to_builtins(stored)
    if stored.q_sealed:
        out["q"] = ctx.crypto.open_note(stored.q_sealed).decode()
    out.pop("q_sealed", None)
    return out


class Matcher:
    """Decides, for candidate conversation rows, which active hold (if any) protects each."""

    def __init__(self, rt: Runtime, ctx: TenantContext, holds: list[dict[str, Any]]) -> None:
        self.rt, self.ctx = rt, ctx
        self.holds = [(h["name"], msgspec.convert(json_column(h["criteria"]), Stored)) for h in holds]
        self._query_ids: dict[str, set[UUID]] = {}

    @property
    def uses_index(self) -> bool:
        return any(s.q_sealed for _, s in self.holds)

    async def _ids_for_query(self, sealed: str) -> set[UUID]:
        if sealed not in self._query_ids:
            q = self.ctx.crypto.open_note(sealed).decode()
            self._query_ids[sealed] = set(await all_matching_ids(self.rt, self.ctx, q, SearchFilters()))
        return self._query_ids[sealed]

    async def protecting(self, rows: list[dict[str, Any]]) -> dict[UUID, str]:
        held: dict[UUID, str] = {}
        for name, stored in self.holds:
            query_ids = await self._ids_for_query(stored.q_sealed) if stored.q_sealed else None
            for row in rows:
                if row["id"] not in held and _fits(stored, row) and (query_ids is None or row["id"] in query_ids):
                    held[row["id"]] = name
        return held


def _fits(c: Stored, row: dict[str, Any]) -> bool:
    tags, agents = set(json_column(row["tags"])), set(json_column(row["agent_ids"]))
    f = c.filters
    started = row["started_at"].astimezone(timezone.utc).isoformat()
    checks: list[Callable[[], bool]] = [
        lambda: "site" not in f or f["site"] == row["site"],
        lambda: "channel" not in f or f["channel"] == row["channel"],
        lambda: "language" not in f or (row["language"] or "").lower().split("-")[0] == f["language"].lower().split("-")[0],
        lambda: "tag" not in f or f["tag"] in tags,
        lambda: "agent" not in f or f["agent"] in agents,
        lambda: "visitor_hash" not in f or f["visitor_hash"] == row["visitor_hash"],
        lambda: "from" not in f or started >= datetime.fromisoformat(f["from"]).astimezone(timezone.utc).isoformat(),
        lambda: "to" not in f or started < datetime.fromisoformat(f["to"]).astimezone(timezone.utc).isoformat(),
        lambda: not c.visitor_hashes or row["visitor_hash"] in c.visitor_hashes,
        lambda: not c.agent_ids or bool(agents & set(c.agent_ids)),
        lambda: c.start is None or started >= c.start,
        lambda: c.end is None or started < c.end,
    ]
    return all(check() for check in checks)


async def active(tenant_id: UUID) -> list[dict[str, Any]]:
    return await LegalHold.select().where((LegalHold.tenant == tenant_id) & (LegalHold.status == "active")).order_by(LegalHold.created_at)


class HoldGuard:
    """Active legal holds, as a deletion guard (called inside the deletion transaction)."""

    async def protect(self, rt: Runtime, tenant_id: UUID, rows: list[dict[str, Any]], now: datetime) -> dict[UUID, Protection]:
        current = await active(tenant_id)
        if not current:
            return {}
        matcher = Matcher(rt, await tenant_context(rt, tenant_id), current)
        protected: dict[UUID, Protection] = {}
        if matcher.uses_index:
            # First what the index has not seen yet, then the query: a conversation that is not
            # pending now was indexed before its outbox row went, so the query below can match it.
            pending = await IndexOutbox.select(IndexOutbox.conversation).where(
                (IndexOutbox.tenant == tenant_id) & IndexOutbox.conversation.is_in([r["id"] for r in rows]) & (IndexOutbox.op == "upsert")
            )
            for p in pending:
                protected[p["conversation"]] = Protection(
                    "index_pending", "waiting for the index",
                    "not yet in the search index, which a legal hold's query needs; decided on the next run", lasting=False,
                )
            await rt.search.refresh()
        for cid, name in (await matcher.protecting([r for r in rows if r["id"] not in protected])).items():
            protected[cid] = Protection("legal_hold", name, f"legal hold {name!r}")
        return protected


async def create(rt: Runtime, principal: Principal, data: HoldIn, case: UUID | None = None) -> HoldOut:
    ctx = await tenant_context(rt, principal.tenant_id)
    data = msgspec.structs.replace(data, name=ctx.redacted(data.name), reason=ctx.redacted(data.reason))
    if data.criteria.q:
        try:
            parse(data.criteria.q)
        except QuerySyntaxError as exc:
            raise InvalidInput("the hold's query cannot be parsed", [FieldError("criteria.q", f"{exc.message} at position {exc.position}")]) from None
    criteria = data.criteria
    if errors := [*date_errors("criteria.", from_=criteria.from_, to=criteria.to),
                  *date_errors("criteria.filters.", from_=criteria.filters.from_, to=criteria.filters.to)]:
        raise InvalidInput("the hold's dates are out of range", errors)
    hold_id = uuid4()
    stored = _store(ctx, data.criteria)
    async with db.write_transaction():
        await ledger.lock_head(principal.tenant_id)  # serialises with deletion batches (deletion.py)
        if await LegalHold.exists().where((LegalHold.tenant == principal.tenant_id) & (LegalHold.name == data.name) & (LegalHold.status == "active")):
            raise Conflict(f"an active hold named {data.name!r} exists", field="name")
        await LegalHold.insert(
            LegalHold(id=hold_id, tenant=principal.tenant_id, name=data.name, reason=data.reason,
                      criteria=msgspec.json.encode(stored).decode(), created_by=principal.actor, case_id=case)
        )
        await ledger.append(principal.tenant_id, ledger.Entry(
            actor=principal.actor, action="hold.create", subject=str(hold_id),
            details={"name": data.name, "reason": data.reason, "criteria": msgspec.to_builtins(stored), **({"case": str(case)} if case else {})},
        ))
    return await get(rt, principal, hold_id, with_count=False)


def _out(ctx: TenantContext, row: dict[str, Any], covers: int | None) -> HoldOut:
    return HoldOut(
        id=row["id"], name=row["name"], reason=row["reason"], status=row["status"], created_by=row["created_by"],
        created_at=row["created_at"], criteria=_readable(ctx, msgspec.convert(json_column(row["criteria"]), Stored)),
        released_at=row["released_at"], release_reason=row["release_reason"], covers=covers, case=row["case_id"],
    )


async def count_covered(rt: Runtime, ctx: TenantContext, row: dict[str, Any]) -> int:
    m = Matcher(rt, ctx, [row])
    covered = 0

    def tenant_rows() -> Any:
        return Conversation.select(*CANDIDATE_COLUMNS).where(Conversation.tenant == ctx.tenant_id)

    async for rows in db.keyset_pages(tenant_rows, Conversation.id, SCAN_PAGE):
        covered += len(await m.protecting(rows))
    return covered


async def get(rt: Runtime, principal: Principal, hold_id: UUID, with_count: bool = True) -> HoldOut:
    ctx = await tenant_context(rt, principal.tenant_id)
    row = await LegalHold.select().where((LegalHold.id == hold_id) & (LegalHold.tenant == principal.tenant_id)).first()
    if row is None:
        raise NotFound(f"no hold {hold_id}")
    covers = await count_covered(rt, ctx, row) if with_count and row["status"] == "active" else None
    return _out(ctx, row, covers)


async def list_holds(rt: Runtime, principal: Principal) -> list[HoldOut]:
    ctx = await tenant_context(rt, principal.tenant_id)
    rows = await LegalHold.select().where(LegalHold.tenant == principal.tenant_id).order_by(LegalHold.created_at)
    return [_out(ctx, r, None) for r in rows]


async def release(rt: Runtime, principal: Principal, hold_id: UUID, reason: str) -> HoldOut:
    reason = (await tenant_context(rt, principal.tenant_id)).redacted(reason)
    async with db.write_transaction():
        await ledger.lock_head(principal.tenant_id)  # serialises with deletion batches (deletion.py)
        row = await LegalHold.select().where((LegalHold.id == hold_id) & (LegalHold.tenant == principal.tenant_id)).first()
        if row is None:
            raise NotFound(f"no hold {hold_id}")
        if row["status"] != "active":
            raise Conflict("the hold is already released", field="status")
        await LegalHold.update(
            {LegalHold.status: "released", LegalHold.released_at: datetime.now(timezone.utc), LegalHold.release_reason: reason}
        ).where(LegalHold.id == hold_id)
        await ledger.append(principal.tenant_id, ledger.Entry(
            actor=principal.actor, action="hold.release", subject=str(hold_id), details={"name": row["name"], "reason": reason},
        ))
    return await get(rt, principal, hold_id, with_count=False)
