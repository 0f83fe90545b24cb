"""The review console at ``/console``: server-rendered pages over the same domain functions as
the API (docs/console.md).

Pages are Jinja templates rendered by Litestar; htmx (vendored, ``static/htmx.min.js``) swaps
fragments for partial updates, and ``static/console.js`` adds the keyboard. Every asset is served
from here: the console works offline and under a CSP that allows no inline code.
"""

from __future__ import annotations

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.static_files import create_static_files_router

from api.console.audit import AuditPages
from api.console.cases import CasePages, ExportDownloads
from api.console.errors import EXCEPTION_HANDLERS
from api.console.render import STATIC, template_config
from api.console.reviews import ReviewPages
from api.console.search import ConversationPages, SearchPages
from api.console.security import ConsoleSessionMiddleware, check_csrf
from api.console.signin import SignInController

__all__ = ["console_router", "template_config"]


def console_router() -> Router:
    """Every console route, behind the session middleware instead of bearer keys."""
    static = create_static_files_router(
        path="/static", directories=[STATIC], name="console_static", include_in_schema=False,
        # Asset URLs carry a content hash (render.ASSET_VERSION), so a long cache is safe.
        cache_control=CacheControlHeader(max_age=86400 * 30, public=True, immutable=True),
        opt={"console_public": True, "console_static": True},
    )
    return Router(
        "/console",
        route_handlers=[SignInController, SearchPages, ConversationPages, ReviewPages, CasePages, ExportDownloads, AuditPages, static],
        middleware=[ConsoleSessionMiddleware],
        before_request=check_csrf,
        exception_handlers=EXCEPTION_HANDLERS,
        opt={"exclude_from_auth": True},
        include_in_schema=False,
    )
