"""The Litestar application: wiring only. Business rules live in archive/, retention/, proactive/."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import msgspec
import structlog
from litestar import Litestar, Request, Router
from litestar._openapi.plugin import OpenAPIPlugin
from litestar.config.compression import CompressionConfig
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.middleware import DefineMiddleware
from litestar.middleware.compression import CompressionMiddleware
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components

from api.admin import AdminController, whoami
from api.audit import AuditController
from api.auth import ApiKeyAuthentication
from api.browser import demo_shop, snippet
from api.cases import CaseController
from api.composition import build_runtime
from api.connectors import ConnectorAdminController, receive_push
from api.console import console_router, template_config
from api.deps import DEPENDENCIES
from api.health import healthz, readyz
from api.openapi import SECURITY_SCHEMES, AllowEveryMethod, ProblemResponses, StrictStructSchemaPlugin
from api.proactive import CapacityController, CollectController, RulesController, SiteEngagementController, client_identifier, explain
from api.problems import EXCEPTION_HANDLERS
from api.redaction import RedactionController
from api.reports import ReportsController
from api.request_id import RequestIdMiddleware
from api.retention import ErasureController, ExportController, HoldController, RetentionController
from api.reviews import ReviewController
from api.screen import RequestLineLimits, screen_body
from api.search import SearchController
from api.shutdown import on_termination, stop_when_orphaned
from api.stores import BoundedMemoryStore
from api.supervision import BackfillController, PolicyController, ReportController
from api.transcripts import TranscriptController
from api.visitors import VisitorController, site_secret
from archive.jobs import build_scheduler
from archive.models import BatchIn, ConversationIn
from archive.runtime import Runtime, describe
from config.settings import Settings
from proactive import demo
from proactive.events import CollectIn
from proactive.service import RulesDocument
from proactive.visitors import AttributesIn, EventsIn

log = structlog.get_logger(__name__)

VERSION = "0.1.0"


def _add_self_decoded_schemas(app: Litestar) -> None:
    """Components for bodies a handler decodes itself (see api.transcripts.IngestOperation).

    Litestar rebuilds ``components.schemas`` from the handlers' signatures, so schemas passed in
    the config are dropped; they are added to the built document instead.
    """
    bodies = [ConversationIn, BatchIn, CollectIn, RulesDocument, AttributesIn, EventsIn]
    _, components = msgspec.json.schema_components(bodies, ref_template="#/components/schemas/{name}")
    schemas = app.plugins.get(OpenAPIPlugin).provide_openapi().components.schemas
    assert schemas is not None
    for name, schema in components.items():
        schemas.setdefault(name, schema)


def _collect_rate_limits(settings: Settings) -> list[Any]:
    """Litestar's rate limiting, on the browser routes only (a router's middleware): per client IP
    (behind trusted proxies, from X-Forwarded-For: see api.proactive), and per site key when it is in the header or query (a key only in the body is covered by the
    IP limit). Other routes pay nothing for it."""

    def site_of(request: Request[Any, Any, Any]) -> str:
        return "site:" + (request.headers.get("x-parley-site") or request.query_params.get("site") or "-")[:64]

    per_ip = RateLimitConfig(rate_limit=("minute", settings.collect_per_ip_per_minute), store="collect_ip",
                             identifier_for_request=client_identifier(settings))
    per_site = RateLimitConfig(rate_limit=("second", settings.collect_per_site_per_second), identifier_for_request=site_of,
                               store="collect_site")
    return [per_ip.middleware, per_site.middleware]


# Static assets browsers load go out gzipped (Litestar's compression, on their router only: the
# JSON API and the event stream are left alone).
_COMPRESSED = DefineMiddleware(CompressionMiddleware, config=CompressionConfig(backend="gzip", minimum_size=500))


def create_app(settings: Settings, runtime: Runtime | None = None) -> Litestar:
    """The app. Without ``runtime`` it builds its own from ``settings`` in the lifespan (the
    server); tests pass one they built with a manual clock."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            rt = runtime or build_runtime(settings)
            app.state.runtime = rt
            await rt.start(serve=True)
            app.state.demo_site_key = await demo.ensure_demo(rt) if settings.demo else None
            scheduler = build_scheduler(rt) if settings.scheduler else None
        except BaseException as exc:
            # The server's worker exits on this without a word of its own: say what stopped it.
            log.exception("parley_start_failed", error=type(exc).__name__)
            raise
        if scheduler is not None:
            scheduler.start()
        app.state.scheduler = scheduler
        on_termination(rt.engagement.delivery.close_all)
        orphan_watch = stop_when_orphaned()
        log.info("parley_started", **describe(rt))
        try:
            yield
        finally:
            if orphan_watch is not None:
                orphan_watch.cancel()
            # Streams end first: an open SSE connection must not hold the server open.
            rt.engagement.delivery.close_all()
            if scheduler is not None:
                await scheduler.stop()
            await rt.stop()

    app = Litestar(
        route_handlers=[
            healthz, readyz, whoami, AdminController, TranscriptController, AuditController, SearchController,
            RetentionController, HoldController, ErasureController, ExportController, RedactionController,
            PolicyController, BackfillController, ReportController, ReviewController, CaseController,
            Router("/", route_handlers=[CollectController], middleware=_collect_rate_limits(settings)),
            Router("/", route_handlers=[snippet, demo_shop], middleware=[_COMPRESSED]),
            RulesController, CapacityController, SiteEngagementController, explain, VisitorController, site_secret,
            ConnectorAdminController, receive_push, ReportsController, console_router(),
        ],
        dependencies=DEPENDENCIES,
        middleware=[RequestIdMiddleware, RequestLineLimits, ApiKeyAuthentication],
        # Public browser endpoints check each site's allowed origins themselves; the API proper
        # is authenticated by bearer keys, which browsers never attach on their own, so a
        # permissive CORS policy opens nothing. Any request header is allowed (a preflight gets
        # the ones it asks for back): a page's browser tracing (OpenTelemetry's traceparent and
        # tracestate, baggage, sentry-trace, Datadog's x-datadog-*, B3…) adds headers to
        # /v1/collect whenever Parley's address matches its patterns, and a preflight that
        # refused one would lose every event of that site.
        cors_config=CORSConfig(allow_origins=["*"], allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                               allow_headers=["*"],
                               expose_headers=["x-request-id"], max_age=600),
        exception_handlers=EXCEPTION_HANDLERS,
        before_request=screen_body,
        template_config=template_config(),
        lifespan=[lifespan],
        stores={"collect_ip": BoundedMemoryStore(), "collect_site": BoundedMemoryStore()},
        state=State({"runtime": runtime, "demo_site_key": None, "scheduler": None}),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Parley",
            version=VERSION,
            description=(
                "Compliance archive for live-chat transcripts and proactive engagement engine. "
                "Authenticate with 'Authorization: Bearer prl_…'. Errors are RFC 9457 problem+json."
            ),
            path="/schema",
            components=Components(security_schemes=SECURITY_SCHEMES),
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        on_startup=[_add_self_decoded_schemas],
        plugins=[ProblemResponses(), AllowEveryMethod(), StrictStructSchemaPlugin()],
        debug=False,
        logging_config=None,
    )
    return app
