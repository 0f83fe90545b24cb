"""Retention policies, sweeps, legal holds, erasure and exports over HTTP."""

from __future__ import annotations

from uuid import UUID

from litestar import Controller, get, post, put
from litestar.params import FromPath, JSONBody
from litestar.response import Stream

from api.auth import requires
from api.deps import Caller, Rt
from api.openapi import problems
from archive.search import indexing
from retention import erasure, exports, holds, policies, sweep


class RetentionController(Controller):
    path = "/v1/retention"
    tags = ["retention"]

    @get("/policies", guards=[requires("compliance", "admin")], summary="The tenant's retention policy")
    async def get_policy(self, principal: Caller) -> policies.PolicyOut:
        return await policies.current(principal.tenant_id)

    @put("/policies", guards=[requires("compliance", "admin")], summary="Replace the retention policy (ledgered)")
    async def put_policy(self, principal: Caller, data: JSONBody[policies.PolicyIn]) -> policies.PolicyOut:
        return await policies.put(principal, data)

    @post("/preview", guards=[requires("compliance", "admin")], status_code=200, summary="What a sweep would delete now, per rule, and what each hold protects")
    async def preview(self, rt: Rt, principal: Caller) -> sweep.SweepReport:
        return await sweep.sweep_tenant(rt, principal.tenant_id, dry_run=True)

    @post("/sweep", guards=[requires("admin")], status_code=200, summary="Run the retention sweep for this tenant now")
    async def run_sweep(self, rt: Rt, principal: Caller) -> sweep.SweepReport:
        return await sweep.sweep_now(rt, principal.tenant_id, principal.actor)


class HoldController(Controller):
    path = "/v1/holds"
    tags = ["retention"]
    guards = [requires("compliance", "admin")]

    @post("/", summary="Place a legal hold (covers matching conversations now and later)")
    async def create_hold(self, rt: Rt, principal: Caller, data: JSONBody[holds.HoldIn]) -> holds.HoldOut:
        return await holds.create(rt, principal, data)

    @get("/", summary="List holds")
    async def list_holds(self, rt: Rt, principal: Caller) -> list[holds.HoldOut]:
        return await holds.list_holds(rt, principal)

    @get("/{hold_id:str}", summary="One hold, with the number of conversations it covers")
    async def get_hold(self, rt: Rt, principal: Caller, hold_id: FromPath[UUID]) -> holds.HoldOut:
        return await holds.get(rt, principal, hold_id)

    @post("/{hold_id:str}/release", status_code=200, summary="Release a hold (reason required)")
    async def release_hold(self, rt: Rt, principal: Caller, hold_id: FromPath[UUID], data: JSONBody[holds.ReleaseIn]) -> holds.HoldOut:
        return await holds.release(rt, principal, hold_id, data.reason)


class ErasureController(Controller):
    path = "/v1/erasure"
    tags = ["retention"]

    @post("/", guards=[requires("compliance", "admin")], status_code=200, summary="Erase a person's conversations (GDPR Art. 17); returns a receipt")
    async def erase(self, rt: Rt, principal: Caller, data: JSONBody[erasure.ErasureIn]) -> erasure.ErasureReceipt:
        receipt = await erasure.erase(rt, principal, data)
        await indexing.drain_all(rt)
        return receipt


class ExportController(Controller):
    path = "/v1/exports"
    tags = ["retention"]
    guards = [requires("compliance")]

    @post("/", status_code=202, summary="Request an export (a job; poll GET /v1/exports/{id})")
    async def create_export(self, rt: Rt, principal: Caller, data: JSONBody[exports.ExportIn]) -> exports.ExportOut:
        return await exports.create(rt, principal, data)

    @get("/{export_id:str}", summary="State and progress of an export")
    async def get_export(self, principal: Caller, export_id: FromPath[UUID]) -> exports.ExportOut:
        return await exports.get(principal, export_id)

    @get("/{export_id:str}/download", summary="The signed zip, streamed (ledgered)", media_type="application/zip",
         responses=problems(409))  # not built yet (queued, running) or expired
    async def download(self, rt: Rt, principal: Caller, export_id: FromPath[UUID]) -> Stream:
        chunks, filename = await exports.download(rt, principal, export_id)
        return Stream(chunks, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{filename}"'})
