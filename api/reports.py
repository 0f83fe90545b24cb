"""Support reports over HTTP (docs/kpi.md): KPIs per agent, group, site, channel, day or hour."""

from __future__ import annotations

from typing import Annotated, Literal

from litestar import Controller, Response, get
from litestar.params import QueryParameter

from api.auth import requires
from api.deps import Caller, Rt
from api.openapi import JsonOrCsv
from archive.metrics import report
from archive.metrics.report import ReportOut


class ReportsController(Controller):
    path = "/v1/reports"
    tags = ["reports"]
    guards = [requires("supervisor", "compliance", "admin")]

    @get("/support", summary="Support KPIs per agent, group, site, channel, local day or hour (JSON or CSV; ledgered)",
         operation_class=JsonOrCsv)
    async def support(
        self,
        rt: Rt,
        principal: Caller,
        from_: Annotated[str | None, QueryParameter(
            name="from", description="a date (the start of that day in the tenant's time zone) or an RFC 3339 time; "
            "default: 29 days before to's day",
        )] = None,
        to: Annotated[str | None, QueryParameter(
            description="a date (included: up to the end of that day) or an RFC 3339 time (excluded); default: now",
        )] = None,
        group_by: Annotated[str, QueryParameter(description="agent, group, site, channel, day or hour")] = "day",
        format: Annotated[Literal["json", "csv"], QueryParameter(description="json (default) or csv")] = "json",
    ) -> Response[ReportOut] | Response[str]:
        found = await report.support(rt, principal, from_, to, group_by)
        if format == "csv":
            return Response(
                report.to_csv(found), media_type="text/csv",
                headers={"Content-Disposition": f'attachment; filename="support-{group_by}.csv"'},
            )
        return Response(found)
