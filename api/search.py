"""Search for compliance officers."""

from __future__ import annotations

from litestar import Controller, post
from litestar.params import JSONBody

from api.auth import requires
from api.deps import Caller, Rt
from archive.search.service import SearchRequest, SearchResponse, search


class SearchController(Controller):
    path = "/v1/search"
    tags = ["search"]

    @post("/", guards=[requires("compliance")], status_code=200, summary="Search conversations (ledgered)")
    async def run_search(self, rt: Rt, principal: Caller, data: JSONBody[SearchRequest]) -> SearchResponse:
        return await search(rt, principal, data)
