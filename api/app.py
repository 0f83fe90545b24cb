"""The Litestar application: wiring only. Business rules live in archive/, retention/, proactive/."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

import msgspec
import structlog
from litestar import Litestar, Request, Router
from litestar.config.cors import CORSConfig
from litestar.middleware.rate_limit import RateLimitConfig
from litestar.datastructures import State
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import ScalarRenderPlugin, SwaggerRenderPlugin
from litestar._openapi.plugin import OpenAPIPlugin

from api.admin import AdminController, whoami
from api.audit import AuditController
from api.auth import ApiKeyAuthentication
from api.health import healthz, readyz
from api.problems import EXCEPTION_HANDLERS
from api.request_id import RequestIdMiddleware
from api.schemas import Check
from api.browser import demo_shop, snippet
from api.proactive import CapacityController, CollectController, RulesController, explain
from api.retention import ErasureController, ExportController, HoldController, RetentionController
from api.search import SearchController
from api.transcripts import TranscriptController
from archive import db, revocations
from archive.jobs import build_scheduler
from archive.models import BatchIn, ConversationIn
from archive.runtime import Runtime, build_runtime
from archive.search import indexing
from proactive import jobs as proactive_jobs  # noqa: F401  (registers the engine's jobs)
from proactive import demo
from proactive import service as engagement
from retention import jobs as retention_jobs  # noqa: F401  (registers jobs and the ingest hook)
from archive.tenancy import clear_auth_cache, evict_cached_key
from config.settings import Settings

log = structlog.get_logger(__name__)

VERSION = "0.1.0"


def _add_self_decoded_schemas(app: Litestar) -> None:
    """Components for bodies a handler decodes itself (see api.transcripts.IngestOperation).

    Litestar rebuilds ``components.schemas`` from the handlers' signatures, so schemas passed in
    the config are dropped; they are added to the built document instead.
    """
    _, components = msgspec.json.schema_components([ConversationIn, BatchIn], ref_template="#/components/schemas/{name}")
    schemas = app.plugins.get(OpenAPIPlugin).provide_openapi().components.schemas
    assert schemas is not None
    for name, schema in components.items():
        schemas.setdefault(name, schema)


def _collect_rate_limits(settings: Settings) -> list[Any]:
    """Litestar's rate limiting, on the browser routes only (a router's middleware): per client IP,
    and per site key when it is in the header or query (a key only in the body is covered by the
    IP limit). Other routes pay nothing for it."""

    def site_of(request: Request[Any, Any, Any]) -> str:
        return "site:" + (request.headers.get("x-parley-site") or request.query_params.get("site") or "-")

    per_ip = RateLimitConfig(rate_limit=("minute", settings.collect_per_ip_per_minute), store="collect_ip")
    per_site = RateLimitConfig(rate_limit=("second", settings.collect_per_site_per_second), identifier_for_request=site_of,
                               store="collect_site")
    return [per_ip.middleware, per_site.middleware]


def create_app(settings: Settings, runtime: Runtime | None = None) -> Litestar:
    runtime = runtime or build_runtime(settings)

    async def search_ready() -> Check:
        status = await indexing.backend(runtime).status()
        return Check(ok=status.ok, detail=status.detail)

    async def outbox_lag() -> Check:
        lag = await indexing.lag()
        # Lag is reported, not failed on: a replica that is behind still serves reads correctly.
        return Check(ok=True, detail=f"{lag.pending} pending, oldest {lag.oldest_seconds}s")

    readiness: dict[str, Callable[[], Awaitable[Check]]] = {"search": search_ready, "index_lag": outbox_lag}

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        await db.start(settings.db_pool_size)
        await db.migrate()
        if settings.engine == "postgres":
            await revocations.watch.listen(settings.effective_database_url, evict_cached_key, clear_auth_cache)
        index = indexing.backend(runtime)
        try:
            await index.open()
        except Exception as exc:  # an index outage must not stop ingest: the outbox waits for it
            log.warning("search_backend_unavailable", backend=index.name, error=type(exc).__name__)
        app.state.demo_site_key = await demo.ensure_demo(runtime) if settings.demo else None
        await engagement.load_all_rules()
        await engagement.rebuild_state(runtime)
        scheduler = build_scheduler(runtime) if settings.scheduler else None
        if scheduler is not None:
            scheduler.start()
        app.state.scheduler = scheduler
        log.info("parley_started", database=db.engine().engine_type, scheduler=bool(scheduler), search=settings.search_backend)
        try:
            yield
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            await engagement.flush_counters()
            await revocations.watch.stop()
            await index.close()
            await db.stop()

    return Litestar(
        route_handlers=[
            healthz, readyz, whoami, AdminController, TranscriptController, AuditController, SearchController,
            RetentionController, HoldController, ErasureController, ExportController,
            Router("/", route_handlers=[CollectController], middleware=_collect_rate_limits(settings)),
            RulesController, CapacityController, explain, snippet, demo_shop,
        ],
        middleware=[RequestIdMiddleware, ApiKeyAuthentication],
        # Public browser endpoints check each site's allowed origins themselves; the API proper
        # is authenticated by bearer keys, which browsers never attach on their own, so a
        # permissive CORS policy opens nothing.
        cors_config=CORSConfig(allow_origins=["*"], allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                               allow_headers=["authorization", "content-type", "x-parley-site", "x-request-id"],
                               expose_headers=["x-request-id"], max_age=600),
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[lifespan],
        state=State({"runtime": runtime, "readiness_probes": readiness, "demo_site_key": None}),
        request_max_body_size=settings.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Parley",
            version=VERSION,
            description=(
                "Compliance archive for live-chat transcripts and proactive engagement engine. "
                "Authenticate with 'Authorization: Bearer prl_…'. Errors are RFC 9457 problem+json."
            ),
            path="/schema",
            render_plugins=[ScalarRenderPlugin(), SwaggerRenderPlugin(path="/swagger")],
        ),
        on_startup=[_add_self_decoded_schemas],
        debug=False,
        logging_config=None,
    )
