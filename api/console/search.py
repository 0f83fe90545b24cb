"""Search and the conversation view: the API's domain functions, rendered.

A search here is ``archive.search.service.search`` with the same request the API validates, so
it is ledgered exactly as ``POST /v1/search`` is (every page of results is one entry, as every
API call with a cursor is); opening a conversation is ``archive.transcripts.read``, the read
``GET /v1/transcripts/{id}`` ledgers. Checking the query's syntax while it is typed parses it
only: nothing is searched, so nothing is ledgered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote, urlencode
from uuid import UUID

from litestar import Controller, Request, Response, get
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Template
from markupsafe import Markup, escape

from api.auth import requires
from api.console.render import day_bound, is_htmx, page
from api.console.security import safe_next
from api.deps import Caller, Rt
from archive import transcripts
from archive.errors import FieldError, InvalidInput
from archive.query import QuerySyntaxError, parse
from archive.search.service import SearchRequest, SearchResponse, search
from archive.validation import convert

FACETS = ("site", "channel", "agent", "tag", "language", "day")
PAGE_SIZE = 25
FILTERS = ("site", "channel", "agent", "tag", "language", "visitor")
FACET_FILTER = {"site": "site", "channel": "channel", "agent": "agent", "tag": "tag", "language": "language"}
Sort = Literal["relevance", "newest", "oldest"]


def syntax_error(q: str) -> dict[str, Any] | None:
    """Where the query stops parsing, for the page to point at (None: it parses)."""
    try:
        parse(q)
    except QuerySyntaxError as exc:
        start = min(exc.position, len(q))
        end = start
        while end < len(q) and not q[end].isspace():
            end += 1
        shown = Markup(
            escape(q[:start]) + Markup('<mark class="syntax-at">') + (escape(q[start:end]) or Markup("&#8203;")) + Markup("</mark>") + escape(q[end:])
        )
        return {"message": exc.message, "position": exc.position, "column": exc.position + 1, "shown": shown}
    return None


class Criteria:
    """The search a page shows, from its address: the query, the filters, the sort."""

    def __init__(self, q: str | None, filters: dict[str, str], date_from: str, date_to: str, sort: Sort) -> None:
        self.q = q
        self.filters = {k: v for k, v in filters.items() if v}
        self.date_from = date_from
        self.date_to = date_to
        self.sort = sort

    @property
    def submitted(self) -> bool:
        return self.q is not None or bool(self.filters) or bool(self.date_from or self.date_to)

    def params(self, **changes: str | None) -> dict[str, str]:
        base: dict[str, str | None] = {"q": self.q or "", **self.filters, "from": self.date_from, "to": self.date_to, "sort": self.sort}
        base.update(changes)
        return {k: v for k, v in base.items() if v}

    def url(self, **changes: str | None) -> str:
        return "/console/search?" + urlencode(self.params(**changes))

    def request(self, cursor: str | None) -> SearchRequest:
        """The API's request, validated as the API validates it (every bad field at once)."""
        errors: list[FieldError] = []
        raw_filters: dict[str, Any] = dict(self.filters)
        raw_filters["from"] = day_bound(self.date_from, "from", errors)
        raw_filters["to"] = day_bound(self.date_to, "to", errors, end=True)  # "to" includes its day
        if errors:
            raise InvalidInput("the search filters are invalid", errors)
        raw = {"q": self.q or "", "filters": {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in raw_filters.items() if v}, "sort": self.sort, "size": PAGE_SIZE, "cursor": cursor,
               # The refine panel is drawn with the first page only; later pages (infinite scroll) skip the counting.
               "facets": [] if cursor else list(FACETS)}
        return convert(raw, SearchRequest, detail="the search is invalid")


def _criteria(q: str | None, site: str | None, channel: str | None, agent: str | None, tag: str | None, language: str | None,
              visitor: str | None, date_from: str | None, date_to: str | None, sort: Sort) -> Criteria:
    filters = {"site": site or "", "channel": channel or "", "agent": agent or "", "tag": tag or "", "language": language or "", "visitor": visitor or ""}
    return Criteria(q, filters, date_from or "", date_to or "", sort)


class SearchPages(Controller):
    path = "/search"
    guards = [requires("compliance")]
    include_in_schema = False

    @get("/")
    async def search_page(
        self, request: Request[Any, Any, Any], rt: Rt, principal: Caller,
        q: FromQuery[str | None] = None, site: FromQuery[str | None] = None, channel: FromQuery[str | None] = None,
        agent: FromQuery[str | None] = None, tag: FromQuery[str | None] = None, language: FromQuery[str | None] = None,
        visitor: FromQuery[str | None] = None,
        date_from: Annotated[str | None, QueryParameter(name="from")] = None,
        date_to: Annotated[str | None, QueryParameter(name="to")] = None,
        sort: FromQuery[Sort] = "relevance", cursor: FromQuery[str | None] = None,
    ) -> Template:
        criteria = _criteria(q, site, channel, agent, tag, language, visitor, date_from, date_to, sort)
        context: dict[str, Any] = {"criteria": criteria, "result": None, "syntax": None, "problem": None, "facet_filter": FACET_FILTER}
        if criteria.submitted:
            context["syntax"] = syntax_error(criteria.q or "")
            if context["syntax"] is None:
                try:
                    result: SearchResponse = await search(rt, principal, criteria.request(cursor))
                    context["result"] = result
                    context["more_url"] = criteria.url(cursor=result.next_cursor) if result.next_cursor else None
                except InvalidInput as exc:
                    context["problem"] = exc
        target = request.headers.get("hx-target") if is_htmx(request) else None
        if target and target.startswith("more"):
            return page(request, "search_more.html", section="search", **context)
        if target == "results":
            # The address bar shows the search as its canonical address (no empty fields).
            return page(request, "search_results.html", section="search", headers={"HX-Push-Url": criteria.url()}, **context)
        return page(request, "search.html", section="search", **context)

    @get("/syntax")
    async def check_syntax(self, request: Request[Any, Any, Any], q: FromQuery[str] = "") -> Template:
        """Parse only: the error, positioned, while the query is typed (nothing is ledgered)."""
        return page(request, "search_syntax.html", section="search", syntax=syntax_error(q))


class ConversationPages(Controller):
    path = "/conversations"
    guards = [requires("compliance")]
    include_in_schema = False

    @get("/{conversation_id:str}")
    async def conversation(
        self, request: Request[Any, Any, Any], rt: Rt, principal: Caller, conversation_id: FromPath[UUID], back: FromQuery[str | None] = None,
        revision: Annotated[int | None, QueryParameter(ge=1)] = None,
    ) -> Template:
        """One conversation, its latest revision or ``revision`` (the read is ledgered as the API's)."""
        conversation = await transcripts.read(rt, principal, conversation_id, revision)
        history = await transcripts.list_revisions(rt, principal, conversation_id) if conversation.revisions > 1 else None
        return page(
            request, "conversation.html", section="search", conversation=conversation, read_at=rt.clock.now(), actor=principal.actor,
            back=safe_next(back) if back else None, history=history,
        )

    @get("/{conversation_id:str}/files/{sha256:str}")
    async def attachment(self, rt: Rt, principal: Caller, conversation_id: FromPath[UUID], sha256: FromPath[str]) -> Response[bytes]:
        """A stored attachment file (ledgered as ``read.file``), always as a download: whatever the
        platform said it is, it is never shown inside the console's origin."""
        data, found = await transcripts.read_file(rt, principal, conversation_id, sha256.lower())
        name = found.name or sha256
        fallback = "".join(ch if ch.isascii() and ch.isprintable() and ch not in '"\\' else "_" for ch in name)
        return Response(data, media_type="application/octet-stream",
                        headers={"Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"})
