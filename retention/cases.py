"""Cases: one legal matter's saved searches, legal holds, review items and exports, in one place.

A case is opened with a name and a description; what belongs to it is made through it (a saved
search, a hold, an export) or attached to it (review items), and says so in its own responses
(``"case": <id>``). Everything is ledgered with the case's id.

Closing a case releases its active holds, in the same transaction as the close and each with its
own ``hold.release`` entry carrying the closing reason, so a matter that is over stops protecting
its conversations from retention at once. A closed case can be reopened (its released holds stay
released: place new ones). A case cannot be deleted while it holds anything: while any of its
holds is active (close it first). Deleting a case removes the case and its saved searches; its
holds, exports and review items stay, no longer attached to any case.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

import msgspec

from archive import db, ledger
from archive.db import json_column
from archive.errors import Conflict, FieldError, InvalidInput, NotFound
from archive.query import QuerySyntaxError, parse
from archive.runtime import Runtime
from archive.search import service
from archive.search.service import SearchFilters, SearchRequest, SearchResponse, given_filters, ledgered_filters, opened_filters, stored_filters
from archive.supervision import reviews
from archive.supervision.tables import ReviewItem
from archive.tenancy import Principal, TenantContext, tenant_context
from retention import exports, holds
from retention.tables import CaseSearch, Export, LegalCase, LegalHold

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Description = Annotated[str, msgspec.Meta(max_length=10_000)]


class CaseIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    description: Description = ""


class CasePatch(msgspec.Struct, forbid_unknown_fields=True):
    """Rename, redescribe, close (with a reason: it is ledgered with every hold it releases) or
    reopen a case; absent fields stay as they are."""

    name: Name | None = None
    description: Description | None = None
    status: Literal["open", "closed"] | None = None
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)] | None = None


class SavedSearchIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    q: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    filters: SearchFilters = msgspec.field(default_factory=SearchFilters)


class SavedSearchOut(msgspec.Struct):
    id: UUID
    name: str
    q: str
    filters: dict[str, Any]
    created_by: str
    created_at: datetime
    last_run_at: datetime | None
    last_total: int | None


class RunIn(msgspec.Struct, forbid_unknown_fields=True):
    sort: Literal["relevance", "newest", "oldest"] = "relevance"
    size: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20
    cursor: str | None = None


class CaseHoldIn(msgspec.Struct, forbid_unknown_fields=True):
    """A hold of the case: on explicit criteria, or on what one of the case's saved searches
    matches (``search``), now and later."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    criteria: holds.HoldCriteria | None = None
    search: UUID | None = None


class CaseExportIn(msgspec.Struct, forbid_unknown_fields=True):
    """An export of the case: of a query and filters, or of one of the case's saved searches."""

    q: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    filters: SearchFilters = msgspec.field(default_factory=SearchFilters)
    search: UUID | None = None
    format: Literal["jsonl", "eml"] = "jsonl"


class ReviewIdsIn(msgspec.Struct, forbid_unknown_fields=True):
    ids: Annotated[list[UUID], msgspec.Meta(min_length=1, max_length=500)]


class CaseCounts(msgspec.Struct):
    searches: int
    holds: int
    active_holds: int
    reviews: int
    exports: int


class CaseSummary(msgspec.Struct):
    id: UUID
    name: str
    description: str
    status: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    closed_by: str | None
    closed_at: datetime | None
    close_reason: str | None
    counts: CaseCounts


class CaseOut(CaseSummary):
    """A case with everything it holds (the summary's fields first)."""

    searches: list[SavedSearchOut]
    holds: list[holds.HoldOut]
    reviews: list[reviews.ReviewOut]
    exports: list[exports.ExportOut]


def _check_query(q: str, path: str) -> None:
    try:
        parse(q)
    except QuerySyntaxError as exc:
        raise InvalidInput("the query cannot be parsed", [FieldError(path, f"{exc.message} at position {exc.position}")]) from None


async def _entry(tenant_id: UUID, principal: Principal, action: str, case_id: UUID, **details: Any) -> None:
    await ledger.append(tenant_id, ledger.Entry(actor=principal.actor, action=action, subject=str(case_id), details=details))


async def _case(tenant_id: UUID, case_id: UUID, *, open_only: bool = False) -> dict[str, Any]:
    row = await LegalCase.select().where((LegalCase.id == case_id) & (LegalCase.tenant == tenant_id)).first()
    if row is None:
        raise NotFound(f"no case {case_id}")
    if open_only and row["status"] != "open":
        raise Conflict("the case is closed; reopen it to add to it", field="status")
    return row


async def _counts(tenant_id: UUID, case_ids: list[UUID]) -> dict[UUID, CaseCounts]:
    def tally(rows: list[dict[str, Any]], key: str) -> dict[UUID, int]:
        counted: dict[UUID, int] = {}
        for row in rows:
            counted[row[key]] = counted.get(row[key], 0) + 1
        return counted

    if not case_ids:
        return {}
    searches = tally(await CaseSearch.select(CaseSearch.legal_case).where(CaseSearch.legal_case.is_in(case_ids)), "legal_case")
    hold_rows = await LegalHold.select(LegalHold.case_id, LegalHold.status).where((LegalHold.tenant == tenant_id) & LegalHold.case_id.is_in(case_ids))
    all_holds, active = tally(hold_rows, "case_id"), tally([r for r in hold_rows if r["status"] == "active"], "case_id")
    review_counts = tally(await ReviewItem.select(ReviewItem.case_id).where((ReviewItem.tenant == tenant_id) & ReviewItem.case_id.is_in(case_ids)), "case_id")
    export_counts = tally(await Export.select(Export.case_id).where((Export.tenant == tenant_id) & Export.case_id.is_in(case_ids)), "case_id")
    return {c: CaseCounts(searches.get(c, 0), all_holds.get(c, 0), active.get(c, 0), review_counts.get(c, 0), export_counts.get(c, 0)) for c in case_ids}


def _summary(row: dict[str, Any], counts: CaseCounts) -> CaseSummary:
    return CaseSummary(
        id=row["id"], name=row["name"], description=row["description"], status=row["status"], created_by=row["created_by"],
        created_at=row["created_at"], updated_at=row["updated_at"], closed_by=row["closed_by"], closed_at=row["closed_at"],
        close_reason=row["close_reason"], counts=counts,
    )


def _search_out(ctx: TenantContext, row: dict[str, Any]) -> SavedSearchOut:
    return SavedSearchOut(
        id=row["id"], name=row["name"], q=ctx.crypto.open_note(row["query_sealed"]).decode() if row["query_sealed"] else "",
        filters=opened_filters(ctx, json_column(row["filters"])), created_by=row["created_by"], created_at=row["created_at"], last_run_at=row["last_run_at"],
        last_total=row["last_total"],
    )


# --- the case itself -----------------------------------------------------------------------------


async def create(rt: Runtime, principal: Principal, data: CaseIn) -> CaseOut:
    ctx = await tenant_context(rt, principal.tenant_id)
    data = msgspec.structs.replace(data, name=ctx.redacted(data.name), description=ctx.redacted(data.description))
    case_id, now = uuid4(), rt.clock.now()
    async with db.write_transaction():
        await LegalCase.insert(LegalCase(id=case_id, tenant=principal.tenant_id, name=data.name, description=data.description,
                                         created_by=principal.actor, created_at=now, updated_at=now))
        await _entry(principal.tenant_id, principal, "case.create", case_id, name=data.name)
    return await get(rt, principal, case_id)


async def list_cases(principal: Principal, status: str | None = None) -> list[CaseSummary]:
    query = LegalCase.select().where(LegalCase.tenant == principal.tenant_id)
    if status:
        query = query.where(LegalCase.status == status)
    rows = await query.order_by(LegalCase.created_at)
    counts = await _counts(principal.tenant_id, [r["id"] for r in rows])
    return [_summary(r, counts[r["id"]]) for r in rows]


async def get(rt: Runtime, principal: Principal, case_id: UUID) -> CaseOut:
    row = await _case(principal.tenant_id, case_id)
    ctx = await tenant_context(rt, principal.tenant_id)
    searches = await CaseSearch.select().where(CaseSearch.legal_case == case_id).order_by(CaseSearch.created_at)
    hold_rows = await LegalHold.select(LegalHold.id).where((LegalHold.tenant == principal.tenant_id) & (LegalHold.case_id == case_id)).order_by(LegalHold.created_at)
    export_rows = await Export.select(Export.id).where((Export.tenant == principal.tenant_id) & (Export.case_id == case_id)).order_by(Export.created_at)
    summary = _summary(row, (await _counts(principal.tenant_id, [case_id]))[case_id])
    return CaseOut(
        **msgspec.structs.asdict(summary),
        searches=[_search_out(ctx, s) for s in searches],
        holds=[await holds.get(rt, principal, h["id"], with_count=False) for h in hold_rows],
        reviews=await reviews.for_case(principal.tenant_id, case_id),
        exports=[await exports.get(principal, e["id"]) for e in export_rows],
    )


async def update(rt: Runtime, principal: Principal, case_id: UUID, data: CasePatch) -> CaseOut:
    if data.status == "closed" and not data.reason:
        raise InvalidInput("closing a case releases its holds: say why", [FieldError("reason", "required when status is closed")])
    ctx = await tenant_context(rt, principal.tenant_id)
    data = msgspec.structs.replace(data, **{f: ctx.redacted(v) for f in ("name", "description", "reason") if (v := getattr(data, f))})
    now = rt.clock.now()
    async with db.write_transaction():
        await ledger.lock_head(principal.tenant_id)  # closing releases holds: serialise with deletion (deletion.py)
        row = await _case(principal.tenant_id, case_id)
        changes: dict[Any, Any] = {LegalCase.updated_at: now}
        changed: dict[str, Any] = {}
        for field, column in (("name", LegalCase.name), ("description", LegalCase.description)):
            value = getattr(data, field)
            if value is not None and value != row[field]:
                changes[column], changed[field] = value, value
        if changed:
            await LegalCase.update(changes).where(LegalCase.id == case_id)
            await _entry(principal.tenant_id, principal, "case.update", case_id, **changed)
        if data.status == "closed" and row["status"] == "open":
            await _close(rt, principal, case_id, data.reason or "", now)
        elif data.status == "open" and row["status"] == "closed":
            await LegalCase.update({LegalCase.status: "open", LegalCase.closed_by: None, LegalCase.closed_at: None, LegalCase.close_reason: None,
                                    LegalCase.updated_at: now}).where(LegalCase.id == case_id)
            await _entry(principal.tenant_id, principal, "case.reopen", case_id, reason=data.reason)
    return await get(rt, principal, case_id)


async def _close(rt: Runtime, principal: Principal, case_id: UUID, reason: str, now: datetime) -> None:
    """Release the case's active holds and close it, in the caller's transaction."""
    active = await LegalHold.select(LegalHold.id).where(
        (LegalHold.tenant == principal.tenant_id) & (LegalHold.case_id == case_id) & (LegalHold.status == "active"))
    for hold in active:
        await holds.release(rt, principal, hold["id"], f"case closed: {reason}")
    await LegalCase.update({LegalCase.status: "closed", LegalCase.closed_by: principal.actor, LegalCase.closed_at: now,
                            LegalCase.close_reason: reason, LegalCase.updated_at: now}).where(LegalCase.id == case_id)
    await _entry(principal.tenant_id, principal, "case.close", case_id, reason=reason, released_holds=[str(h["id"]) for h in active])


async def delete(rt: Runtime, principal: Principal, case_id: UUID) -> None:
    async with db.write_transaction():
        await ledger.lock_head(principal.tenant_id)  # no hold of the case appears between the check and the delete
        row = await _case(principal.tenant_id, case_id)
        held = await LegalHold.count().where((LegalHold.tenant == principal.tenant_id) & (LegalHold.case_id == case_id) & (LegalHold.status == "active"))
        if held:
            raise Conflict(f"the case still holds {held} active legal hold(s); close it first (closing releases them)", field="status")
        await LegalHold.update({LegalHold.case_id: None}).where((LegalHold.tenant == principal.tenant_id) & (LegalHold.case_id == case_id))
        await Export.update({Export.case_id: None}).where((Export.tenant == principal.tenant_id) & (Export.case_id == case_id))
        await ReviewItem.update({ReviewItem.case_id: None}).where((ReviewItem.tenant == principal.tenant_id) & (ReviewItem.case_id == case_id))
        await LegalCase.delete().where(LegalCase.id == case_id)
        await _entry(principal.tenant_id, principal, "case.delete", case_id, name=row["name"])


# --- what a case gathers -------------------------------------------------------------------------


async def add_search(rt: Runtime, principal: Principal, case_id: UUID, data: SavedSearchIn) -> SavedSearchOut:
    _check_query(data.q, "q")
    ctx = await tenant_context(rt, principal.tenant_id)
    data = msgspec.structs.replace(data, name=ctx.redacted(data.name))
    search_id, now = uuid4(), rt.clock.now()
    sealed = ctx.crypto.seal_note(data.q.encode()) if data.q else ""
    async with db.write_transaction():
        await _case(principal.tenant_id, case_id, open_only=True)
        await CaseSearch.insert(CaseSearch(id=search_id, tenant=principal.tenant_id, legal_case=case_id, name=data.name, query_sealed=sealed,
                                           filters=msgspec.json.encode(stored_filters(ctx, data.filters)).decode(), created_by=principal.actor, created_at=now))
        await _entry(principal.tenant_id, principal, "case.search.add", case_id, search=str(search_id), name=data.name, query_sealed=sealed,
                     filters=ledgered_filters(ctx, data.filters))
    return _search_out(ctx, await _saved(principal.tenant_id, case_id, search_id))


async def _saved(tenant_id: UUID, case_id: UUID, search_id: UUID) -> dict[str, Any]:
    row = await CaseSearch.select().where((CaseSearch.id == search_id) & (CaseSearch.legal_case == case_id) & (CaseSearch.tenant == tenant_id)).first()
    if row is None:
        raise NotFound(f"no saved search {search_id} in case {case_id}")
    return row


async def remove_search(principal: Principal, case_id: UUID, search_id: UUID) -> None:
    async with db.write_transaction():
        await _case(principal.tenant_id, case_id)
        await _saved(principal.tenant_id, case_id, search_id)
        await CaseSearch.delete().where(CaseSearch.id == search_id)
        await _entry(principal.tenant_id, principal, "case.search.remove", case_id, search=str(search_id))


async def _criteria(rt: Runtime, principal: Principal, case_id: UUID, search_id: UUID) -> tuple[str, SearchFilters]:
    ctx = await tenant_context(rt, principal.tenant_id)
    saved = _search_out(ctx, await _saved(principal.tenant_id, case_id, search_id))
    return saved.q, msgspec.convert(saved.filters, SearchFilters)


async def run_search(rt: Runtime, principal: Principal, case_id: UUID, search_id: UUID, data: RunIn) -> SearchResponse:
    """Run a saved search now (ledgered as a search, and as a run of the case's search)."""
    await _case(principal.tenant_id, case_id)
    q, filters = await _criteria(rt, principal, case_id, search_id)
    result = await service.search(rt, principal, SearchRequest(q=q, filters=filters, sort=data.sort, size=data.size, cursor=data.cursor))
    async with db.write_transaction():
        await CaseSearch.update({CaseSearch.last_run_at: rt.clock.now(), CaseSearch.last_total: result.total}).where(CaseSearch.id == search_id)
        await _entry(principal.tenant_id, principal, "case.search.run", case_id, search=str(search_id), total=result.total)
    return result


async def add_hold(rt: Runtime, principal: Principal, case_id: UUID, data: CaseHoldIn) -> holds.HoldOut:
    if (data.criteria is None) == (data.search is None):
        raise InvalidInput("a case's hold is on criteria or on a saved search", [FieldError("criteria", "give criteria or search, one of them")])
    await _case(principal.tenant_id, case_id, open_only=True)
    criteria = data.criteria
    if data.search is not None:
        q, filters = await _criteria(rt, principal, case_id, data.search)
        criteria = holds.HoldCriteria(q=q, filters=filters)
    assert criteria is not None
    return await holds.create(rt, principal, holds.HoldIn(name=data.name, reason=data.reason, criteria=criteria), case=case_id)


async def add_export(rt: Runtime, principal: Principal, case_id: UUID, data: CaseExportIn) -> exports.ExportOut:
    await _case(principal.tenant_id, case_id, open_only=True)
    q, filters = data.q, data.filters
    if data.search is not None:
        if data.q or given_filters(data.filters):
            raise InvalidInput("an export is of a saved search or of a query, not both", [FieldError("search", "leave q and filters out")])
        q, filters = await _criteria(rt, principal, case_id, data.search)
    return await exports.create(rt, principal, exports.ExportIn(q=q, filters=filters, format=data.format), case=case_id)


async def add_reviews(rt: Runtime, principal: Principal, case_id: UUID, data: ReviewIdsIn) -> list[reviews.ReviewOut]:
    """Attach review items to the case, all of them or none (an item belongs to one case)."""
    ids = list(dict.fromkeys(data.ids))
    async with db.write_transaction():
        await _case(principal.tenant_id, case_id, open_only=True)
        rows = {r["id"]: r for r in await ReviewItem.select(ReviewItem.id, ReviewItem.case_id).where(
            (ReviewItem.tenant == principal.tenant_id) & ReviewItem.id.is_in(ids))}
        missing = [FieldError(f"ids[{i}]", f"no review item {rid}") for i, rid in enumerate(ids) if rid not in rows]
        if missing:
            raise NotFound("some review items do not exist; nothing was attached", missing)
        elsewhere = [FieldError(f"ids[{i}]", f"belongs to case {rows[rid]['case_id']}") for i, rid in enumerate(ids)
                     if rows[rid]["case_id"] not in (None, case_id)]
        if elsewhere:
            raise reviews.ItemConflicts("some review items belong to another case; nothing was attached", elsewhere)
        await ReviewItem.update({ReviewItem.case_id: case_id}).where(ReviewItem.id.is_in(ids))
        await _entry(principal.tenant_id, principal, "case.review.add", case_id, reviews=[str(i) for i in ids])
    return [r for r in await reviews.for_case(principal.tenant_id, case_id) if r.id in set(ids)]


async def remove_review(principal: Principal, case_id: UUID, review_id: UUID) -> None:
    async with db.write_transaction():
        await _case(principal.tenant_id, case_id)
        if not await ReviewItem.exists().where((ReviewItem.id == review_id) & (ReviewItem.tenant == principal.tenant_id) & (ReviewItem.case_id == case_id)):
            raise NotFound(f"review item {review_id} is not in case {case_id}")
        await ReviewItem.update({ReviewItem.case_id: None}).where(ReviewItem.id == review_id)
        await _entry(principal.tenant_id, principal, "case.review.remove", case_id, review=str(review_id))
