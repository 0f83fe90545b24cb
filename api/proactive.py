"""The engagement engine over HTTP: public intake and invitation stream for browsers; rules,
stats, explanations and backtests for marketing; agent capacity from the chat platform."""

from __future__ import annotations

from typing import Annotated, Any, AsyncIterator
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from api.auth import requires
from api.deps import Caller, Rt
from archive.tenancy import Principal
from proactive import service
from proactive.model import Invitation, Outcome

KEEPALIVE_SECONDS = 15.0


def _media(request: Request[Any, Any, Any]) -> str:
    content_type = request.headers.get("content-type", "")
    return "json" if "json" in content_type else "yaml"


def _event(invitation: Invitation) -> ServerSentEventMessage:
    return ServerSentEventMessage(data=msgspec.json.encode(invitation).decode(), event="invitation", id=invitation.id)


class CollectController(Controller):
    path = "/v1"
    tags = ["engagement: browser"]

    @post("/collect", exclude_from_auth=True, status_code=200, summary="Behaviour events from the snippet (text/plain or JSON)")
    async def collect(self, request: Request[Any, Any, Any], rt: Rt) -> service.CollectOut:
        return await service.collect(
            rt, await request.body(),
            request.headers.get("x-parley-site") or request.query_params.get("site"),
            request.headers.get("origin"), request.headers.get("user-agent", ""),
        )

    @get("/invitations/stream", exclude_from_auth=True, summary="Server-sent invitations for one visitor", media_type="text/event-stream")
    async def stream(self, request: Request[Any, Any, Any], rt: Rt, site_key: FromQuery[str], visitor_id: FromQuery[str]) -> ServerSentEvent:
        site = await service.resolve_site(rt, site_key, request.headers.get("origin"))
        key = (site["id"], visitor_id)
        delivery = rt.engagement.delivery

        async def events() -> AsyncIterator[ServerSentEventMessage]:
            async with delivery.subscribe(key) as subscription:
                for waiting in rt.engagement.engine.take_pending(site["id"], visitor_id):
                    yield _event(waiting)
                while True:
                    try:
                        invitation = await subscription.next(KEEPALIVE_SECONDS)
                    except StopAsyncIteration:
                        return  # the server is stopping: end the stream cleanly
                    yield _event(invitation) if invitation is not None else ServerSentEventMessage(comment="keep-alive")

        return ServerSentEvent(events())


class RulesController(Controller):
    path = "/v1/rules"
    tags = ["engagement: rules"]
    guards = [requires("marketing")]

    @get("/", summary="List rules")
    async def list_rules(self, principal: Caller) -> list[service.RuleOut]:
        return await service.list_rules(principal.tenant_id)

    @post("/", summary="Create a rule (JSON)")
    async def create_rule(self, rt: Rt, principal: Caller, data: JSONBody[dict[str, Any]]) -> service.RuleOut:
        return await service.create_rule(rt, principal, data)

    @post("/validate", status_code=200, summary="Validate rules (YAML or JSON; errors name the field path)")
    async def validate(self, request: Request[Principal, Any, Any]) -> service.ValidationOut:
        return service.validate_document(await request.body(), _media(request))

    @post("/import", status_code=200, summary="Import rules (YAML or JSON), all or nothing, upsert by name")
    async def import_rules(self, request: Request[Principal, Any, Any], rt: Rt, principal: Caller) -> service.ImportOut:
        return await service.import_document(rt, principal, await request.body(), _media(request))

    @get("/export", summary="All rules as YAML, for version control", media_type="application/yaml",
         responses={200: ResponseSpec(data_container=service.RulesDocument, media_type="application/yaml", generate_examples=False,
                                      description="The rules document (YAML): the same shape POST /v1/rules/import reads")})
    async def export_rules(self, principal: Caller) -> Response[str]:
        return Response(await service.export_document(principal.tenant_id), media_type="application/yaml")

    @get("/{rule_id:str}", summary="One rule")
    async def get_rule(self, principal: Caller, rule_id: FromPath[UUID]) -> service.RuleOut:
        return await service.get_rule(principal.tenant_id, rule_id)

    @put("/{rule_id:str}", summary="Replace a rule")
    async def put_rule(self, rt: Rt, principal: Caller, rule_id: FromPath[UUID], data: JSONBody[dict[str, Any]]) -> service.RuleOut:
        return await service.replace_rule(rt, principal, rule_id, data)

    @delete("/{rule_id:str}", summary="Delete a rule")
    async def delete_rule(self, rt: Rt, principal: Caller, rule_id: FromPath[UUID]) -> None:
        await service.delete_rule(rt, principal, rule_id)

    @get("/{rule_id:str}/stats", summary="Matched, suppressed by reason, sent, shown, accepted, dismissed, expired, goals — per variant")
    async def stats(self, rt: Rt, principal: Caller, rule_id: FromPath[UUID]) -> service.StatsOut:
        return await service.stats(rt, principal, rule_id)

    @post("/{rule_id:str}/backtest", status_code=200, summary="Replay stored events: how many invitations would the rule have sent")
    async def backtest(self, rt: Rt, principal: Caller, rule_id: FromPath[UUID],
                       days: Annotated[int, QueryParameter(ge=1, le=90)] = 7) -> service.BacktestOut:
        return await service.backtest(rt, principal, rule_id, days)


@get("/v1/visitors/{visitor_id:str}/explain", guards=[requires("marketing")], tags=["engagement: rules"],
     summary="For each rule, why it did or did not fire for this visitor")
async def explain(rt: Rt, principal: Caller, visitor_id: FromPath[str], site: FromQuery[str]) -> list[Outcome]:
    return await service.explain(rt, principal, visitor_id, site)


class CapacityController(Controller):
    path = "/v1/agents/capacity"
    tags = ["engagement: capacity"]

    @put("/", guards=[requires("ingest")], summary="Agent capacity per group, from the chat platform")
    async def put_capacity(self, rt: Rt, principal: Caller, data: JSONBody[dict[str, Any]]) -> dict[str, service.GroupOut]:
        # Decoded by the service so errors can name the group; shape: service.CapacityIn.
        return service.set_capacity(rt, principal, service.parse_capacity(data))

    @get("/", guards=[requires("ingest", "marketing", "admin")], summary="Capacity, open invitations and free slots per group")
    async def get_capacity(self, rt: Rt, principal: Caller) -> dict[str, service.GroupOut]:
        return service.capacity(rt, principal)
