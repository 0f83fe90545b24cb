"""What the OpenAPI document says beyond each handler's signature, decided in one place.

Litestar documents a handler's parameters, body and success response from its signature; the
errors it can answer come from layers it does not see (authentication middleware, guards, the
domain's ``DomainError`` statuses, the body limit, rate limiting). ``ProblemResponses`` adds them
to every operation as Litestar ``ResponseSpec``s of one shared ``Problem`` schema served as
``application/problem+json`` (what api/problems.py emits), derived from what the handler is:

- authenticated (not ``exclude_from_auth``): 401, and the bearer security requirement; guarded: 403;
- a path parameter (an id the caller names): 404;
- any parameter or a body: 400 (malformed parameter, body not JSON or not UTF-8);
- a body (POST, PUT, PATCH): 413 (``PARLEY_MAX_BODY_BYTES``), 422 (field errors), and, when
  authenticated, 409 (a state conflict); DELETE: 409 too;
- behind Litestar's rate limiting: 429;
- authenticated or rate limited (keys, sealed data, the engagement engine): 503.

``StrictStructSchemaPlugin`` makes request bodies that reject unknown fields
(``forbid_unknown_fields=True``) say so with ``additionalProperties: false``.
``AllowEveryMethod`` fixes the ``Allow`` header of ``OPTIONS`` answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.handlers import HTTPRouteHandler
from litestar.middleware.rate_limit import RateLimitMiddleware
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Reference,
    RequestBody,
    Schema,
    SecurityScheme,
)
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import HTTPRoute

from api.problems import MEDIA_TYPE, TITLES

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar._kwargs import KwargsModel
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.routes import BaseRoute
    from litestar.typing import FieldDefinition

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
BEARER = "apiKey"
SECURITY_SCHEMES: dict[str, SecurityScheme | Reference] = {
    BEARER: SecurityScheme(type="http", scheme="bearer", bearer_format="prl_…",
                           description="An API key: 'Authorization: Bearer prl_…' (parley keys create)"),
}


class FieldProblem(msgspec.Struct):
    """One offending field, named as the client names it (``conversations[0].site``, ``from``)."""

    path: str
    message: str


class Problem(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem document. Some problems carry further members (``existing_id`` on a
    conflict, ``retry_after``): the schema leaves them open."""

    type: str
    title: str
    status: int
    detail: str
    instance: str
    request_id: str
    errors: list[FieldProblem] = []


DESCRIPTIONS: dict[int, str] = {
    400: "A path or query parameter is malformed, or the body is not JSON (or not UTF-8); `errors` names each field",
    401: "No API key, or an unknown or revoked one",
    403: "The key's role may not call this operation",
    404: "No such object in the caller's tenant",
    409: "The request conflicts with the current state (the problem says which)",
    413: "The body is larger than the configured maximum (PARLEY_MAX_BODY_BYTES)",
    422: "The body is well-formed but invalid; `errors` names every offending field at once",
    429: "Too many requests from this client or site; retry later",
    503: "A dependency cannot serve this right now (the keyring lacks a master version; the engagement engine runs in another process); retrying later helps",
}


def _problem(status: int) -> ResponseSpec:
    return ResponseSpec(data_container=Problem, media_type=MEDIA_TYPE, generate_examples=False,
                        description=f"{TITLES[status]}: {DESCRIPTIONS[status]}")


PROBLEM_RESPONSES: dict[int, ResponseSpec] = {status: _problem(status) for status in DESCRIPTIONS}


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    """``responses=`` for a handler that can answer a status the table below cannot see (a GET
    whose query the domain validates answers 422; a body naming ids answers 404)."""
    return {status: PROBLEM_RESPONSES[status] for status in statuses}


def _has_parameters(kwargs: KwargsModel) -> bool:
    return bool(kwargs.expected_path_params or kwargs.expected_query_params or kwargs.expected_header_params
                or kwargs.expected_cookie_params)


def _is_rate_limited(handler: HTTPRouteHandler) -> bool:
    return any(getattr(m, "middleware", m) is RateLimitMiddleware for m in handler.resolve_middleware())


def problem_statuses(handler: HTTPRouteHandler, path_parameters: Any, has_parameters: bool) -> set[int]:
    """The error statuses an operation can answer, from what it is (see the module docstring)."""
    statuses: set[int] = set()
    authenticated = not handler.opt.get("exclude_from_auth")
    if authenticated:
        statuses.add(401)
    if handler.resolve_guards():
        statuses.add(403)
    if path_parameters:
        statuses.add(404)
    has_body = bool(BODY_METHODS & handler.http_methods)
    if path_parameters or has_body or has_parameters:
        statuses.add(400)
    if has_body:
        statuses |= {413, 422}
    if authenticated and (has_body or "DELETE" in handler.http_methods):
        statuses.add(409)
    if _is_rate_limited(handler):
        statuses.add(429)
    if authenticated or _is_rate_limited(handler):
        statuses.add(503)
    return statuses


@dataclass
class JsonOrCsv(Operation):
    """The operation class (Litestar's ``operation_class=``) of a report that answers JSON by
    default and CSV for ``?format=csv``: its 200 response lists both media types."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse) and ok.content is not None:
            ok.content.setdefault("text/csv", OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)))


def self_decoded_body(schema: str | Schema, media_types: tuple[str, ...], description: str) -> type[Operation]:
    """The operation class of a handler that reads its body itself (``await request.body()``: text
    that may be YAML, ``text/plain`` from browsers, a body a signature covers byte for byte), so
    Litestar sees no ``data`` parameter and would document no body at all. The body is declared
    here, by the name of its schema among the components (``api.app`` adds the schemas of such
    bodies to the document) or as a schema of its own, under every media type the handler reads."""

    declared: Schema | Reference = Reference(ref=f"#/components/schemas/{schema}") if isinstance(schema, str) else schema

    @dataclass
    class SelfDecodedBody(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                required=True,
                description=description,
                content={media: OpenAPIMediaType(schema=declared) for media in media_types},
            )

    SelfDecodedBody.__name__ = SelfDecodedBody.__qualname__ = f"{schema if isinstance(schema, str) else 'Text'}Body"
    return SelfDecodedBody


class ProblemResponses(ReceiveRoutePlugin):
    """Declares the problem responses of every operation as it is registered. A handler's own
    ``responses=`` win (a handler documents a status more precisely than this table can)."""

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        for handler, kwargs in route.route_handler_map.values():
            if not handler.include_in_schema:
                continue
            if 401 in problem_statuses(handler, route.path_parameters, _has_parameters(kwargs)):
                handler.security = [{BEARER: []}]
            declared = dict(handler.responses or {})
            for status in sorted(problem_statuses(handler, route.path_parameters, _has_parameters(kwargs))):
                declared.setdefault(status, PROBLEM_RESPONSES[status])
            handler.responses = declared


class StrictStructSchemaPlugin(StructSchemaPlugin):
    """Litestar's schema for msgspec Structs, plus ``additionalProperties: false`` for those that
    refuse unknown fields, so clients (and fuzzers) learn that an extra member is an error."""

    def is_plugin_supported_field(self, field_definition: FieldDefinition) -> bool:
        return super().is_plugin_supported_field(field_definition) and bool(
            field_definition.type_.__struct_config__.forbid_unknown_fields
        )

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        schema.additional_properties = False
        return schema


class AllowEveryMethod(ReceiveRoutePlugin):
    """Litestar's automatic ``OPTIONS`` handler lists the methods of the route it was created
    for; when handlers for one path are registered in turn, the route is rebuilt but keeps the
    first ``OPTIONS`` handler, so ``Allow`` missed methods (``/v1/holds`` answered without GET).
    Every route, as it is (re)registered, gets a fresh one, before the app routes to it. It is
    public and unguarded: it reveals only the methods the document already lists (CORS
    preflights are answered before it, by the CORS middleware)."""

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute):
            return
        stale = route.route_handler_map.get("OPTIONS")
        if stale is None or stale[0].include_in_schema:
            return  # no automatic handler (an OPTIONS handler of our own would be in the schema)
        fresh = route.create_options_handler(route.path)
        fresh.opt["exclude_from_auth"] = True
        app = cast("Litestar", stale[0].ownership_layers[0])  # the top layer: no controller's guards apply
        fresh.owner = app
        fresh.on_registration(app)
        route.route_handlers = [h for h in route.route_handlers if h is not stale[0]] + [fresh]
        route.route_handler_map["OPTIONS"] = (fresh, fresh.create_kwargs_model(path_parameters=route.path_parameters))
