"""The engagement engine over HTTP: public intake and invitation stream for browsers; rules,
stats, explanations and backtests for marketing; agent capacity from the chat platform."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, AsyncIterator
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from api.auth import requires
from api.problems import problem
from archive.tenancy import Principal
from proactive import service
from proactive.engine import Outcome

KEEPALIVE_SECONDS = 15.0


def _media(request: Request[Any, Any, Any]) -> str:
    content_type = request.headers.get("content-type", "")
    return "json" if "json" in content_type else "yaml"


class CollectController(Controller):
    path = "/v1"
    tags = ["engagement: browser"]

    @post("/collect", exclude_from_auth=True, status_code=200, summary="Behaviour events from the snippet (text/plain or JSON)")
    async def collect(self, request: Request[Any, Any, Any]) -> Response[Any]:
        try:
            result = await service.collect(
                request.app.state.runtime, await request.body(),
                request.headers.get("x-parley-site") or request.query_params.get("site"),
                request.headers.get("origin"), request.headers.get("user-agent", ""),
            )
        except service.SiteRejected as exc:
            return problem(request, exc.status, "Site not accepted", exc.detail)
        return Response(result)

    @get("/invitations/stream", exclude_from_auth=True, summary="Server-sent invitations for one visitor", media_type="text/event-stream")
    async def stream(
        self, request: Request[Any, Any, Any], site_key: FromQuery[str], visitor_id: FromQuery[str],
    ) -> Any:
        try:
            site = await service.resolve_site(site_key, request.headers.get("origin"))
        except service.SiteRejected as exc:
            return problem(request, exc.status, "Site not accepted", exc.detail)
        key = (site["id"], visitor_id)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        subscriber = (asyncio.get_running_loop(), queue)
        service.ENGINE.streams[key].add(subscriber)

        async def events() -> AsyncIterator[ServerSentEventMessage]:
            try:
                for invitation in service.ENGINE.take_pending(site["id"], visitor_id):
                    yield ServerSentEventMessage(data=msgspec.json.encode(invitation).decode(), event="invitation", id=invitation.id)
                while True:
                    try:
                        invitation = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                    except asyncio.TimeoutError:
                        yield ServerSentEventMessage(comment="keep-alive")
                        continue
                    service.ENGINE.pending.pop(key, None)  # delivered here; not again in /v1/collect
                    yield ServerSentEventMessage(data=msgspec.json.encode(invitation).decode(), event="invitation", id=invitation.id)
            finally:
                service.ENGINE.streams[key].discard(subscriber)

        return ServerSentEvent(events())


class RulesController(Controller):
    path = "/v1/rules"
    tags = ["engagement: rules"]
    guards = [requires("marketing")]

    @get("/", summary="List rules")
    async def list_rules(self, request: Request[Principal, Any, Any]) -> list[service.RuleOut]:
        return await service.list_rules(request.user.tenant_id)

    @post("/", summary="Create a rule (JSON)")
    async def create_rule(self, request: Request[Principal, Any, Any], data: JSONBody[dict[str, Any]]) -> service.RuleOut:
        return await service.create_rule(request.user, data)

    @post("/validate", status_code=200, summary="Validate rules (YAML or JSON; errors name the field path)")
    async def validate(self, request: Request[Principal, Any, Any]) -> service.ValidationOut:
        return service.validate_document(await request.body(), _media(request))

    @post("/import", status_code=200, summary="Import rules (YAML or JSON), all or nothing, upsert by name")
    async def import_rules(self, request: Request[Principal, Any, Any]) -> service.ImportOut:
        return await service.import_document(request.user, await request.body(), _media(request))

    @get("/export", summary="All rules as YAML, for version control", media_type="application/yaml")
    async def export_rules(self, request: Request[Principal, Any, Any]) -> Response[str]:
        return Response(await service.export_document(request.user.tenant_id), media_type="application/yaml")

    @get("/{rule_id:uuid}", summary="One rule")
    async def get_rule(self, request: Request[Principal, Any, Any], rule_id: FromPath[UUID]) -> service.RuleOut:
        return await service.get_rule(request.user.tenant_id, rule_id)

    @put("/{rule_id:uuid}", summary="Replace a rule")
    async def put_rule(self, request: Request[Principal, Any, Any], rule_id: FromPath[UUID], data: JSONBody[dict[str, Any]]) -> service.RuleOut:
        return await service.replace_rule(request.user, rule_id, data)

    @delete("/{rule_id:uuid}", summary="Delete a rule")
    async def delete_rule(self, request: Request[Principal, Any, Any], rule_id: FromPath[UUID]) -> None:
        await service.delete_rule(request.user, rule_id)

    @get("/{rule_id:uuid}/stats", summary="Matched, suppressed by reason, sent, shown, accepted, dismissed, expired, goals — per variant")
    async def stats(self, request: Request[Principal, Any, Any], rule_id: FromPath[UUID]) -> service.StatsOut:
        return await service.stats(request.user, rule_id)

    @post("/{rule_id:uuid}/backtest", status_code=200, summary="Replay stored events: how many invitations would the rule have sent")
    async def backtest(self, request: Request[Principal, Any, Any], rule_id: FromPath[UUID], days: Annotated[int, QueryParameter(ge=1, le=90)] = 7) -> service.BacktestOut:
        return await service.backtest(request.user, rule_id, days)


@get("/v1/visitors/{visitor_id:str}/explain", guards=[requires("marketing")], tags=["engagement: rules"],
     summary="For each rule, why it did or did not fire for this visitor")
async def explain(request: Request[Principal, Any, Any], visitor_id: FromPath[str], site: FromQuery[str]) -> list[Outcome]:
    return await service.explain(request.user, visitor_id, site)


class CapacityController(Controller):
    path = "/v1/agents/capacity"
    tags = ["engagement: capacity"]

    @put("/", guards=[requires("ingest")], summary="Agent capacity per group, from the chat platform")
    async def put_capacity(self, request: Request[Principal, Any, Any], data: JSONBody[dict[str, Any]]) -> dict[str, service.GroupOut]:
        # Decoded by the service so errors can name the group; shape: service.CapacityIn.
        return service.set_capacity(request.user, service.parse_capacity(data))

    @get("/", guards=[requires("ingest", "marketing", "admin")], summary="Capacity, open invitations and free slots per group")
    async def get_capacity(self, request: Request[Principal, Any, Any]) -> dict[str, service.GroupOut]:
        return service.capacity(request.user)


