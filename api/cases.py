"""Cases over HTTP: a matter's saved searches, holds, review items and exports."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody, QueryParameter

from api.auth import requires
from api.deps import Caller, Rt
from archive.search.service import SearchResponse
from archive.supervision.reviews import ReviewOut
from retention import cases
from retention.exports import ExportOut
from retention.holds import HoldOut


class CaseController(Controller):
    path = "/v1/cases"
    tags = ["cases"]
    guards = [requires("compliance", "admin")]

    @post("/", summary="Open a case (a matter) with a name and a description (ledgered)")
    async def create_case(self, rt: Rt, principal: Caller, data: JSONBody[cases.CaseIn]) -> cases.CaseOut:
        return await cases.create(rt, principal, data)

    @get("/", summary="The tenant's cases with counts of what each gathers")
    async def list_cases(
        self, principal: Caller, status: Annotated[str | None, QueryParameter(description="open or closed")] = None,
    ) -> list[cases.CaseSummary]:
        return await cases.list_cases(principal, status)

    @get("/{case_id:str}", summary="A case with its saved searches, holds, review items and exports")
    async def get_case(self, rt: Rt, principal: Caller, case_id: FromPath[UUID]) -> cases.CaseOut:
        return await cases.get(rt, principal, case_id)

    @patch("/{case_id:str}", summary="Rename, redescribe, close (releases its holds; reason required) or reopen a case")
    async def update_case(self, rt: Rt, principal: Caller, case_id: FromPath[UUID], data: JSONBody[cases.CasePatch]) -> cases.CaseOut:
        return await cases.update(rt, principal, case_id, data)

    @delete("/{case_id:str}", summary="Delete a case that holds nothing (409 while any of its holds is active)")
    async def delete_case(self, rt: Rt, principal: Caller, case_id: FromPath[UUID]) -> None:
        await cases.delete(rt, principal, case_id)

    @post("/{case_id:str}/searches", summary="Save a search (query and filters) in the case")
    async def add_search(self, rt: Rt, principal: Caller, case_id: FromPath[UUID], data: JSONBody[cases.SavedSearchIn]) -> cases.SavedSearchOut:
        return await cases.add_search(rt, principal, case_id, data)

    @delete("/{case_id:str}/searches/{search_id:str}", summary="Remove a saved search from the case")
    async def remove_search(self, principal: Caller, case_id: FromPath[UUID], search_id: FromPath[UUID]) -> None:
        await cases.remove_search(principal, case_id, search_id)

    @post("/{case_id:str}/searches/{search_id:str}/run", status_code=200, guards=[requires("compliance")],
          summary="Run a saved search now (ledgered like any search)")
    async def run_search(self, rt: Rt, principal: Caller, case_id: FromPath[UUID], search_id: FromPath[UUID],
                         data: JSONBody[cases.RunIn]) -> SearchResponse:
        return await cases.run_search(rt, principal, case_id, search_id, data)

    @post("/{case_id:str}/holds", summary="Place a legal hold of the case, on criteria or on a saved search")
    async def add_hold(self, rt: Rt, principal: Caller, case_id: FromPath[UUID], data: JSONBody[cases.CaseHoldIn]) -> HoldOut:
        return await cases.add_hold(rt, principal, case_id, data)

    @post("/{case_id:str}/exports", status_code=202, guards=[requires("compliance")],
          summary="Request an export of the case (a query or a saved search); poll GET /v1/exports/{id}")
    async def add_export(self, rt: Rt, principal: Caller, case_id: FromPath[UUID], data: JSONBody[cases.CaseExportIn]) -> ExportOut:
        return await cases.add_export(rt, principal, case_id, data)

    @post("/{case_id:str}/reviews", status_code=200, summary="Attach review items to the case (all or none)")
    async def add_reviews(self, rt: Rt, principal: Caller, case_id: FromPath[UUID], data: JSONBody[cases.ReviewIdsIn]) -> list[ReviewOut]:
        return await cases.add_reviews(rt, principal, case_id, data)

    @delete("/{case_id:str}/reviews/{review_id:str}", summary="Detach a review item from the case")
    async def remove_review(self, principal: Caller, case_id: FromPath[UUID], review_id: FromPath[UUID]) -> None:
        await cases.remove_review(principal, case_id, review_id)
