"""Redaction rescans over HTTP: apply today's detectors to what is already stored (archive/rescan.py)."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody

from api.auth import requires
from api.deps import Caller, Rt
from archive import rescan


class RedactionController(Controller):
    path = "/v1/redaction"
    tags = ["redaction"]
    guards = [requires("admin")]

    @post("/rescans", status_code=202,
          summary="Rescan stored conversations with the current detectors (a job; poll GET /v1/redaction/rescans/{id}); 409 while one runs")
    async def create_rescan(self, rt: Rt, principal: Caller, data: JSONBody[rescan.RescanIn]) -> rescan.RescanOut:
        since = rescan.parse_since(data.since)
        return await rescan.create(rt, principal.tenant_id, principal.actor, since=since, dry_run=data.dry_run)

    @get("/rescans", summary="The tenant's rescans, newest first")
    async def list_rescans(self, principal: Caller) -> list[rescan.RescanOut]:
        return await rescan.listing(principal.tenant_id)

    @get("/rescans/{rescan_id:str}", summary="State and progress of a rescan: conversations scanned and changed, counts per kind")
    async def get_rescan(self, principal: Caller, rescan_id: FromPath[UUID]) -> rescan.RescanOut:
        return await rescan.get(principal.tenant_id, rescan_id)
