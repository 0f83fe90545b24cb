"""Search for compliance officers."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, post
from litestar.params import JSONBody

from api.auth import requires
from archive.search.service import SearchRequest, SearchResponse, search
from archive.tenancy import Principal


class SearchController(Controller):
    path = "/v1/search"
    tags = ["search"]

    @post("/", guards=[requires("compliance")], status_code=200, summary="Search conversations (ledgered)")
    async def run_search(self, request: Request[Principal, Any, Any], data: JSONBody[SearchRequest]) -> SearchResponse:
        return await search(request.app.state.runtime, request.user, data)
