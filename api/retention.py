"""Retention policies, sweeps, legal holds, erasure and exports over HTTP."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, get, post, put
from litestar.params import FromPath, JSONBody

from api.auth import requires
from archive.tenancy import Principal
from retention import erasure, exports, holds, policies, sweep


class RetentionController(Controller):
    path = "/v1/retention"
    tags = ["retention"]

    @get("/policies", guards=[requires("compliance", "admin")], summary="The tenant's retention policy")
    async def get_policy(self, request: Request[Principal, Any, Any]) -> policies.PolicyOut:
        return await policies.current(request.user.tenant_id)

    @put("/policies", guards=[requires("compliance", "admin")], summary="Replace the retention policy (ledgered)")
    async def put_policy(self, request: Request[Principal, Any, Any], data: JSONBody[policies.PolicyIn]) -> policies.PolicyOut:
        return await policies.put(request.user, data)

    @post("/preview", guards=[requires("compliance", "admin")], status_code=200, summary="What a sweep would delete now, per rule, and what each hold protects")
    async def preview(self, request: Request[Principal, Any, Any]) -> sweep.SweepReport:
        return await sweep.sweep_tenant(request.app.state.runtime, request.user.tenant_id, dry_run=True)

    @post("/sweep", guards=[requires("admin")], status_code=200, summary="Run the retention sweep for this tenant now")
    async def run_sweep(self, request: Request[Principal, Any, Any]) -> sweep.SweepReport:
        from archive.search import indexing

        runtime = request.app.state.runtime
        report = await sweep.sweep_tenant(runtime, request.user.tenant_id, actor=request.user.actor)
        await indexing.drain_all(runtime)
        return report


class HoldController(Controller):
    path = "/v1/holds"
    tags = ["retention"]
    guards = [requires("compliance", "admin")]

    @post("/", summary="Place a legal hold (covers matching conversations now and later)")
    async def create_hold(self, request: Request[Principal, Any, Any], data: JSONBody[holds.HoldIn]) -> holds.HoldOut:
        return await holds.create(request.app.state.runtime, request.user, data)

    @get("/", summary="List holds")
    async def list_holds(self, request: Request[Principal, Any, Any]) -> list[holds.HoldOut]:
        return await holds.list_holds(request.app.state.runtime, request.user)

    @get("/{hold_id:uuid}", summary="One hold, with the number of conversations it covers")
    async def get_hold(self, request: Request[Principal, Any, Any], hold_id: FromPath[UUID]) -> holds.HoldOut:
        return await holds.get(request.app.state.runtime, request.user, hold_id)

    @post("/{hold_id:uuid}/release", status_code=200, summary="Release a hold (reason required)")
    async def release_hold(self, request: Request[Principal, Any, Any], hold_id: FromPath[UUID], data: JSONBody[holds.ReleaseIn]) -> holds.HoldOut:
        return await holds.release(request.app.state.runtime, request.user, hold_id, data.reason)


class ErasureController(Controller):
    path = "/v1/erasure"
    tags = ["retention"]

    @post("/", guards=[requires("compliance", "admin")], status_code=200, summary="Erase a person's conversations (GDPR Art. 17); returns a receipt")
    async def erase(self, request: Request[Principal, Any, Any], data: JSONBody[erasure.ErasureIn]) -> erasure.ErasureReceipt:
        from archive.search import indexing

        runtime = request.app.state.runtime
        receipt = await erasure.erase(runtime, request.user, data)
        await indexing.drain_all(runtime)
        return receipt


class ExportController(Controller):
    path = "/v1/exports"
    tags = ["retention"]
    guards = [requires("compliance")]

    @post("/", status_code=202, summary="Request an export (a job; poll GET /v1/exports/{id})")
    async def create_export(self, request: Request[Principal, Any, Any], data: JSONBody[exports.ExportIn]) -> exports.ExportOut:
        return await exports.create(request.app.state.runtime, request.user, data)

    @get("/{export_id:uuid}", summary="State and progress of an export")
    async def get_export(self, request: Request[Principal, Any, Any], export_id: FromPath[UUID]) -> exports.ExportOut:
        return await exports.get(request.user, export_id)

    @get("/{export_id:uuid}/download", summary="The signed zip (ledgered)", media_type="application/zip")
    async def download(self, request: Request[Principal, Any, Any], export_id: FromPath[UUID]) -> Response[bytes]:
        data, filename = await exports.download(request.app.state.runtime, request.user, export_id)
        return Response(data, media_type="application/zip", headers={"Content-Disposition": f'attachment; filename="{filename}"'})
