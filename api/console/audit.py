"""The audit ledger, a page at a time, with the chain's verification: what ``GET /v1/audit`` and
``GET /v1/audit/verify`` return, for the same roles."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from litestar import Controller, Request, get
from litestar.params import FromQuery, QueryParameter
from litestar.response import Template

from api.audit import MAX_SEQ
from api.auth import requires
from api.console.render import day_bound, is_htmx, page
from api.deps import Caller, Rt
from archive import ledger
from archive.errors import FieldError, InvalidInput
from archive.search.service import reveal_queries

PAGE_SIZE = 50


class AuditPages(Controller):
    path = "/audit"
    guards = [requires("compliance", "admin")]
    include_in_schema = False

    @get("/")
    async def entries(
        self, request: Request[Any, Any, Any], rt: Rt, principal: Caller,
        actor: FromQuery[str | None] = None, action: FromQuery[str | None] = None, subject: FromQuery[str | None] = None,
        date_from: Annotated[str | None, QueryParameter(name="from")] = None,
        date_to: Annotated[str | None, QueryParameter(name="to")] = None,
        after: Annotated[int, QueryParameter(ge=0, le=MAX_SEQ)] = 0,  # the API's bound: beyond it the database overflows
    ) -> Template:
        filters = {"actor": actor or "", "action": action or "", "subject": subject or "", "from": date_from or "", "to": date_to or ""}
        errors: list[FieldError] = []
        since, until = day_bound(date_from, "from", errors), day_bound(date_to, "to", errors, end=True)
        records: list[ledger.LedgerRecord] = []
        problem = InvalidInput("the filters are invalid", errors) if errors else None
        if problem is None:
            records = await ledger.list_entries(
                principal.tenant_id, actor=actor or None, action=action or None, subject=subject or None,
                since=since, until=until, after_seq=after, limit=PAGE_SIZE,
            )
            records = reveal_queries(await rt.tenants.context(principal.tenant_id), records)
        kept = {k: v for k, v in filters.items() if v}
        more_url = "/console/audit?" + urlencode({**kept, "after": records[-1].seq}) if len(records) == PAGE_SIZE else None
        context: dict[str, Any] = {"filters": filters, "records": records, "more_url": more_url, "problem": problem}
        target = request.headers.get("hx-target") if is_htmx(request) else None
        if target and target.startswith("more"):
            return page(request, "audit_more.html", section="audit", **context)
        return page(request, "audit.html", section="audit", **context)

    @get("/verify")
    async def verify(self, request: Request[Any, Any, Any], rt: Rt, principal: Caller) -> Template:
        report = await ledger.verify(rt, principal.tenant_id)
        return page(request, "audit_verify.html", section="audit", report=report, checked_at=rt.clock.now())
