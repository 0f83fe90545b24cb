"""What the site's own server says about a visitor: attributes and triggers (proactive.visitors).

Called with an ingest API key, or signed with the site's secret instead (no key at all): the
handlers are therefore outside the bearer middleware and authenticate here.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from litestar import Controller, Request, get, post
from litestar.exceptions import NotAuthorizedException
from litestar.params import FromPath

from api.auth import MAX_KEY_LENGTH, requires
from api.deps import Caller, Rt
from api.openapi import BEARER, problems, self_decoded_body
from archive.runtime import Runtime
from archive.tenancy import Principal
from proactive import visitors


async def _caller(request: Request[Any, Any, Any], rt: Runtime, body: bytes) -> tuple[Principal | None, dict[str, Any] | None]:
    """An ingest key (Authorization: Bearer …) or the site's signature."""
    authorization = request.headers.get("authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        principal = await rt.tenants.authenticate(token) if scheme.lower() == "bearer" and 0 < len(token) <= MAX_KEY_LENGTH else None
        if principal is None:
            raise NotAuthorizedException("the API key is unknown or revoked", headers={"WWW-Authenticate": 'Bearer realm="parley"'})
        return principal, None
    signed = await visitors.signed_site(rt, request.headers.get("x-parley-site"), request.headers.get("x-parley-timestamp"),
                                        request.headers.get("x-parley-signature"), body)
    return None, signed


# The bearer key, as every authenticated operation; the site signature (X-Parley-Site,
# X-Parley-Timestamp, X-Parley-Signature) is the documented alternative (docs/proactive.md).
BEARER_OR_SIGNATURE: list[dict[str, list[str]]] = [{BEARER: []}]


# The handlers read the body themselves (a site signature covers its exact bytes).
_ATTRIBUTES_BODY = self_decoded_body("AttributesIn", ("application/json",), "The visitor's attributes on one site (declared per site).")
_EVENTS_BODY = self_decoded_body("EventsIn", ("application/json",), "Triggers and custom events for the visitor on one site.")


class VisitorController(Controller):
    path = "/v1/visitors/{visitor_id:str}"
    tags = ["engagement: visitors"]

    # Outside the bearer middleware (a signature may stand in for the key): the 401/403 it would
    # document, and the 503 of a process that does not run the engine, are declared here.
    @post("/attributes", exclude_from_auth=True, status_code=200, operation_class=_ATTRIBUTES_BODY, responses=problems(401, 403, 503), security=BEARER_OR_SIGNATURE,
          summary="Set a visitor's attributes (declared per site) from the site's server: ingest key or site signature")
    async def attributes(self, request: Request[Any, Any, Any], rt: Rt, visitor_id: FromPath[str]) -> visitors.VisitorUpdateOut:
        body = await request.body()
        principal, signed = await _caller(request, rt, body)
        return await visitors.set_attributes(rt, principal, signed, visitor_id, body)

    @post("/events", exclude_from_auth=True, status_code=200, operation_class=_EVENTS_BODY, responses=problems(401, 403, 503), security=BEARER_OR_SIGNATURE,
          summary="Triggers and custom events for a visitor from the site's server: ingest key or site signature")
    async def events(self, request: Request[Any, Any, Any], rt: Rt, visitor_id: FromPath[str]) -> visitors.VisitorUpdateOut:
        body = await request.body()
        principal, signed = await _caller(request, rt, body)
        return await visitors.add_events(rt, principal, signed, visitor_id, body)


@get("/v1/admin/sites/{site_id:str}/secret", guards=[requires("admin")], tags=["engagement: visitors"],
     summary="The site's signing secret for server-to-server visitor attributes and events")
async def site_secret(rt: Rt, principal: Caller, site_id: FromPath[UUID]) -> visitors.SiteSecretOut:
    return await visitors.secret_for(rt, principal.tenant_id, site_id)
