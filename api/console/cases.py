"""Cases: the list, a new case, and a case's page with its saved searches, holds, review items and
exports — ``retention.cases`` and the hold and export functions, as ``/v1/cases`` uses them.

Changes are plain form posts answered by a redirect to the case (post/redirect/get; htmx boosts
them into in-place updates); a refused change shows the case again with the reason next to the
form that caused it. Running a saved search is a search (ledgered as one, and as a run of the
case's search); downloading an export is the API's download (ledgered).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Stream, Template

from api.auth import requires
from api.console.render import page
from api.deps import Caller, Rt
from archive.errors import DomainError
from archive.runtime import Runtime
from archive.tenancy import Principal
from archive.validation import convert
from retention import cases, exports, holds

FILTER_FIELDS = ("site", "channel", "agent", "tag", "language")


def _text(form: Any, name: str) -> str:
    return str(form.get(name) or "").strip()


def _filters(form: Any) -> dict[str, str]:
    return {k: _text(form, k) for k in FILTER_FIELDS if _text(form, k)}


async def _case_page(request: Request[Any, Any, Any], rt: Runtime, principal: Principal, case_id: UUID,
                     problem: DomainError | None = None, problem_at: str = "") -> Template:
    case = await cases.get(rt, principal, case_id)
    running = any(e.status in ("queued", "running") for e in case.exports)
    return page(request, "case.html", section="cases", status=problem.status if problem else 200, case=case, problem=problem,
                problem_at=problem_at, running=running)


class CasePages(Controller):
    path = "/cases"
    guards = [requires("compliance", "admin")]
    include_in_schema = False

    @get("/")
    async def list_page(self, request: Request[Any, Any, Any], principal: Caller, status: FromQuery[str | None] = None) -> Template:
        shown = status if status in ("open", "closed") else None
        return page(request, "cases.html", section="cases", cases=await cases.list_cases(principal, shown), status_filter=shown or "",
                    problem=None, values={})

    @post("/", status_code=303)
    async def create(self, request: Request[Any, Any, Any], rt: Rt, principal: Caller) -> Template | Redirect:
        form = await request.form()
        values = {"name": _text(form, "name"), "description": _text(form, "description")}
        try:
            created = await cases.create(rt, principal, convert(values, cases.CaseIn, "the case needs a name"))
        except DomainError as exc:
            return page(request, "cases.html", section="cases", status=exc.status, cases=await cases.list_cases(principal), status_filter="",
                        problem=exc, values=values)
        return Redirect(f"/console/cases/{created.id}", status_code=303)

    @get("/{case_id:str}")
    async def case_page(self, request: Request[Any, Any, Any], rt: Rt, principal: Caller, case_id: FromPath[UUID]) -> Template:
        return await _case_page(request, rt, principal, case_id)

    @get("/{case_id:str}/exports")
    async def exports_part(self, request: Request[Any, Any, Any], rt: Rt, principal: Caller, case_id: FromPath[UUID]) -> Template:
        """The exports section alone: the page polls it while an export is being built."""
        case = await cases.get(rt, principal, case_id)
        running = any(e.status in ("queued", "running") for e in case.exports)
        return page(request, "case_exports.html", section="cases", case=case, running=running, problem=None, problem_at="")

    async def _change(self, request: Request[Any, Any, Any], rt: Runtime, principal: Principal, case_id: UUID, where: str, change: Any) -> Template | Redirect:
        try:
            await change(await request.form())
        except DomainError as exc:
            return await _case_page(request, rt, principal, case_id, exc, where)
        return Redirect(f"/console/cases/{case_id}#{where}", status_code=303)

    @post("/{case_id:str}/close", status_code=303)
    async def close(self, request: Request[Any, Any, Any], rt: Rt, principal: Caller, case_id: FromPath[UUID]) -> Template | Redirect:
        async def change(form: Any) -> None:
            data = convert({"status": "closed", "reason": _text(form, "reason") or None}, cases.CasePatch, "closing a case needs a reason")
            await cases.update(rt, principal, case_id, data)
        return await self._change(request, rt, principal, case_id, "status", change)

    @post("/{case_id:str}/reopen", status_code=303)
    async def reopen(self, request: Request[Any, Any, Any], rt: Rt, principal: Caller, case_id: FromPath[UUID]) -> Template | Redirect:
        async def change(form: Any) -> None:
            await cases.update(rt, principal, case_id, cases.CasePatch(status="open", reason=_text(form, "reason") or None))
        return await self._change(request, rt, principal, case_id, "status", change)

    @post("/{case_id:str}/searches", status_code=303)
    async def add_search(self, request: Request[Any, Any, Any], rt: Rt, principal: Caller, case_id: FromPath[UUID]) -> Template | Redirect:
        async def change(form: Any) -> None:
            raw = {"name": _text(form, "name"), "q": _text(form, "q"), "filters": _filters(form)}
            await cases.add_search(rt, principal, case_id, convert(raw, cases.SavedSearchIn, "the saved search is invalid"))
        return await self._change(request, rt, principal, case_id, "searches", change)

    @post("/{case_id:str}/searches/{search_id:str}/remove", status_code=303)
    async def remove_search(self, request: Request[Any, Any, Any], rt: Rt, principal: Caller, case_id: FromPath[UUID],
                            search_id: FromPath[UUID]) -> Template | Redirect:
        async def change(_form: Any) -> None:
            await cases.remove_search(principal, case_id, search_id)
        return await self._change(request, rt, principal, case_id, "searches", change)

    @post("/{case_id:str}/searches/{search_id:str}/run", guards=[requires("compliance")], status_code=200)
    async def run_search(self, request: Request[Any, Any, Any], rt: Rt, principal: Caller, case_id: FromPath[UUID],
                         search_id: FromPath[UUID]) -> Template:
        """The saved search's first results, under it (ledgered as a search and as a run)."""
        result = await cases.run_search(rt, principal, case_id, search_id, cases.RunIn(size=10))
        return page(request, "case_run.html", section="cases", result=result, case_id=case_id, search_id=search_id)

    @post("/{case_id:str}/holds", status_code=303)
    async def add_hold(self, request: Request[Any, Any, Any], rt: Rt, principal: Caller, case_id: FromPath[UUID]) -> Template | Redirect:
        async def change(form: Any) -> None:
            search = _text(form, "search")
            raw: dict[str, Any] = {"name": _text(form, "name"), "reason": _text(form, "reason")}
            if search:
                raw["search"] = search
            else:
                raw["criteria"] = {"q": _text(form, "q"), "filters": _filters(form)}
            await cases.add_hold(rt, principal, case_id, convert(raw, cases.CaseHoldIn, "the hold is invalid"))
        return await self._change(request, rt, principal, case_id, "holds", change)

    @post("/{case_id:str}/holds/{hold_id:str}/release", status_code=303)
    async def release_hold(self, request: Request[Any, Any, Any], rt: Rt, principal: Caller, case_id: FromPath[UUID],
                           hold_id: FromPath[UUID]) -> Template | Redirect:
        async def change(form: Any) -> None:
            data = convert({"reason": _text(form, "reason")}, holds.ReleaseIn, "releasing a hold needs a reason")
            await holds.release(rt, principal, hold_id, data.reason)
        return await self._change(request, rt, principal, case_id, "holds", change)

    @post("/{case_id:str}/exports", guards=[requires("compliance")], status_code=303)
    async def add_export(self, request: Request[Any, Any, Any], rt: Rt, principal: Caller, case_id: FromPath[UUID]) -> Template | Redirect:
        async def change(form: Any) -> None:
            search = _text(form, "search")
            raw: dict[str, Any] = {"format": _text(form, "format") or "jsonl"}
            if search:
                raw["search"] = search
            else:
                raw |= {"q": _text(form, "q"), "filters": _filters(form)}
            await cases.add_export(rt, principal, case_id, convert(raw, cases.CaseExportIn, "the export is invalid"))
        return await self._change(request, rt, principal, case_id, "exports", change)

    @post("/{case_id:str}/reviews", status_code=303)
    async def add_reviews(self, request: Request[Any, Any, Any], rt: Rt, principal: Caller, case_id: FromPath[UUID]) -> Template | Redirect:
        async def change(form: Any) -> None:
            ids = [part for part in _text(form, "ids").replace(",", " ").split() if part]
            await cases.add_reviews(rt, principal, case_id, convert({"ids": ids}, cases.ReviewIdsIn, "name the review items by id"))
        return await self._change(request, rt, principal, case_id, "reviews", change)

    @post("/{case_id:str}/reviews/{review_id:str}/remove", status_code=303)
    async def remove_review(self, request: Request[Any, Any, Any], rt: Rt, principal: Caller, case_id: FromPath[UUID],
                            review_id: FromPath[UUID]) -> Template | Redirect:
        async def change(_form: Any) -> None:
            await cases.remove_review(principal, case_id, review_id)
        return await self._change(request, rt, principal, case_id, "reviews", change)


class ExportDownloads(Controller):
    path = "/exports"
    guards = [requires("compliance")]
    include_in_schema = False

    @get("/{export_id:str}/download", media_type="application/zip")
    async def download(self, rt: Rt, principal: Caller, export_id: FromPath[UUID]) -> Stream:
        """The signed zip, as ``GET /v1/exports/{id}/download`` streams it (ledgered)."""
        chunks, filename = await exports.download(rt, principal, export_id)
        return Stream(chunks, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{filename}"'})
