"""Supervision policies, their backfills and the supervision reports over HTTP."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from litestar import Controller, Response, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from api.auth import requires
from api.deps import Caller, Rt
from api.openapi import JsonOrCsv, problems
from archive.supervision import backfill, policies, reports
from archive.validation import convert


class PolicyController(Controller):
    path = "/v1/supervision/policies"
    tags = ["supervision"]
    guards = [requires("compliance", "admin")]

    @post("/", summary="Create a policy (a query of the search language, RE2 patterns, scope, sampling; ledgered)")
    async def create_policy(self, rt: Rt, principal: Caller, data: JSONBody[policies.PolicyIn]) -> policies.PolicyOut:
        return await policies.create(rt, principal, data)

    @get("/", summary="The tenant's policies (deleted ones with include_deleted=true)")
    async def list_policies(self, rt: Rt, principal: Caller, include_deleted: FromQuery[bool] = False) -> list[policies.PolicyOut]:
        return await policies.list_policies(rt, principal, include_deleted)

    @get("/{policy_id:str}", summary="One policy, current version")
    async def get_policy(self, rt: Rt, principal: Caller, policy_id: FromPath[UUID]) -> policies.PolicyOut:
        return await policies.get(rt, principal, policy_id)

    @put("/{policy_id:str}", summary="Replace a policy: a new version (ledgered)")
    async def replace_policy(self, rt: Rt, principal: Caller, policy_id: FromPath[UUID], data: JSONBody[policies.PolicyIn]) -> policies.PolicyOut:
        return await policies.replace(rt, principal, policy_id, data)

    @delete("/{policy_id:str}", summary="Delete a policy: it stops flagging; its versions and review items stay (ledgered)")
    async def delete_policy(self, rt: Rt, principal: Caller, policy_id: FromPath[UUID]) -> None:
        await policies.delete(rt, principal, policy_id)

    @get("/{policy_id:str}/versions", summary="Every version of a policy, with who changed it and when")
    async def policy_versions(self, rt: Rt, principal: Caller, policy_id: FromPath[UUID]) -> list[policies.PolicyVersionOut]:
        return await policies.versions(rt, principal, policy_id)


    @post("/{policy_id:str}/backfill", status_code=202,
          summary="Apply the policy to stored conversations that started in [from, to): a job (poll GET /v1/supervision/backfills/{id})")
    async def backfill_policy(self, rt: Rt, principal: Caller, policy_id: FromPath[UUID], data: JSONBody[backfill.BackfillIn]) -> backfill.BackfillOut:
        return await backfill.request(rt, principal, policy_id, data)


class BackfillController(Controller):
    path = "/v1/supervision/backfills"
    tags = ["supervision"]
    guards = [requires("compliance", "admin")]

    @get("/", summary="Backfills, oldest first (of one policy with ?policy=)")
    async def list_backfills(self, principal: Caller, policy: FromQuery[UUID | None] = None) -> list[backfill.BackfillOut]:
        return await backfill.list_backfills(principal, policy)

    @get("/{backfill_id:str}", summary="A backfill's state and progress")
    async def get_backfill(self, principal: Caller, backfill_id: FromPath[UUID]) -> backfill.BackfillOut:
        return await backfill.get(principal, backfill_id)


class ReportController(Controller):
    path = "/v1/supervision/reports"
    tags = ["supervision"]
    guards = [requires("compliance", "admin")]

    @get("/{kind:str}", summary="activity (actions per reviewer), ageing (items by age and status) or policies (changes, who and when); JSON or CSV",
         media_type="application/json", responses=problems(422), operation_class=JsonOrCsv)
    async def get_report(
        self, rt: Rt, principal: Caller, kind: FromPath[str],
        from_: Annotated[str | None, QueryParameter(name="from", description="RFC 3339; the range is [from, to)")] = None,
        to: FromQuery[str | None] = None,
        format: Annotated[str | None, QueryParameter(description="json (default) or csv")] = None,
    ) -> Response[reports.Report | str]:
        raw = {"from": from_, "to": to, "format": format}
        query = convert({k: v for k, v in raw.items() if v is not None}, reports.ReportQuery, "the query parameters are invalid")
        result = await reports.report(rt, principal, kind, query)
        if query.format == "csv":
            day = result.generated_at.date().isoformat()
            return Response(reports.to_csv(result), media_type="text/csv",
                            headers={"Content-Disposition": f'attachment; filename="parley-{kind}-{day}.csv"'})
        return Response(result)
