"""The engagement engine over HTTP: public intake and invitation stream for browsers; rules,
stats, explanations and backtests for marketing; agent capacity from the chat platform; a site's
engagement settings.

Two rules about who is asking, written down here because the browser endpoints are public:

* **The page's origin** (``page_origins``). A site that lists allowed origins accepts a request
  only from a page served by one of them. Browsers send ``Origin`` on cross-origin requests and on
  every POST, and that header decides when present. A same-origin GET (the invitation stream from
  a page Parley serves itself, such as the demo) carries no ``Origin``; then the page is known from
  ``Referer`` (its origin only), and, when ``Sec-Fetch-Site: same-origin`` says the page and the
  request share an origin, from the request's own scheme and host. A request that names no page
  at all is refused by a site with allowed origins.
* **The client's address** (``client_address``), which the collect rate limit counts by and
  ``visitor.country`` is looked up from (``client_location``; only the codes go on). The
  peer address of the connection, unless that peer is one of ``PARLEY_TRUSTED_PROXIES``: then
  ``X-Forwarded-For`` is read from the right, skipping trusted proxies, and the first address that
  is not one is the client. Forwarded headers from anyone else are ignored (they are trivial to
  forge), so without trusted proxies configured a NAT or a proxy shares one limit.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, AsyncIterator, Callable
from urllib.parse import urlsplit
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post, put
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Schema
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from litestar.response import ServerSentEvent, ServerSentEventMessage

from api.auth import requires
from api.deps import Caller, Rt
from api.openapi import problems, self_decoded_body
from archive.runtime import Runtime
from archive.tenancy import Principal
from config.settings import Settings, trusted_networks
from proactive import service
from proactive.backtest import BacktestOut
from proactive.geo import Location
from proactive.model import DeliveredInvitation, Invitation, Outcome

KEEPALIVE_SECONDS = 15.0


def page_origins(request: Request[Any, Any, Any]) -> list[str]:
    """Where the page that made this request is served from, as far as the request tells."""
    origin = request.headers.get("origin")
    if origin:
        return [origin]
    found = []
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.scheme and referer.netloc:
        found.append(f"{referer.scheme}://{referer.netloc}")
    if request.headers.get("sec-fetch-site") == "same-origin":
        found.append(f"{request.url.scheme}://{request.url.netloc}")
    return found


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(request: Request[Any, Any, Any], trusted: list[Network]) -> str:
    """The real client's address (see the module docstring): the peer, or — behind a trusted
    proxy — the first ``X-Forwarded-For`` hop from the right that is not one."""

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in trusted)

    peer = request.client.host if request.client else "unknown"
    if not trusted or not is_trusted(peer):
        return peer
    hops = [hop.strip() for value in request.headers.getall("x-forwarded-for", []) for hop in value.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop[:64]
    return hops[0][:64] if hops else peer


def client_identifier(settings: Settings) -> Callable[[Request[Any, Any, Any]], str]:
    """The rate limit's key for a request: the real client's address."""
    trusted = trusted_networks(settings.trusted_proxies)
    return lambda request: client_address(request, trusted)


def client_location(request: Request[Any, Any, Any], rt: Runtime) -> Location:
    """Where the client's address is (``visitor.country``/``visitor.region``, proactive.geo). Only
    the codes leave this function: the address is neither stored nor logged."""
    return rt.engagement.locator.locate(client_address(request, trusted_networks(rt.settings.trusted_proxies)))


def _media(request: Request[Any, Any, Any]) -> str:
    content_type = request.headers.get("content-type", "")
    return "json" if "json" in content_type else "yaml"


def _event(invitation: Invitation, now: float) -> ServerSentEventMessage:
    data = msgspec.json.encode(DeliveredInvitation.of(invitation, now)).decode()
    return ServerSentEventMessage(data=data, event="invitation", id=invitation.id)


# Bodies these handlers read themselves (text/plain from browsers; YAML or JSON rules), declared
# for the OpenAPI document.
_COLLECT_BODY = self_decoded_body(
    "CollectIn", ("text/plain", "application/json"),
    "A batch of behaviour events; browsers send it as text/plain holding JSON (no CORS preflight). "
    "The site key may instead be in X-Parley-Site or ?site=.",
)
_RULES_BODY = self_decoded_body(
    "RulesDocument", ("application/yaml", "application/json"),
    "A rules document, YAML or JSON (read as JSON when the content type says json); docs/proactive.md, Rules.",
)

# Validation judges any text: a document that is not a rules document is answered 200 with
# "valid": false and the errors, so its body is any text rather than the RulesDocument import needs.
_RULES_TO_CHECK = self_decoded_body(
    Schema(description="Any YAML or JSON, meant to be a rules document (the shape of RulesDocument)"),
    ("application/yaml", "application/json"),
    "The rules document to check, YAML or JSON; whatever it holds, the answer says whether it is valid and why not.",
)


class CollectController(Controller):
    path = "/v1"
    tags = ["engagement: browser"]

    @post("/collect", exclude_from_auth=True, status_code=200, summary="Behaviour events from the snippet (text/plain or JSON)",
          responses=problems(401, 403), operation_class=_COLLECT_BODY)  # an unknown site key; a page origin the site does not allow
    async def collect(self, request: Request[Any, Any, Any], rt: Rt) -> service.CollectOut:
        return await service.collect(
            rt, await request.body(),
            request.headers.get("x-parley-site") or request.query_params.get("site"),
            page_origins(request), request.headers.get("user-agent", ""), client_location(request, rt),
        )

    @get("/invitations/stream", exclude_from_auth=True, summary="Server-sent invitations for one visitor", media_type="text/event-stream",
         responses=problems(401, 403))
    async def stream(self, request: Request[Any, Any, Any], rt: Rt, site_key: FromQuery[str], visitor_id: FromQuery[str]) -> ServerSentEvent:
        rt.engagement.require_live()
        site = await service.resolve_site(rt, site_key, page_origins(request))
        key = await service.visitor_key(rt, site, visitor_id)
        delivery = rt.engagement.delivery

        async def events() -> AsyncIterator[ServerSentEventMessage]:
            async with delivery.subscribe(key) as subscription:
                for waiting in await rt.engagement.take(site["tenant"], key):
                    yield _event(waiting, rt.engagement.engine.clock())
                while True:
                    try:
                        invitation = await subscription.next(KEEPALIVE_SECONDS)
                    except StopAsyncIteration:
                        return  # the server is stopping: end the stream cleanly
                    if invitation is None:
                        yield ServerSentEventMessage(comment="keep-alive")
                    else:
                        yield _event(invitation, rt.engagement.engine.clock())

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

    @post("/validate", status_code=200, operation_class=_RULES_TO_CHECK, summary="Validate rules (YAML or JSON; errors name the field path)")
    async def validate(self, request: Request[Principal, Any, Any], principal: Caller) -> service.ValidationOut:
        return await service.validate_document(principal.tenant_id, await request.body(), _media(request))

    @post("/import", status_code=200, operation_class=_RULES_BODY, summary="Import rules (YAML or JSON), all or nothing, upsert by name")
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
                       days: Annotated[int, QueryParameter(ge=1, le=90)] = 7) -> BacktestOut:
        return await service.backtest(rt, principal, rule_id, days)


@get("/v1/visitors/{visitor_id:str}/explain", guards=[requires("marketing")], tags=["engagement: rules"],
     summary="For each rule, why it did or did not fire for this visitor", responses=problems(422))
async def explain(rt: Rt, principal: Caller, visitor_id: FromPath[str], site: FromQuery[str]) -> list[Outcome]:
    return await service.explain(rt, principal, visitor_id, site)


class CapacityController(Controller):
    path = "/v1/agents/capacity"
    tags = ["engagement: capacity"]

    @put("/", guards=[requires("ingest")], summary="Agent capacity per group, from the chat platform")
    async def put_capacity(self, rt: Rt, principal: Caller, data: JSONBody[dict[str, Any]]) -> dict[str, service.GroupReportOut]:
        # Decoded by the service so errors can name the group; shape: service.CapacityIn.
        return await service.set_capacity(rt, principal, service.parse_capacity(data))

    @get("/", guards=[requires("ingest", "marketing", "admin")], summary="Capacity, open invitations, free slots and waiting visitors per group")
    async def get_capacity(self, rt: Rt, principal: Caller) -> dict[str, service.GroupOut]:
        return await service.capacity(rt, principal)


class SiteEngagementController(Controller):
    """A site's engagement settings: pacing and the time zone its calendar-day caps count in."""

    path = "/v1/admin/sites/{site_id:str}/engagement"
    tags = ["engagement: rules"]
    guards = [requires("admin", "marketing")]

    @get("/", summary="A site's pacing (invitations per minute) and time zone")
    async def get_settings(self, principal: Caller, site_id: FromPath[UUID]) -> service.SiteEngagementOut:
        return await service.get_site_engagement(principal.tenant_id, site_id)

    @patch("/", summary="Change a site's pacing and/or time zone (fields left out stay)")
    async def patch_settings(self, rt: Rt, principal: Caller, site_id: FromPath[UUID], data: JSONBody[dict[str, Any]]) -> service.SiteEngagementOut:
        # Decoded by the service so errors name the field; shape: service.SiteEngagementIn.
        return await service.update_site_engagement(rt, principal.tenant_id, principal.actor, site_id, service.parse_site_engagement(data))
