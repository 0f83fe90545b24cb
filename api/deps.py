"""What handlers receive through Litestar's dependency injection: the runtime and the caller."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from archive.runtime import Runtime
from archive.tenancy import Principal


def provide_runtime(state: State) -> Runtime:
    runtime: Runtime = state.runtime
    return runtime


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    """The authenticated caller (set by api.auth); only handlers behind authentication ask for it."""
    principal: Principal = request.user
    return principal


def public_url(request: Request[Any, Any, Any]) -> str:
    """Where clients reach Parley, for the URLs it hands out (embed tags, webhook URLs): the
    request's own scheme and host, https when a trusted proxy (PARLEY_TRUSTED_PROXIES) says the
    client used it, as for the console's cookies. Behind a TLS-terminating proxy the request
    itself is plain http, and an http:// snippet on an https page is blocked as mixed content."""
    from api.console.security import is_https  # api.console imports this module

    base = str(request.base_url).rstrip("/")
    if base.startswith("http://") and is_https(request.scope, request.app.state.runtime):
        base = "https://" + base.removeprefix("http://")
    return base


DEPENDENCIES = {
    "rt": Provide(provide_runtime, sync_to_thread=False),
    "principal": Provide(provide_principal, sync_to_thread=False),
}

# Handlers name what they need by these annotations (Litestar's explicit named injection).
Rt = NamedDependency[Runtime]
Caller = NamedDependency[Principal]
