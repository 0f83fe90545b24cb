"""Connectors over HTTP: platforms push to a public path; admins manage connectors."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, Response, delete, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, JSONBody

from api.auth import requires
from api.deps import Caller, Rt, public_url
from api.openapi import problems
from archive.connectors import service
from archive.connectors import store as connectors
from archive.errors import NotFound
from archive.tenancy import tenant_context


@post(
    "/v1/connectors/{connector_id:str}/events",
    tags=["connectors"],
    opt={"exclude_from_auth": True},
    summary="A platform's push (authenticated by the platform's own signature, never an API key)",
    description=(
        "Rocket.Chat, Chatwoot, Intercom, Crisp, LiveChat or generic pushes, exactly as the platform sends them. "
        "401 when the signature is missing, wrong or older than 5 minutes (counted by reason in the connector's stats). "
        "201 archived, 202 kept (a pending piece, or queued fetch-back), 200 duplicate or ignored; "
        "Rocket.Chat and LiveChat pushes are answered 200 whatever they became (they count no other status as delivered). "
        "See docs/connectors.md."
    ),
    responses={
        200: ResponseSpec(service.Receipt, description="A duplicate, an event the connector ignores, or any receipt of a Rocket.Chat or LiveChat push", generate_examples=False),
        202: ResponseSpec(service.Receipt, description="Kept: a pending piece, or a queued fetch-back", generate_examples=False),
        **problems(401),
    },
)
async def receive_push(request: Request[Any, Any, Any], rt: Rt, connector_id: FromPath[str]) -> Response[service.Receipt]:
    try:
        parsed = UUID(connector_id)
    except ValueError:
        raise NotFound(f"no connector {connector_id}") from None
    receipt, status = await service.answer(
        rt, parsed, await request.body(), dict(request.headers.items()), dict(request.query_params.items())
    )
    return Response(receipt, status_code=status)


class ConnectorAdminController(Controller):
    path = "/v1/admin/connectors"
    guards = [requires("admin")]
    tags = ["connectors"]

    @post("/", summary="Create a connector; its secret is in this response only")
    async def create_connector(
        self, request: Request[Any, Any, Any], rt: Rt, principal: Caller, data: JSONBody[connectors.ConnectorIn]
    ) -> connectors.CreatedConnector:
        ctx = await tenant_context(rt, principal.tenant_id)
        return await connectors.create(ctx, data, principal.actor, public_url(request))

    @get("/", summary="List connectors (secrets and tokens are never shown)")
    async def list_connectors(self, request: Request[Any, Any, Any], rt: Rt, principal: Caller) -> list[connectors.ConnectorOut]:
        return await connectors.list_connectors(await tenant_context(rt, principal.tenant_id), public_url(request))

    @get("/{connector_id:str}", summary="One connector")
    async def get_connector(
        self, request: Request[Any, Any, Any], rt: Rt, principal: Caller, connector_id: FromPath[UUID]
    ) -> connectors.ConnectorOut:
        return await connectors.get(await tenant_context(rt, principal.tenant_id), connector_id, public_url(request))

    @delete("/{connector_id:str}", summary="Delete a connector (archived conversations stay; pending drafts are dropped)")
    async def delete_connector(self, rt: Rt, principal: Caller, connector_id: FromPath[UUID]) -> None:
        await connectors.delete(rt, principal.tenant_id, connector_id, principal.actor)

    @get("/{connector_id:str}/stats", summary="Pushes received, accepted, rejected by reason, duplicates, last received")
    async def connector_stats(self, principal: Caller, connector_id: FromPath[UUID]) -> connectors.ConnectorStats:
        return await connectors.stats(principal.tenant_id, connector_id)
