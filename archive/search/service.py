"""``POST /v1/search``: parse, plan, ask the backend, then decrypt the hits to highlight them.

Highlights are made after decryption by re-running the analyzer over the hit's own messages, so
the index never needs text. Each search is a ledger entry: who searched, the filters, the sort,
how many matched — and the query text sealed with the tenant's key (search terms can name people;
the audit API unseals them for compliance and admin readers).
"""

from __future__ import annotations

import base64
import html
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec

from archive import ledger
from archive.analysis import highlight_terms, primary_language
from archive.errors import FieldError, InvalidInput
from archive.limits import MAX_QUERY_CHARS, MAX_RESULT_WINDOW, date_errors, date_problem
from archive.query import Parsed, QuerySyntaxError, parse, relax_for_typos
from archive.runtime import Runtime
from archive.search import indexing
from archive.search.languages import tenant_languages
from archive.search.plan import (
    Cursor,
    Facet,
    FieldIs,
    Plan,
    StartedIn,
    TypoToleranceOff,
    and_filters,
    compile_query,
    field_is,
    iso_utc,
    positive_paths,
    positive_tokens,
)
from archive.tenancy import Principal, TenantContext, tenant_context
from archive.transcripts import load_many

MAX_HIGHLIGHTS = 3
FRAGMENT_CHARS = 160


class SearchFilters(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    site: str | None = None
    channel: str | None = None
    agent: str | None = None
    visitor: str | None = None
    tag: str | None = None
    language: str | None = None
    from_: Annotated[datetime, msgspec.Meta(tz=True)] | None = msgspec.field(default=None, name="from")
    to: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


def given_filters(filters: SearchFilters) -> dict[str, Any]:
    """The filters a request set, as plain values (those it left out are not there)."""
    return {k: v for k, v in msgspec.to_builtins(filters).items() if v is not None}


def stored_filters(ctx: TenantContext, filters: SearchFilters) -> dict[str, Any]:
    """Filters as saved searches and export criteria keep them: the visitor id sealed under the
    tenant key (``visitor_sealed``), as everywhere else a visitor id is kept only keyed or sealed."""
    stored = given_filters(filters)
    if "visitor" in stored:
        stored["visitor_sealed"] = ctx.crypto.seal_note(str(stored.pop("visitor")).encode())
    return stored


def opened_filters(ctx: TenantContext, stored: dict[str, Any]) -> dict[str, Any]:
    """The filters ``stored_filters`` kept, as they were given (rows written before the visitor id
    was sealed carry it in clear and are read as they are)."""
    opened = dict(stored)
    if "visitor_sealed" in opened:
        opened["visitor"] = ctx.crypto.open_note(opened.pop("visitor_sealed")).decode()
    return opened


def ledgered_filters(ctx: TenantContext, filters: SearchFilters) -> dict[str, Any]:
    """Filters as a ledger entry names them: the visitor as a short keyed hash (as ``search`` does)."""
    shown = given_filters(filters)
    if shown.get("visitor"):
        shown["visitor"] = "hash:" + ctx.crypto.identity_hash(str(shown["visitor"]))[:16]
    return shown


class SearchRequest(msgspec.Struct, forbid_unknown_fields=True):
    q: Annotated[str, msgspec.Meta(max_length=MAX_QUERY_CHARS)] = ""
    filters: SearchFilters = msgspec.field(default_factory=SearchFilters)
    sort: Literal["relevance", "newest", "oldest"] = "relevance"
    size: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20
    cursor: str | None = None
    # Counts over the whole result, computed only for the facets named here (they cost a pass
    # over every match).
    facets: Annotated[list[Facet], msgspec.Meta(
        description="Facets to count over the whole result (top 50 values; day: per-day histogram). None unless named here.",
    )] = []


class Highlight(msgspec.Struct):
    message: int
    sender: str
    fragment: str  # HTML-escaped text with <mark>…</mark> around matched words


class AgentRef(msgspec.Struct):
    id: str
    name: str | None = None


class SearchHit(msgspec.Struct):
    id: UUID
    external_id: str
    score: float
    started_at: datetime
    site: str
    channel: str
    agents: list[AgentRef]
    visitor_id: str
    language: str | None
    highlights: list[Highlight]


class SearchResponse(msgspec.Struct):
    total: int
    hits: list[SearchHit]
    facets: dict[str, dict[str, int]]  # the facets the request named ({} when none)
    next_cursor: str | None
    # True when the query as typed found nothing and these hits come from retrying its words of
    # five letters or more with typo tolerance (tenants that have it on).
    typo_tolerant: bool = False


def _encode_cursor(cursor: Cursor) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(cursor)).decode().rstrip("=")


def _decode_cursor(text: str | None) -> Cursor:
    if not text:
        return Cursor()
    try:
        cursor = msgspec.json.decode(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), type=Cursor)
        # Cursors are not signed: every field is checked as if a client wrote it, because one could.
        if not 0 <= cursor.offset <= MAX_RESULT_WINDOW:
            raise ValueError("offset out of range")
        if cursor.started_at is not None:
            if date_problem(datetime.fromisoformat(cursor.started_at.replace("Z", "+00:00"))) or cursor.conversation is None:
                raise ValueError("position out of range")
            UUID(cursor.conversation)
    except (ValueError, msgspec.DecodeError, msgspec.ValidationError):
        raise InvalidInput("the cursor is not one this API issued", [FieldError("cursor", "pass next_cursor back unchanged")]) from None
    return cursor


def _filter_nodes(filters: SearchFilters, ctx: TenantContext) -> list[Any]:
    nodes: list[Any] = []
    for name, field in (("site", "site"), ("channel", "channel"), ("agent", "agent"), ("tag", "tag"), ("language", "lang")):
        value = getattr(filters, name)
        if value:
            nodes.append(field_is(field, value))
    if filters.visitor:
        nodes.append(FieldIs("visitor", ctx.crypto.identity_hash(filters.visitor)))
    if filters.from_ or filters.to:
        nodes.append(StartedIn(filters.from_, filters.to))
    return nodes


def _parse(request: SearchRequest) -> Parsed:
    try:
        return parse(request.q)
    except QuerySyntaxError as exc:
        raise InvalidInput(f"the query cannot be parsed: {exc}", [FieldError("q", f"{exc.message} at position {exc.position}")]) from None


async def plan_for(rt: Runtime, ctx: TenantContext, request: SearchRequest, parsed: Parsed | None = None) -> Plan:
    parsed = parsed or _parse(request)
    languages = await tenant_languages(rt, ctx)
    if request.filters.language:
        languages = sorted({*languages, primary_language(request.filters.language)})
    an = indexing.analyzer(ctx)
    try:
        tree = compile_query(parsed.tree, an, languages, ctx.crypto.identity_hash)
    except TypoToleranceOff as exc:
        raise InvalidInput(f"the query cannot be run: {exc}", [FieldError("q", f"{exc} at position {exc.position}")]) from None
    return Plan(
        tenant_id=ctx.tenant_id, tree=and_filters(tree, _filter_nodes(request.filters, ctx)), senders=parsed.senders,
        sort=request.sort, size=request.size, cursor=_decode_cursor(request.cursor), facets=tuple(dict.fromkeys(request.facets)),
    )


def _highlights(ctx: TenantContext, stored: Any, wanted: set[str], paths: tuple[str, ...], senders: tuple[str, ...],
                seen: dict[str, dict[str, bool]]) -> list[Highlight]:
    """Up to MAX_HIGHLIGHTS messages of one hit; ``seen`` caches each word's answer per language
    across the hits of one search (function words recur in every message)."""
    if not wanted and not paths:
        return []
    an = indexing.analyzer(ctx)
    language = indexing.document_language(stored, ctx)
    memo = seen.setdefault(language, {})
    out: list[Highlight] = []
    for index, message in enumerate(stored.messages):
        if senders and message.sender.role not in senders:
            continue
        spans = highlight_terms(an, message.text, language, wanted, paths, memo)
        if not spans:
            continue
        out.append(Highlight(index, message.sender.role, _fragment(message.text, spans)))
        if len(out) == MAX_HIGHLIGHTS:
            break
    return out


def _fragment(text: str, spans: list[tuple[int, int]]) -> str:
    start = max(0, spans[0][0] - FRAGMENT_CHARS // 3)
    end = min(len(text), start + FRAGMENT_CHARS)
    pieces, cursor = [], start
    for s, e in spans:
        if s < start or e > end:
            continue
        pieces.append(html.escape(text[cursor:s]))
        pieces.append(f"<mark>{html.escape(text[s:e])}</mark>")
        cursor = e
    pieces.append(html.escape(text[cursor:end]))
    return ("…" if start > 0 else "") + "".join(pieces) + ("…" if end < len(text) else "")


async def search(rt: Runtime, principal: Principal, request: SearchRequest) -> SearchResponse:
    if errors := date_errors("filters.", from_=request.filters.from_, to=request.filters.to):
        raise InvalidInput("the search filters are out of range", errors)
    ctx = await tenant_context(rt, principal.tenant_id)
    parsed = _parse(request)
    plan = await plan_for(rt, ctx, request, parsed)
    page = await rt.search.search(plan)
    relaxed = relax_for_typos(parsed.tree) if page.total == 0 and ctx.settings.typo_tolerance else None
    if relaxed is not None:
        retry = await plan_for(rt, ctx, request, Parsed(tree=relaxed, senders=parsed.senders))
        retried = await rt.search.search(retry)
        if retried.total:
            plan, page = retry, retried
        else:
            relaxed = None
    wanted, paths = positive_tokens(plan.tree), positive_paths(plan.tree)
    seen: dict[str, dict[str, bool]] = {}
    hits: list[SearchHit] = []
    # Conversations deleted or shredded since they were indexed are skipped: the index catches up.
    loaded = await load_many(ctx, [h.conversation_id for h in page.hits])
    for scored in page.hits:
        if scored.conversation_id not in loaded:
            continue
        _, stored = loaded[scored.conversation_id]
        hits.append(
            SearchHit(
                id=scored.conversation_id, external_id=stored.external_id, score=round(scored.score, 4),
                started_at=stored.started_at, site=stored.site, channel=stored.channel,
                agents=[AgentRef(a.id, a.name) for a in stored.agents], visitor_id=stored.visitor.id,
                language=stored.language, highlights=_highlights(ctx, stored, wanted, paths, plan.senders, seen),
            )
        )
    next_cursor = None
    if len(page.hits) == plan.size:
        if plan.sort == "relevance":
            next_cursor = _encode_cursor(Cursor(offset=plan.cursor.offset + plan.size))
        else:
            last = page.hits[-1]
            next_cursor = _encode_cursor(Cursor(started_at=iso_utc(last.started_at), conversation=str(last.conversation_id)))
    sealed = ctx.crypto.seal_note(request.q.encode()) if request.q else ""
    filters = msgspec.structs.asdict(request.filters)
    if filters.get("visitor"):
        filters["visitor"] = "hash:" + ctx.crypto.identity_hash(filters["visitor"])[:16]
    await ledger.append(
        principal.tenant_id,
        ledger.Entry(
            actor=principal.actor, action="search",
            details={"query_sealed": sealed, "filters": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in filters.items() if v is not None},
                     "sort": request.sort, "total": page.total, **({"typo_tolerant": True} if relaxed else {})},
        ),
    )
    return SearchResponse(total=page.total, hits=hits, facets=page.facets, next_cursor=next_cursor, typo_tolerant=relaxed is not None)


async def all_matching_ids(rt: Runtime, ctx: TenantContext, q: str, filters: SearchFilters, page_size: int = 1000) -> list[UUID]:
    """Every conversation a query and filters match, oldest first (exports, legal holds)."""
    request = SearchRequest(q=q, filters=filters, sort="oldest", size=1)
    plan = await plan_for(rt, ctx, request)
    backend = rt.search
    ids: list[UUID] = []
    cursor = Cursor()
    while True:
        page = await backend.search(msgspec.structs.replace(plan, size=page_size, cursor=cursor))
        ids.extend(h.conversation_id for h in page.hits)
        if len(page.hits) < page_size:
            return ids
        last = page.hits[-1]
        cursor = Cursor(started_at=iso_utc(last.started_at), conversation=str(last.conversation_id))


def reveal_queries(ctx: TenantContext, records: list[ledger.LedgerRecord]) -> list[ledger.LedgerRecord]:
    """For audit readers: add the unsealed ``query`` next to ``query_sealed`` on search entries."""
    for record in records:
        sealed = record.details.get("query_sealed") if record.action == "search" else None
        if sealed:
            try:
                record.details = {**record.details, "query": ctx.crypto.open_note(sealed).decode()}
            except Exception:
                record.details = {**record.details, "query": None}
    return records
